"""Hot-path statements run on the driver connection, compiled once.

SQLAlchemy builds the SQL of these statements (portable Core, bound parameters, types); what it costs per
call — the compiled-cache look-up, the execution context, the result object, events — is 100–250 µs of
Python per statement on this machine against the statement's own 40–150 µs in psycopg (measured for the
booking statement, bench/ and docs/benchmarks.md, issue 5). A handful of statements that run on every
booking or audited request therefore compile once and, on PostgreSQL (psycopg), go straight to a
``RawCursor`` of the session's connection (PostgreSQL's ``$n`` placeholders, converted once:
``native_placeholders``), in the session's transaction, with SQLAlchemy's own bind and result processors
applied (UTC datetimes, JSON, booleans). On SQLite (one writer at a time, nothing to gain) they run
through SQLAlchemy as usual. Everything else uses ``session.execute``.

What is given up: SQLAlchemy's cursor events and SQL echo do not see these statements; ``observers``
(callables taking the SQL text) do, and with ``settings.log_sql`` (the engine's echo) they are logged here,
masked. Driver errors are raised as SQLAlchemy's exceptions (``IntegrityError`` …), and a lost connection
is invalidated, as SQLAlchemy does.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

from psycopg import RawCursor
from sqlalchemy import BindParameter, Executable, bindparam, exc
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.orm import Session

from onetrip.kit.masking import scrub

log = logging.getLogger("onetrip.sql")
observers: list[Callable[[str], None]] = []  # e.g. tests counting statements


def column_param(name: str, column) -> BindParameter:
    """A bound parameter typed as ``column`` (so SQLAlchemy applies the column's processors: UTC datetimes,
    JSON), for statements built once whose values are shared between several rows' columns."""
    return bindparam(name, type_=column.type)


_PYFORMAT = re.compile(r"%\((\w+)\)s|%%")


def native_placeholders(sql: str, inline: Mapping[str, str] | None = None) -> tuple[str, list[str]]:
    """SQL in psycopg's ``%(name)s`` style → PostgreSQL's own ``$1, $2 …`` (a name used twice is one
    parameter) and the parameter names in order; a name in ``inline`` is replaced by its SQL literal.
    psycopg's ``RawCursor`` sends such SQL as it is: the ordinary cursor parses every query for its
    placeholders, and caches the result only for queries of at most 4,096 bytes — the booking's write is
    longer, and parsing it was a quarter of the booking's Python time (issue 5)."""
    names: dict[str, int] = {}
    inline = inline or {}

    def placeholder(m: re.Match[str]) -> str:
        if m.group(0) == "%%":
            return "%"
        if m.group(1) in inline:
            return inline[m.group(1)]
        return f"${names.setdefault(m.group(1), len(names) + 1)}"

    return _PYFORMAT.sub(placeholder, sql), list(names)


class _Compiled:
    """A statement compiled once for PostgreSQL (psycopg): its ``$n`` SQL, parameter order and processors."""
    __slots__ = ("sql", "native_sql", "order", "defaults", "bind_procs", "keys", "result_procs")

    def __init__(self, stmt: Executable, dialect: Dialect) -> None:
        c = stmt.compile(dialect=dialect)
        self.sql = c.string
        # literal values SQLAlchemy bound itself (e.g. ``booked + 1``), under their rendered names
        self.defaults = {name: b.effective_value for b, name in c.bind_names.items() if not b.required}
        # On PostgreSQL they are written into the SQL: a prepared statement's generic plan then knows them.
        # (With ``LIMIT $n`` the planner assumes a tenth of the rows, finds the generic plan dearer and plans
        # anew on every execution — 0.6 ms of PostgreSQL's CPU per booking.)
        inline = {}
        for b, name in c.bind_names.items():
            literal = b.type.dialect_impl(dialect).literal_processor(dialect)
            if not b.required and b.effective_value is not None and literal is not None:
                inline[name] = literal(b.effective_value)
        self.native_sql, self.order = native_placeholders(c.string, inline)
        for name in inline:  # in the SQL now: not a parameter of each call
            del self.defaults[name]
        procs = {name: b.type.dialect_impl(dialect).bind_processor(dialect) for b, name in c.bind_names.items()}
        self.bind_procs = [(k, p) for k, p in procs.items() if p is not None]
        self.keys = [col[0] for col in c._result_columns]  # noqa: SLF001 — the labels, in order
        self.result_procs = [col[3].dialect_impl(dialect).result_processor(dialect, None)
                             for col in c._result_columns]  # noqa: SLF001


