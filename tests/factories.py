"""Builders for test data, going through the real services (no mocks of our own components)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update

from onetrip.auth import totp as totp_rules
from onetrip.auth.service import begin_enrolment, confirm_enrolment, create_client, create_user
from onetrip.identity import service as identity
from onetrip.identity.schemas import PatientInput
from onetrip.kit.clock import utcnow
from onetrip.kit.identifiers import make_uscc
from onetrip.kit.principal import cli_principal
from onetrip.registry import service as registry
from onetrip.registry.models import MedicalCommunity, User

PASSWORD = "Kestrel-Quay-2026!"  # strong enough for the common-password check (zxcvbn score 4, RULES §10)
_seq = itertools.count(1)
# Users with a second factor, by user name: their TOTP secret and the session factory of their database.
TOTP_USERS: dict[str, tuple[str, Any]] = {}


@dataclass
class World:
    community_id: str
    org_a: str
    org_b: str
    org_a_code: str
    org_b_code: str
    users: dict[str, str] = field(default_factory=dict)  # username -> user id
    client_id: str = ""
    client_secret: str = ""
    password: str = PASSWORD


def uscc_for(n: int) -> str:
    return make_uscc(f"1233{n:04d}{n:09d}"[:17].replace("I", "1"))


def build_world(db) -> World:
    op = cli_principal()
    n = next(_seq) * 10
    with db.session() as s:
        mc = MedicalCommunity(code=f"MC{n}", name=f"测试医共体{n}")
        s.add(mc)
        s.flush()
        a = registry.create_organization(s, op, code=f"LH{n}", name=f"测试总院{n}", org_type="lead_hospital",
                                         grade="3A", uscc=uscc_for(n), community_id=mc.id)
        b = registry.create_organization(s, op, code=f"BC{n}", name=f"测试分院{n}", org_type="branch_centre",
                                         grade="1A", uscc=uscc_for(n + 1), community_id=mc.id, parent_id=a.id)
        w = World(mc.id, a.id, b.id, a.code, b.code)
        for username, roles, org in (
            (f"admin{n}", ["admin"], None), (f"doc_a{n}", ["clinician"], a.id), (f"doc_b{n}", ["clinician"], b.id),
            (f"mgr{n}", ["bureau_manager"], a.id),
        ):
            w.users[username.rstrip("0123456789")] = create_user(s, username, PASSWORD, roles, username, org).username
        for name in (w.users["admin"], w.users["mgr"]):  # privileged roles sign in with a second factor
            enrol_totp(s, name, db.factory)
        client, secret = create_client(s, f"his{n}", "system/*.cruds", a.id)
        w.client_id, w.client_secret = client.client_id, secret
        s.commit()
    return w


def register_patient(db, org_id: str, *, name: str = "陈丽", id_number: str | None = None, mrn: str | None = None,
                     phone: str | None = None, sex: str | None = None, birth_date=None) -> str:
    with db.session() as s:
        rec = identity.register(s, cli_principal(), PatientInput(
            organization_id=org_id, mrn=mrn or f"MRN{next(_seq):07d}", name=name, id_number=id_number,
            phone=phone, sex=sex, birth_date=birth_date))
        s.commit()
        return rec.id


def enrol_totp(session, username: str, factory) -> str:
    """Enrol ``username``'s second factor through the real service (the code of the previous step confirms it,
    so the current step is still free) and remember the secret for ``totp_code``. Returns the secret."""
    user = session.scalar(select(User).where(User.username == username))
    secret = begin_enrolment(session, user)
    step = totp_rules.step_of(utcnow()) - 1
    confirm_enrolment(session, user, totp_rules.code_at_step(secret, step))
    TOTP_USERS[username] = (secret, factory)
    _LAST_STEP[username] = step
    return secret


_LAST_STEP: dict[str, int] = {}  # the last step whose code totp_code handed out, per user


def totp_code(username: str) -> str:
    """A fresh one-time code of an enrolled test user ("" for a user without a second factor).

    A code works once (a replay is refused) and only within one 30-second step either side of now, so this hands
    out the next step not used yet — the current step or the next, never the previous one, which a step boundary
    passing before the server checks it would make too old; when tests sign the same administrator in more
    often than that, it forgets the last accepted step in the user's database first — test set-up only."""
    if username not in TOTP_USERS:
        return ""
    secret, factory = TOTP_USERS[username]
    now = totp_rules.step_of(utcnow())
    step = max(now, _LAST_STEP.get(username, now - 1) + 1)
    if step > now + 1:
        with factory() as s:
            s.execute(update(User).where(User.username == username).values(totp_last_step=None))
            s.commit()
        step = now
    _LAST_STEP[username] = step
    return totp_rules.code_at_step(secret, step)


def token(client, username: str, password: str = PASSWORD, scope: str | None = None) -> str:
    """An access token from POST /auth/token; a privileged user is enrolled on first use and sends a code."""
    data = {"grant_type": "password", "username": username, "password": password}
    if scope:
        data["scope"] = scope
    factory = client.app.state.sessionmaker
    if TOTP_USERS.get(username, (None, None))[1] is not factory:  # not enrolled in this test's database
        r = client.post("/auth/token", data=data)
        if r.status_code == 200:
            return r.json()["access_token"]
        if "enrol" in r.text:
            with factory() as s:
                enrol_totp(s, username, factory)
                s.commit()
        else:  # enrolled already (another app over the same database): send its code
            assert username in TOTP_USERS and "totp" in r.text, r.text
    r = client.post("/auth/token", data={**data, "totp": totp_code(username)})
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def auth(tok: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}"}


def run_concurrently(target, args_list) -> list[BaseException]:
    """Run ``target(*args)`` in one thread per entry of ``args_list``; return what the threads raised."""
    import threading

    errors: list[BaseException] = []

    def guarded(*args):
        try:
            target(*args)
        except BaseException as e:  # noqa: BLE001 — the caller asserts on them
            errors.append(e)

    threads = [threading.Thread(target=guarded, args=tuple(a)) for a in args_list]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def signed_in_web(app, username: str):
    """A TestClient signed in through the web form (with the second factor when the user has one), redirects
    not followed."""
    from fastapi.testclient import TestClient

    c = TestClient(app, follow_redirects=False)
    r = c.post("/ui/login", data={"username": username, "password": PASSWORD, "next": "/ui/",
                                  "totp": totp_code(username)})
    assert r.status_code == 303, r.text
    return c


def with_statements(db, call):
    """``call(session)``'s result and the SQL statements it sent (to show a read is one query, not N+1)."""
    from sqlalchemy import event

    statements: list[str] = []
    with db.session() as s:
        engine = s.get_bind()

        def seen(conn, cursor, statement, *args):
            statements.append(statement)

        event.listen(engine, "before_cursor_execute", seen)
        try:
            res = call(s)
        finally:
            event.remove(engine, "before_cursor_execute", seen)
    return res, statements
