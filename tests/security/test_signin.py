"""Sign-in hardening (issue 26 point 3; RULES §10): throttling with 429 + Retry-After, a lockout a stranger cannot
turn against an administrator, identical answers for unknown user / wrong password / locked account, the
common-password check, TOTP for privileged roles (replay refused, recovery codes single-use), password rotation."""

from __future__ import annotations

import datetime as dt
import re
import statistics
import time

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from onetrip.audit.models import AuditEvent
from onetrip.auth import throttle
from onetrip.auth import totp as totp_rules
from onetrip.auth.service import begin_enrolment, confirm_enrolment, create_user
from onetrip.kit.errors import BadRequest
from onetrip.registry.models import LoginThrottle, User
from tests.factories import PASSWORD, totp_code

WRONG = "Wrong-Guess-Horse-42!"


def _from(app, address: str, **kw) -> TestClient:
    return TestClient(app, client=(address, 50000), **kw)


def _token(c: TestClient, username: str, password: str, **extra):
    return c.post("/auth/token", data={"grant_type": "password", "username": username, "password": password, **extra})


def _delay_over(db, address: str) -> None:
    """The progressive delay of ``address`` has passed (instead of sleeping through it)."""
    with db.session() as s:
        s.execute(update(LoginThrottle).where(LoginThrottle.key == throttle.address_key(address))
                  .values(next_allowed_at=None))
        s.commit()


def _user(db, username: str, roles: list[str], org: str | None) -> None:
    with db.session() as s:
        create_user(s, username, PASSWORD, roles, username, org)
        s.commit()


def _enrolled(db, username: str) -> tuple[str, list[str]]:
    """Enrol through the service; returns the secret and the recovery codes."""
    with db.session() as s:
        user = s.scalar(select(User).where(User.username == username))
        secret = begin_enrolment(s, user)
        codes = confirm_enrolment(s, user, totp_rules.code_at_step(secret, totp_rules.step_of(dt.datetime.now(dt.UTC)) - 1))
        s.commit()
    return secret, codes


def _logins(db, username: str) -> list[AuditEvent]:
    with db.session() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.subtype == "login", AuditEvent.agent_name == username)
                              .order_by(AuditEvent.seq)))


# --- pure rules -----------------------------------------------------------------------------------------------

def test_progressive_delay_doubles_up_to_the_cap():
    p = throttle.ThrottlePolicy(free_failures=3, base_delay_seconds=2, max_delay_seconds=60)
    assert [throttle.progressive_delay(n, p) for n in range(1, 11)] == [0, 0, 0, 2, 4, 8, 16, 32, 60, 60]


def test_account_locks_only_from_many_addresses():
    p = throttle.ThrottlePolicy(account_addresses=3)
    now = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    c = throttle.current(None, now, p)
    for _ in range(10):  # one stranger, many failures: no account-wide lock
        c = throttle.after_account_failure(c, now, p, "10.0.0.9")
    assert not throttle.is_locked(c, now)
    c = throttle.after_account_failure(throttle.after_account_failure(c, now, p, "10.0.0.8"), now, p, "10.0.0.7")
    assert throttle.is_locked(c, now)


# --- throttling -----------------------------------------------------------------------------------------------

def test_an_address_gets_429_with_retry_after_after_repeated_failures(app, db, world):
    c = _from(app, "10.31.0.1")
    for i in range(4):  # three free failures, the fourth starts the delay
        r = _token(c, f"nobody{i}", WRONG)
        assert r.status_code == 400, r.text
    r = _token(c, world.users["doc_a"], PASSWORD)  # even a right password waits: the address is slowed down
    assert r.status_code == 429
    assert 1 <= int(r.headers["Retry-After"]) <= 2
    body = r.json()
    assert body["error"] == "slow_down" and "too many attempts" in body["error_description"]
    assert body["resourceType"] == "OperationOutcome" and body["issue"][0]["code"] == "throttled"
    _delay_over(db, "10.31.0.1")
    assert _token(c, "nobody9", WRONG).status_code == 400
    assert int(_token(c, "nobody9", WRONG).headers["Retry-After"]) > 2  # the delay grows: 2 s, then 4 s, ...
    other = _from(app, "10.31.0.2")
    assert _token(other, world.users["doc_a"], PASSWORD).status_code == 200  # other addresses are not slowed


def test_an_address_is_refused_for_the_window_after_the_maximum(app, db, world):
    c = _from(app, "10.31.0.3")
    for i in range(30):
        _token(c, f"spray{i}", WRONG)
        _delay_over(db, "10.31.0.3") if i < 29 else None
    r = _token(c, "spray-last", WRONG)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 14 * 60  # until the 15-minute window ends


