"""The PostgreSQL pool is a fixed number of connections per process (db.session.make_engine, issue 5): a
request that finds them all busy waits for one, and after ``db_pool_timeout`` gets a 503 with an
OperationOutcome and Retry-After, never a 500."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import TimeoutError as PoolTimeout

from onetrip.app import create_app
from onetrip.config import Settings
from onetrip.db import session as db_session
from tests.factories import auth, token


@pytest.fixture
def pg(db):
    if db.kind != "postgresql":
        pytest.skip("the fixed pool is PostgreSQL's (SQLite keeps SQLAlchemy's own)")
    return db


@pytest.mark.parametrize(("cores", "size"), [(1, 2), (2, 4), (8, 16)])
def test_the_default_is_two_connections_per_usable_core(cores, size, monkeypatch):
    monkeypatch.setattr(db_session, "usable_cpus", lambda: cores)
    assert db_session.default_pool_size() == size


def test_the_engine_uses_the_default_and_the_setting_overrides_it(pg, monkeypatch):
    engine = db_session.make_engine(pg.url)
    try:
        assert engine.pool.size() == db_session.default_pool_size()
    finally:
        engine.dispose()
    monkeypatch.setenv("ONETRIP_DB_POOL_SIZE", "3")
    db_session.get_settings.cache_clear()
    try:
        engine = db_session.make_engine(pg.url)
        assert engine.pool.size() == 3
        engine.dispose()
    finally:
        monkeypatch.delenv("ONETRIP_DB_POOL_SIZE")
        db_session.get_settings.cache_clear()


def test_no_connection_beyond_the_pool_a_caller_waits_then_times_out(pg):
    engine = db_session.make_engine(pg.url, pool_size=2, pool_timeout=0.3)
    try:
        with engine.connect() as a, engine.connect() as b:
            assert a.execute(text("select pg_backend_pid()")).scalar_one() != \
                b.execute(text("select pg_backend_pid()")).scalar_one()
            started = time.monotonic()
            with pytest.raises(PoolTimeout):
                engine.connect()  # no overflow connection: it waits for one of the two
            assert time.monotonic() - started >= 0.25
        with engine.connect() as c:  # given back: usable again
            assert c.execute(text("select 1")).scalar_one() == 1
    finally:
        engine.dispose()


def test_a_request_that_finds_every_connection_busy_gets_a_503_operation_outcome(pg, world):
    app = create_app(Settings(database_url=pg.url, db_pool_size=1, db_pool_timeout=0.3))
    with TestClient(app) as client:
        headers = auth(token(client, world.users["admin"]))
        engine = app.state.sessionmaker.kw["bind"]
        assert engine.pool.size() == 1
        with engine.connect() as held:  # the pool's only connection
            held.execute(text("select 1"))
            r = client.get("/fhir/R4/Patient", headers=headers)
        assert r.status_code == 503, r.text
        assert r.headers["retry-after"] == "2"
        body = r.json()
        assert body["resourceType"] == "OperationOutcome"
        assert body["issue"][0]["code"] == "transient"
        assert "busy" in body["issue"][0]["details"]["text"]
        assert client.get("/fhir/R4/Patient", headers=headers).status_code == 200  # free again: served
