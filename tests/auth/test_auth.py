"""Authentication: lockout, token expiry and forgery, idle timeout, logout, client credentials, scopes."""

from __future__ import annotations

import datetime as dt

import jwt
import pytest
from sqlalchemy import select, update

from onetrip.audit.models import AuditEvent
from onetrip.config import DEV_SECRET, Settings, get_settings
from onetrip.registry.models import UserSession
from tests.factories import PASSWORD, auth, token


def _login(client, username, password):
    return client.post("/auth/token", data={"grant_type": "password", "username": username, "password": password})


def _from(app, address: str):
    """A client at its own network address (the counters are per address)."""
    from fastapi.testclient import TestClient

    return TestClient(app, client=(address, 50000))


def _delay_over(db, address: str) -> None:
    """Let the progressive delay of ``address`` pass (RULES §10) instead of sleeping through it."""
    from onetrip.auth.throttle import address_key
    from onetrip.registry.models import LoginThrottle

    with db.session() as s:
        s.execute(update(LoginThrottle).where(LoginThrottle.key == address_key(address)).values(next_allowed_at=None))
        s.commit()


def test_wrong_password_locks_the_account_for_that_address(app, world, db):
    from onetrip.auth.service import create_user

    with db.session() as s:
        create_user(s, "locky", PASSWORD, ["nurse"], "Locky", world.org_a)
        s.commit()
    c = _from(app, "10.20.0.1")
    for _ in range(4):
        r = _login(c, "locky", "Wrong@pass1")
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
        _delay_over(db, "10.20.0.1")
    assert _login(c, "locky", PASSWORD).status_code == 200  # 4 failures: not yet locked, counter resets
    wrong = None
    for _ in range(5):
        wrong = _login(c, "locky", "Wrong@pass1")
        _delay_over(db, "10.20.0.1")
    r = _login(c, "locky", PASSWORD)
    # Locked: the very same answer as a wrong password (nothing tells a guesser the account exists or is locked).
    assert r.status_code == 400 and r.json() == wrong.json()
    assert r.json()["resourceType"] == "OperationOutcome"
    assert _login(_from(app, "10.20.0.2"), "locky", PASSWORD).status_code == 200  # from elsewhere: not locked
    with db.session() as s:
        failures = s.scalars(select(AuditEvent).where(AuditEvent.subtype == "login", AuditEvent.agent_name == "locky",
                                                      AuditEvent.outcome == "4")).all()
        assert len(failures) == 4 + 5 + 1  # every failed or refused attempt is audited
        assert failures[-1].outcome_desc == "locked for this address"  # the true reason, in the audit only