class Row(tuple):
    """A result row: by position, or by column label as an attribute (as SQLAlchemy's Row; a label
    that is a tuple method's name, ``count`` or ``index``, is reached by position only)."""

    __slots__ = ()
    _index: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        try:
            return self[type(self)._index[name]]
        except KeyError:
            raise AttributeError(name) from None


class DriverStatement:
    """A Core statement run on the session's DBAPI connection (see the module's docstring)."""

    def __init__(self, stmt: Executable) -> None:
        self.stmt = stmt
        self._by_dialect: dict[str, tuple[_Compiled, type[Row]]] = {}

    def _compiled(self, dialect: Dialect) -> tuple[_Compiled, type[Row]]:
        got = self._by_dialect.get(dialect.name)
        if got is None:
            c = _Compiled(self.stmt, dialect)
            row_type = type("Row", (Row,), {"__slots__": (), "_index": {k: i for i, k in enumerate(c.keys)}})
            got = self._by_dialect[dialect.name] = (c, row_type)
        return got

    def _run(self, conn: Connection, params: Mapping[str, Any]):
        """PostgreSQL: run it on ``conn``'s psycopg connection; the open cursor."""
        c, row_type = self._compiled(conn.dialect)
        values = {**c.defaults, **params}
        for key, proc in c.bind_procs:
            if key in values:
                values[key] = proc(values[key])
        for observe in observers:
            observe(c.sql)
        if conn.engine.echo:  # settings.log_sql (SQLAlchemy's echo), not merely an INFO-level root logger
            log.info("%s", scrub(f"{c.sql} {values!r}"))
        cursor = RawCursor(conn.connection.driver_connection)
        try:
            cursor.execute(c.native_sql, [values[name] for name in c.order])
        except conn.dialect.loaded_dbapi.Error as e:
            # as SQLAlchemy would: its exception classes (the API's handlers map IntegrityError to 409,
            # OperationalError to 503 …), and a connection that was lost is dropped from the pool
            cursor.close()
            lost = conn.dialect.is_disconnect(e, conn.connection.dbapi_connection, cursor)
            if lost:
                conn.invalidate(e)
            raise exc.DBAPIError.instance(c.sql, values, e, conn.dialect.loaded_dbapi.Error,
                                          connection_invalidated=lost, dialect=conn.dialect) from e
        return cursor, c, row_type

    def execute(self, session: Session, params: Mapping[str, Any]) -> int:
        """Run it; the row count."""
        conn = session.connection()
        if conn.dialect.name != "postgresql":
            return conn.execute(self.stmt, params).rowcount
        cursor, _, _ = self._run(conn, params)
        try:
            return cursor.rowcount
        finally:
            cursor.close()

    def first(self, session: Session, params: Mapping[str, Any]) -> Row | None:
        """Run it; the first row (result processors applied), or None."""
        conn = session.connection()
        if conn.dialect.name != "postgresql":
            return conn.execute(self.stmt, params).first()  # type: ignore[return-value]
        cursor, c, row_type = self._run(conn, params)
        try:
            raw = cursor.fetchone()
        finally:
            cursor.close()
        if raw is None:
            return None
        return row_type(v if p is None or v is None else p(v) for v, p in zip(raw, c.result_procs, strict=True))