def test_web_form_shows_the_429_inline_and_keeps_the_user_name(app, db, world):
    c = _from(app, "10.31.0.4", follow_redirects=False)
    r = c.post("/ui/login?lang=en", data={"username": "ghost.user", "password": WRONG})
    assert r.status_code == 400 and 'value="ghost.user"' in r.text and 'id="login-error"' in r.text
    assert "wrong user name or password" in r.text
    for _ in range(3):
        c.post("/ui/login?lang=en", data={"username": "ghost.user", "password": WRONG})
    r = c.post("/ui/login?lang=en", data={"username": "ghost.user", "password": WRONG})
    assert r.status_code == 429 and r.headers["Retry-After"]
    assert 'id="login-error"' in r.text and "too many attempts" in r.text and 'value="ghost.user"' in r.text


# --- lockout a stranger cannot use ------------------------------------------------------------------------------

def test_a_strangers_failures_do_not_lock_the_admin_out_of_their_own_address(app, db, world):
    admin = world.users["admin"]
    stranger = _from(app, "10.32.0.66")
    for _ in range(8):
        _token(stranger, admin, WRONG)
        _delay_over(db, "10.32.0.66")
    # The stranger, even with the right password (and without the code), gets the generic answer ...
    assert _token(stranger, admin, PASSWORD).json()["error_description"].endswith("wrong user name or password")
    # ... while the administrator at their own desk signs in.
    own = _from(app, "10.32.0.1")
    r = _token(own, admin, PASSWORD, totp=totp_code(admin))
    assert r.status_code == 200, r.text


def test_a_distributed_guess_locks_the_account_and_only_the_second_factor_opens_it(app, db, world):
    _user(db, "spread.nurse", ["nurse"], world.org_a)
    _user(db, "spread.admin", ["admin"], None)
    secret, _codes = _enrolled(db, "spread.admin")
    for name in ("spread.nurse", "spread.admin"):
        for n in range(5):  # lockout_account_addresses = 5 distinct addresses
            _token(_from(app, f"10.33.{n}.1"), name, WRONG)
    fresh = _from(app, "10.33.9.9")
    wrong = _token(fresh, "spread.nurse", WRONG)
    locked = _token(fresh, "spread.nurse", PASSWORD)
    assert locked.status_code == 400 and locked.json() == wrong.json()
    assert _logins(db, "spread.nurse")[-1].outcome_desc == "account locked"
    # The administrator: password alone is refused with the generic answer; password + code opens the lock.
    r = _token(fresh, "spread.admin", PASSWORD)
    assert r.status_code == 400 and r.json() == wrong.json()
    with db.session() as s:
        s.execute(update(User).where(User.username == "spread.admin").values(totp_last_step=None))
        s.commit()
    r = _token(fresh, "spread.admin", PASSWORD, totp=pyotp.TOTP(secret).now())
    assert r.status_code == 200, r.text
    assert _logins(db, "spread.admin")[-1].outcome_desc == "second factor: totp"


def test_unknown_user_wrong_password_and_locked_account_get_identical_answers(app, db, world):
    _user(db, "same.answer", ["clinician"], world.org_a)
    c = _from(app, "10.34.0.1")
    unknown = _token(c, "no.such.user", WRONG)
    _delay_over(db, "10.34.0.1")
    wrong = _token(c, "same.answer", WRONG)
    for _ in range(4):
        _delay_over(db, "10.34.0.1")
        _token(c, "same.answer", WRONG)
    _delay_over(db, "10.34.0.1")
    locked = _token(c, "same.answer", PASSWORD)
    assert unknown.status_code == wrong.status_code == locked.status_code == 400
    assert unknown.content == wrong.content == locked.content
    assert {k: v for k, v in unknown.headers.items() if k != "date"} == {
        k: v for k, v in locked.headers.items() if k != "date"}
    reasons = [e.outcome_desc for e in _logins(db, "no.such.user") + _logins(db, "same.answer")]
    assert reasons[0] == "unknown or inactive user" and reasons[1] == "wrong password"
    assert reasons[-1] == "locked for this address"  # the audit row keeps the true reason


def test_unknown_user_costs_the_same_password_hash_as_a_wrong_password(app, db, world):
    """The hash always runs: an unknown user takes about as long as a wrong password (no user-name probe by time)."""
    c = _from(app, "10.34.0.2")

    def timed(name: str) -> float:
        _delay_over(db, "10.34.0.2")
        t = time.perf_counter()
        _token(c, name, WRONG)
        return time.perf_counter() - t

    unknown = statistics.median(timed(f"ghost{i}") for i in range(5))
    known = statistics.median(timed(world.users["doc_b"]) for _ in range(5))
    assert 0.5 < unknown / known < 2.0, (unknown, known)