def test_lock_expires(app, world, db):
    from onetrip.auth.service import create_user
    from onetrip.auth.throttle import pair_key
    from onetrip.registry.models import LoginThrottle

    with db.session() as s:
        create_user(s, "lapsed", PASSWORD, ["nurse"], "Lapsed", world.org_a)
        s.commit()
    c = _from(app, "10.20.0.3")
    for _ in range(5):
        _login(c, "lapsed", "Wrong@pass1")
        _delay_over(db, "10.20.0.3")
    assert _login(c, "lapsed", PASSWORD).status_code == 400
    with db.session() as s:
        s.execute(update(LoginThrottle).where(LoginThrottle.key == pair_key("lapsed", "10.20.0.3"))
                  .values(locked_until=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
        s.commit()
    assert _login(c, "lapsed", PASSWORD).status_code == 200


def test_expired_and_forged_tokens_get_401(client, world):
    good = token(client, world.users["doc_a"])
    claims = jwt.decode(good, options={"verify_signature": False})
    expired = jwt.encode({**claims, "exp": int(dt.datetime.now(dt.UTC).timestamp()) - 5},
                         get_settings().secret_key, algorithm="HS256")
    forged = jwt.encode({**claims, "roles": ["admin"]}, "not-the-secret", algorithm="HS256")
    r = client.get("/fhir/R4/Patient?name=x", headers=auth(expired))
    assert r.status_code == 401 and "expired" in r.text
    assert r.headers["WWW-Authenticate"] == "Bearer"
    assert client.get("/fhir/R4/Patient?name=x", headers=auth(forged)).status_code == 401
    assert client.get("/fhir/R4/Patient?name=x", headers=auth("garbage")).status_code == 401
    assert client.get("/fhir/R4/Patient?name=x").status_code == 401


def test_idle_session_times_out(client, world, db):
    tok = token(client, world.users["doc_b"])
    assert client.get("/api/me", headers=auth(tok)).status_code == 200
    sid = jwt.decode(tok, options={"verify_signature": False})["sid"]
    with db.session() as s:
        s.execute(update(UserSession).where(UserSession.id == sid)
                  .values(last_seen_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=31)))
        s.commit()
    r = client.get("/api/me", headers=auth(tok))
    assert r.status_code == 401 and "idle" in r.text
    with db.session() as s:
        assert s.get(UserSession, sid).end_reason == "idle-timeout"


def test_logout_ends_the_token(client, world):
    tok = token(client, world.users["doc_b"])
    assert client.post("/auth/logout", headers=auth(tok)).status_code == 204
    assert client.get("/api/me", headers=auth(tok)).status_code == 401


def test_client_credentials_and_scope_narrowing(client, world):
    r = client.post("/auth/token", data={"grant_type": "client_credentials", "client_id": world.client_id,
                                         "client_secret": "wrong"})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    r = client.post("/auth/token", data={"grant_type": "client_credentials", "client_id": world.client_id,
                                         "client_secret": world.client_secret, "scope": "system/Organization.rs"})
    assert r.status_code == 200 and r.json()["scope"] == "system/Organization.rs"
    narrow = auth(r.json()["access_token"])
    assert client.get("/fhir/R4/Organization", headers=narrow).status_code == 200
    assert client.get("/fhir/R4/Patient?name=x", headers=narrow).status_code == 403
    # A user asking for more than the role allows gets only what the role allows.
    tok = token(client, world.users["doc_a"], scope="user/Patient.r user/AuditEvent.rs")
    me = client.get("/api/me", headers=auth(tok)).json()
    assert me["scope"] == "user/Patient.r"
    r = client.post("/auth/token", data={"grant_type": "authorization_code", "code": "x"})
    assert r.status_code == 400 and r.json()["error"] == "unsupported_grant_type"


def test_bureau_manager_cannot_read_patients(client, world):
    tok = token(client, world.users["mgr"])
    assert client.get("/fhir/R4/Patient?name=chen", headers=auth(tok)).status_code == 403


@pytest.mark.parametrize(("password", "problem"), [
    ("short1A", "at least 8"), ("alllowercase", "at least 3"), ("Nurse_Amy2026", "user name"),
])
def test_password_complexity(db, world, password, problem):
    from onetrip.auth.service import create_user
    from onetrip.kit.errors import BadRequest

    with db.session() as s, pytest.raises(BadRequest) as exc:
        create_user(s, "nurse_amy", password, ["nurse"], "Amy", world.org_a)
    assert problem in exc.value.message


def test_production_refuses_the_default_secret():
    with pytest.raises(ValueError, match="ONETRIP_SECRET_KEY"):
        Settings(env="production", secret_key=DEV_SECRET)
    with pytest.raises(ValueError):
        Settings(env="production", secret_key="short")
    assert Settings(env="production", secret_key="x" * 40).secret_key == "x" * 40


def test_production_refuses_to_start_without_an_audit_key(monkeypatch):
    monkeypatch.delenv("ONETRIP_AUDIT_KEYS", raising=False)
    monkeypatch.delenv("ONETRIP_AUDIT_KEY_FILE", raising=False)
    with pytest.raises(ValueError, match="ONETRIP_AUDIT_KEYS"):
        Settings(env="production", secret_key="x" * 40)
    assert Settings(env="development").audit_keys is None  # development generates one (audit/keys.py)
