"""PostgreSQL connections keep their prepared statements across a rollback (db.session
``PreparedKeepingConnection``): psycopg prepares a statement after five executions and, by itself, forgets
them all on every rollback — and here every 409, 404 and read-only request ends with one."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from sqlalchemy import text

from onetrip.db import session as db_session

_PROBE = "select count(*) from audit_chain_head where id >= %(n)s"


@pytest.fixture
def pg(db):
    if db.kind != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's (psycopg)")
    return db


def _prepared(raw) -> list[str]:
    with raw.cursor() as cur:
        cur.execute("select statement from pg_prepared_statements")
        return [r[0] for r in cur.fetchall()]


def _run_probe(raw, times: int) -> None:
    with raw.cursor() as cur:
        for i in range(times):
            cur.execute(_PROBE, {"n": i})


@contextmanager
def _probed(pg):
    """An app connection (db.session.make_engine) on which the probe statement is prepared."""
    engine = db_session.make_engine(pg.url)
    try:
        with engine.connect() as c:
            raw = c.connection.driver_connection
            _run_probe(raw, raw.prepare_threshold + 1)
            assert any("audit_chain_head" in s for s in _prepared(raw))
            yield c, raw
    finally:
        engine.dispose()


def test_a_rollback_keeps_the_prepared_statements(pg):
    with _probed(pg) as (c, raw):
        c.rollback()
        assert any("audit_chain_head" in s for s in _prepared(raw)), "the rollback forgot them"
        c.execute(text("select 1"))
        c.rollback()
        _run_probe(raw, 1)  # psycopg still knows it is prepared: no "already exists", no re-prepare
        assert sum("audit_chain_head" in s for s in _prepared(raw)) == 1


def test_the_rollback_still_rolls_back(pg):
    engine = db_session.make_engine(pg.url)
    try:
        with engine.connect() as c:
            c.execute(text("create temporary table probe_rollback (x int) on commit preserve rows"))
            c.commit()
            c.execute(text("insert into probe_rollback values (1)"))
            c.rollback()
            assert c.execute(text("select count(*) from probe_rollback")).scalar_one() == 0
    finally:
        engine.dispose()


def test_a_plain_psycopg_connection_forgets_them(pg):
    """The behaviour the class exists to change (if psycopg stops forgetting, the class can go)."""
    import psycopg

    with psycopg.connect(pg.url.replace("postgresql+psycopg://", "postgresql://")) as raw:
        _run_probe(raw, raw.prepare_threshold + 1)
        assert any("audit_chain_head" in s for s in _prepared(raw))
        raw.rollback()
        assert not any("audit_chain_head" in s for s in _prepared(raw))


def test_ddl_still_clears_them(pg):
    with _probed(pg) as (c, raw):
        c.execute(text("create temporary table probe_ddl (x int)"))
        c.execute(text("alter table probe_ddl add column y int"))
        assert not any("audit_chain_head" in s for s in _prepared(raw))
        c.rollback()
