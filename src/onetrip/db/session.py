"""Engines and the unit of work (STYLE 2: commit only at the edge).

SQLite (embedded default): WAL, foreign keys on, a busy timeout, and every transaction opened with
``BEGIN IMMEDIATE`` so two writers queue instead of failing half-way. PostgreSQL via psycopg 3.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.orm import Session, sessionmaker

from onetrip.config import get_settings


def normalize_url(url: str) -> str:
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def default_pool_size() -> int:
    """Two PostgreSQL connections per CPU core this process may run on (at least 2).

    More connections than that do not make more bookings. On the issue 5 benchmark (2 cores, 50 clients,
    2 processes) a pool of 4 per process booked 638-854/s against 449-580/s with 10 + 10 overflow, and
    each attempt cost about a third less CPU in Python and in PostgreSQL. The extra transactions only
    queue inside PostgreSQL (row locks, ``SKIP LOCKED`` scans past locked chain heads) while their threads
    take turns at the GIL; a request waiting for a pooled connection just sleeps (docs/benchmarks.md,
    fifth round)."""
    return max(2, 2 * usable_cpus())


def usable_cpus() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def make_engine(url: str, *, echo: bool = False, pool_size: int | None = None,
                pool_timeout: float | None = None) -> Engine:
    """An engine for ``url``. PostgreSQL: a fixed pool of ``pool_size`` connections (default: the
    ``db_pool_size`` setting, else ``default_pool_size()``), no overflow — an overflow connection is
    opened and closed per use, losing its prepared statements; a request that finds every connection
    busy waits up to ``pool_timeout`` seconds (setting ``db_pool_timeout``) and then gets a 503."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, echo=echo, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            if ":memory:" not in url:
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin_immediate(conn):
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    settings = get_settings()
    size = pool_size or settings.db_pool_size or default_pool_size()
    engine = create_engine(url, echo=echo, pool_size=size, max_overflow=0,
                           pool_timeout=pool_timeout or settings.db_pool_timeout)
    _ping_when_idle(engine)
    _keep_prepared_on_rollback(engine)
    return engine


def _keep_prepared_on_rollback(engine: Engine) -> None:
    """Connect with ``PreparedKeepingConnection`` (SQLAlchemy's documented ``do_connect`` hook)."""

    @event.listens_for(engine, "do_connect")
    def _connect(_dialect, _record, cargs, cparams):
        return _prepared_keeping_connection_class().connect(*cargs, **cparams)


@lru_cache(maxsize=1)
def _prepared_keeping_connection_class():
    """A psycopg connection whose ``rollback()`` keeps the server-side prepared statements.

    psycopg prepares a statement after its fifth execution on a connection, so PostgreSQL parses and plans
    it once instead of every time. But psycopg forgets them all (``DEALLOCATE ALL``) on every
    ``rollback()``, in case the transaction created or dropped what they refer to. Here every request
    that ends with an error (a 409 for a full slot, a 404, a 422) or reads without writing ends with a
    rollback, so the hot statements were almost never prepared: on the booking benchmark PostgreSQL
    planned the booking statement on 2,989 of 3,000 executions, 0.6 ms each, about 40% of its CPU
    (pg_stat_statements, docs/benchmarks.md, issue 5). Schema changes happen only in migrations, and
    psycopg still forgets its statements after DROP, ALTER and DISCARD ALL (so after any ALTER a
    migration runs); a prepared statement whose table changed is re-planned by PostgreSQL itself.

    It uses two private names of psycopg (``_prepared``, ``_rollback_gen``): pyproject pins psycopg
    below 3.4, and tests/db/test_prepared_statements.py fails if a rollback stops keeping them or stops
    rolling back."""
    import psycopg
    from psycopg._preparing import PrepareManager

    class _KeptOnRollback(PrepareManager):
        rolling_back = False

        def clear(self) -> bool:
            return False if self.rolling_back else super().clear()

    class PreparedKeepingConnection(psycopg.Connection):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self._prepared = _KeptOnRollback()

        def _rollback_gen(self):
            self._prepared.rolling_back = True
            try:
                return (yield from super()._rollback_gen())
            finally:
                self._prepared.rolling_back = False

    return PreparedKeepingConnection


IDLE_PING_SECONDS = 10.0


def _ping_when_idle(engine: Engine) -> None:
    """Pessimistic disconnect handling, only for connections that sat in the pool for a while.

    ``pool_pre_ping`` pings on every checkout: one more round trip per transaction (per booking, per
    audited read). A connection checked in less than ``IDLE_PING_SECONDS`` ago was working then; one that
    idled longer (a restarted server, a dropped TCP connection) is pinged, and a failed ping makes the
    pool discard it and connect anew (``DisconnectionError``, SQLAlchemy's documented custom pre-ping).
    A connection that breaks inside the window fails its next statement once and is discarded then."""

    @event.listens_for(engine, "connect")
    def _connected(_dbapi_conn, record):
        record.info["onetrip_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_conn, record):
        record.info["onetrip_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_conn, record, _proxy):
        since = record.info.get("onetrip_idle_since")
        if since is not None and time.monotonic() - since < IDLE_PING_SECONDS:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_conn)
        except Exception as e:  # noqa: BLE001 — any failure means: not usable
            raise exc.DisconnectionError(f"stale pooled connection: {e}") from e
        if not alive:
            raise exc.DisconnectionError("stale pooled connection")


@lru_cache
def get_engine() -> Engine:
    s = get_settings()
    return make_engine(s.database_url, echo=s.log_sql)


@lru_cache
def get_sessionmaker() -> sessionmaker[Session]:
    return sessionmaker(bind=get_engine(), expire_on_commit=False)


@contextmanager
def unit_of_work(factory: sessionmaker[Session] | None = None) -> Iterator[Session]:
    """The CLI's and jobs' transaction: commit on success, roll back on error."""
    session = (factory or get_sessionmaker())()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