# --- common passwords ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("password", ["Password1", "Admin@123", "Demo@2026!", "Test@2026pass", "Qwerty!2345",
                                      "Onetrip@2026", "P@ssw0rd2026"])
def test_common_and_guessable_passwords_are_refused(db, world, password):
    with db.session() as s, pytest.raises(BadRequest) as exc:
        create_user(s, "deny.list", password, ["nurse"], "Deny", world.org_a)
    assert "too common" in exc.value.message


def test_a_strong_password_is_accepted(db, world):
    with db.session() as s:
        assert create_user(s, "strong.pw", "Lantern-Heron#Quay-81", ["nurse"], "Strong", world.org_a).id
        s.rollback()


# --- TOTP for privileged roles ------------------------------------------------------------------------------------

def test_admin_needs_a_code_a_wrong_one_is_refused_and_a_used_one_cannot_be_replayed(app, db, world):
    admin = world.users["admin"]
    c = _from(app, "10.35.0.1")
    r = _token(c, admin, PASSWORD)
    assert r.status_code == 400 and "one-time code" in r.json()["error_description"]
    code = totp_code(admin)
    bad = f"{(int(code) + 1) % 1_000_000:06d}"
    r = _token(c, admin, PASSWORD, totp=bad)
    assert r.status_code == 400 and "wrong or already used" in r.json()["error_description"]
    assert _token(c, admin, PASSWORD, totp=code).status_code == 200
    r = _token(c, admin, PASSWORD, totp=code)  # the same code again: a replay
    assert r.status_code == 400 and "wrong or already used" in r.json()["error_description"]
    reasons = [e.outcome_desc for e in _logins(db, admin)[-4:]]
    assert reasons == ["second factor missing", "wrong or replayed second factor", "second factor: totp",
                       "wrong or replayed second factor"]


def test_bureau_manager_needs_the_second_factor_too(app, world):
    r = _token(_from(app, "10.35.0.2"), world.users["mgr"], PASSWORD)
    assert r.status_code == 400 and "one-time code" in r.json()["error_description"]


def test_a_recovery_code_works_once(app, db, world):
    _user(db, "rc.admin", ["admin"], None)
    _secret, codes = _enrolled(db, "rc.admin")
    assert len(codes) == 10 and len(set(codes)) == 10
    with db.session() as s:  # stored hashed only
        from onetrip.registry.models import RecoveryCode

        stored = {rc.code_hash for rc in s.scalars(select(RecoveryCode))}
        assert not any(code in stored for code in codes)
    c = _from(app, "10.35.0.3")
    assert _token(c, "rc.admin", PASSWORD, totp=codes[3].lower()).status_code == 200
    r = _token(c, "rc.admin", PASSWORD, totp=codes[3])
    assert r.status_code == 400 and "wrong or already used" in r.json()["error_description"]
    assert _token(c, "rc.admin", PASSWORD, totp=codes[4]).status_code == 200


def test_a_privileged_user_without_enrolment_gets_a_clear_error_at_the_token_endpoint(app, db, world):
    _user(db, "new.admin", ["admin"], None)
    r = _token(_from(app, "10.35.0.4"), "new.admin", PASSWORD)
    assert r.status_code == 400 and "enrol" in r.json()["error_description"]
    assert "/ui/login" in r.json()["error_description"]


def test_web_enrolment_then_sign_in_with_the_second_step(app, db, world):
    _user(db, "web.admin", ["admin"], None)
    c = _from(app, "10.36.0.1", follow_redirects=False)
    r = c.post("/ui/login?lang=en", data={"username": "web.admin", "password": PASSWORD, "next": "/ui/patients"})
    assert r.status_code == 200 and "Set up two-step sign-in" in r.text and "<svg" in r.text
    uri = re.search(r'id="totp-uri" href="([^"]+)"|href="(otpauth://[^"]+)"', r.text)
    assert uri and "otpauth://totp/OneTrip" in (uri.group(1) or uri.group(2))
    secret = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', r.text).group(1).replace(" ", "")
    ticket = re.search(r'name="ticket" value="([^"]+)"', r.text).group(1)
    assert "session" not in r.cookies and not r.headers.get("set-cookie", "").startswith("onetrip")
    r = c.post("/ui/login/enrol?lang=en", data={"ticket": ticket, "totp": "000000", "next": "/ui/patients"})
    assert r.status_code == 400 and "not right" in r.text and "Set up two-step sign-in" in r.text
    step = totp_rules.step_of(dt.datetime.now(dt.UTC))
    r = c.post("/ui/login/enrol?lang=en", data={"ticket": ticket, "totp": totp_rules.code_at_step(secret, step - 1),
                                                "next": "/ui/patients"})
    assert r.status_code == 200 and "Your recovery codes" in r.text
    assert len(re.findall(r"<li>[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}</li>", r.text)) == 10
    assert c.get("/ui/").status_code == 200  # signed in
    # Next time: password, then the second step.
    c2 = _from(app, "10.36.0.1", follow_redirects=False)
    r = c2.post("/ui/login?lang=en", data={"username": "web.admin", "password": PASSWORD, "next": "/ui/patients"})
    assert r.status_code == 200 and 'action="/ui/login/totp"' in r.text
    ticket = re.search(r'name="ticket" value="([^"]+)"', r.text).group(1)
    r = c2.post("/ui/login/totp?lang=en", data={"ticket": ticket, "totp": "123", "next": "/ui/patients"})
    assert r.status_code == 400 and "wrong or already used" in r.text and "web.admin" in r.text
    r = c2.post("/ui/login/totp", data={"ticket": ticket, "totp": totp_rules.code_at_step(secret, step),
                                        "next": "/ui/patients"})
    assert r.status_code == 303 and r.headers["location"] == "/ui/patients"
    # The ticket is no access token.
    assert c2.get("/api/me", headers={"Authorization": f"Bearer {ticket}"}).status_code == 401


