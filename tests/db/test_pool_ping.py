"""Pooled PostgreSQL connections are pinged only after idling (db.session._ping_when_idle): a backend that
died while its connection sat in the pool is replaced, not handed to a request; a connection used a moment
ago is not pinged (one round trip less per transaction)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from onetrip.db import session as db_session


@pytest.fixture
def pg(db):
    if db.kind != "postgresql":
        pytest.skip("the pool ping is for PostgreSQL (SQLite has no server to lose)")
    return db


def _kill_pooled_backend(pg) -> int:
    with pg.engine.connect() as c:
        pid = c.execute(text("select pg_backend_pid()")).scalar_one()
    with db_session.make_engine(pg.url).connect() as other:
        other.execute(text("select pg_terminate_backend(:p)"), {"p": pid})
        other.commit()
    return pid


def test_a_connection_that_died_idle_in_the_pool_is_replaced(pg, monkeypatch):
    pg.engine.dispose()
    old = _kill_pooled_backend(pg)
    monkeypatch.setattr(db_session, "IDLE_PING_SECONDS", 0.0)  # it has idled "long enough"
    with pg.engine.connect() as c:
        assert c.execute(text("select 1")).scalar_one() == 1
        assert c.execute(text("select pg_backend_pid()")).scalar_one() != old


def test_within_the_window_a_dead_connection_fails_once_and_is_discarded(pg, monkeypatch):
    pg.engine.dispose()
    monkeypatch.setattr(db_session, "IDLE_PING_SECONDS", 3600.0)
    old = _kill_pooled_backend(pg)
    with pytest.raises(Exception), pg.engine.connect() as c:  # noqa: B017, PT011 — the driver's disconnect error
        c.execute(text("select 1"))
    with pg.engine.connect() as c:  # the pool dropped it: a new backend
        assert c.execute(text("select pg_backend_pid()")).scalar_one() != old


def test_a_recently_used_connection_is_not_pinged(pg, monkeypatch):
    monkeypatch.setattr(db_session, "IDLE_PING_SECONDS", 3600.0)
    with pg.engine.connect() as c:
        c.execute(text("select 1"))
    pings: list[int] = []
    monkeypatch.setattr(pg.engine.dialect, "do_ping", lambda conn: pings.append(1) or True)
    with pg.engine.connect() as c:
        c.execute(text("select 1"))
    assert pings == []
    monkeypatch.setattr(db_session, "IDLE_PING_SECONDS", 0.0)
    with pg.engine.connect() as c:
        c.execute(text("select 1"))
    assert pings == [1]