# --- password rotation ----------------------------------------------------------------------------------------

def test_an_expired_password_is_refused_at_the_token_endpoint_and_changed_on_the_web(app, db, world):
    _user(db, "old.pw", ["clinician"], world.org_a)
    with db.session() as s:
        s.execute(update(User).where(User.username == "old.pw")
                  .values(password_changed_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=91)))
        s.commit()
    r = _token(_from(app, "10.37.0.1"), "old.pw", PASSWORD)
    assert r.status_code == 400 and "expired" in r.json()["error_description"]
    c = _from(app, "10.37.0.1", follow_redirects=False)
    r = c.post("/ui/login?lang=en", data={"username": "old.pw", "password": PASSWORD})
    assert r.status_code == 200 and "Your password has expired" in r.text
    ticket = re.search(r'name="ticket" value="([^"]+)"', r.text).group(1)
    r = c.post("/ui/login/password?lang=en", data={"ticket": ticket, "new_password": "Password1",
                                                   "confirm": "Password1"})
    assert r.status_code == 400 and "too common" in r.text
    new = "Harbour-Quince#Lark-57"
    r = c.post("/ui/login/password", data={"ticket": ticket, "new_password": new, "confirm": new})
    assert r.status_code == 303
    assert _token(_from(app, "10.37.0.2"), "old.pw", new).status_code == 200


def test_an_operator_resets_a_lost_second_factor(app, db, world, cli_env):
    from onetrip.cli.main import app as cli

    _user(db, "lost.phone", ["admin"], None)
    _secret, codes = _enrolled(db, "lost.phone")
    r = cli_env.invoke(cli, ["user", "reset-second-factor", "lost.phone"])
    assert r.exit_code == 0, r.output
    assert "enrols again" in r.output
    c = _from(app, "10.38.0.1")
    r = _token(c, "lost.phone", PASSWORD, totp=codes[0])  # the old recovery codes are void ...
    assert r.status_code == 400 and "enrol" in r.json()["error_description"]  # ... and enrolment is due again
    r = cli_env.invoke(cli, ["user", "reset-second-factor", "nobody.here"])
    assert r.exit_code != 0 and "no user" in r.output


def test_a_hammered_throttled_address_writes_one_audit_row_per_wait(app, db, world):
    """429s under attack: the first refusal of a waiting period is audited, the others are counted (no audit
    chain write each) and the count is reported with the next period's row."""

    address = "10.31.0.9"
    c = _from(app, address)

    def throttled_rows() -> list[str]:
        with db.session() as s:
            return list(s.scalars(select(AuditEvent.outcome_desc).where(
                AuditEvent.network_address == address, AuditEvent.outcome_desc.like("throttled%"))
                .order_by(AuditEvent.recorded_at, AuditEvent.chain_seq)))

    for _ in range(4):  # the free failures, then the first delay
        _token(c, "hammer.user", WRONG)
    refused = [_token(c, "hammer.user", WRONG) for _ in range(12)]
    assert all(r.status_code == 429 and r.headers["Retry-After"] for r in refused)
    assert len(throttled_rows()) == 1
    _delay_over(db, address)
    _token(c, "hammer.user", WRONG)  # a failure after the wait: a new, longer wait begins
    assert _token(c, "hammer.user", WRONG).status_code == 429
    rows = throttled_rows()
    assert len(rows) == 2 and "11 more attempts refused in the previous wait" in rows[1]
