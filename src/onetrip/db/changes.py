"""What one unit of work changed, and the one executor that writes it (issue 16).

A domain says what changed; it does not write other owners' tables itself. ``Changes`` holds:

- ``Row``: one row to insert, a dict that knows its table. The domain builds its own rows; the rows of
  the cross-cutting tables come from their owners' builders: ``audit.service.events`` (the audit events,
  hashed on the transaction's chain, and the chain head's move), ``outbox.service.event_row``,
  ``access.service.care_relationship_row``.
- ``Update``: an UPDATE of one row by key (the audit chain head's move).
- optionally a ``Gate``: a conditional statement of the domain's own (a slot's place taken by an UPDATE
  whose WHERE decides). When it takes no row, nothing is written and ``apply`` returns False.

``apply(session, changes)`` writes everything in the session's transaction, all or nothing:

- PostgreSQL: **one statement**, the gate and every write as data-modifying CTEs, each write guarded by the
  gate having taken a row. It is compiled once per shape (which tables, which columns, which values are
  NULL, which are the same object) and run on the driver connection (``fastpath.DriverStatement``): the
  booking's and the order check's one round trip (issues 4 and 5). A value object used in several columns
  of the same type (the booking's ``now``, the person's id) is sent once.
- Other databases (SQLite: one writer at a time, nothing to gain from fusing): the gate, then one INSERT
  per run of rows of one table (executemany) and each UPDATE, inside a savepoint, so a failure half-way
  leaves nothing behind even when the caller carries on.

This is the only place a write of several owners' rows asks which database it is on (STYLE 12).

Rows are complete: every column with a Python-side default must be given (ValueError otherwise: the two
paths would disagree on what such a column gets), a missing column gets its server default or NULL, and
values are plain values (no SQL expressions). An ``Update`` must set every column that has an ``onupdate``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from sqlalchemy import (
    Executable,
    Table,
    bindparam,
    cast,
    exists,
    insert,
    literal_column,
    null,
    select,
    true,
    update,
)
from sqlalchemy.orm import Session

from onetrip.db.fastpath import DriverStatement


class Row(dict):
    """One row to insert into ``table``: its values, as a plain dict (an ORM class can still be made from it,
    ``Model(**row)``, and it can go to an executemany as it is)."""

    __slots__ = ("table",)

    def __init__(self, table: Table, values: Mapping[str, Any] | Iterable[tuple[str, Any]] = (), /, **more: Any):
        super().__init__(values, **more)
        self.table = table


class Update(NamedTuple):
    """``UPDATE table SET values WHERE key`` (every key column equal to its value)."""

    table: Table
    key: Mapping[str, Any]
    values: Mapping[str, Any]


class Gate(NamedTuple):
    """A conditional statement (an UPDATE or INSERT built once, with bound parameters; none named ``chg_…``)
    and its parameters for this call: the changes are written only when it takes at least one row."""

    stmt: Executable
    params: Mapping[str, Any]


class Changes:
    """What a unit of work changed: rows and updates in the order given, optionally behind a gate."""

    __slots__ = ("gate", "writes")

    def __init__(self, *writes: Row | Update, gate: Gate | None = None) -> None:
        self.gate = gate
        self.writes: list[Row | Update] = list(writes)

    def add(self, *writes: Row | Update) -> Changes:
        self.writes.extend(writes)
        return self


def apply(session: Session, changes: Changes) -> bool:
    """Write ``changes`` in the session's transaction (see the module's docstring). True when written; False
    when the gate took nothing — then nothing was written."""
    if changes.gate is None and not changes.writes:
        return True
    if session.connection().dialect.name == "postgresql":
        return _fused(session, changes)
    return _one_by_one(session, changes)


# --- checks ------------------------------------------------------------------------------------------

_checked: set[tuple[str, Table, tuple[str, ...]]] = set()


def _check(kind: str, table: Table, names: tuple[str, ...]) -> None:
    """Once per (table, columns): the columns exist, and nothing is left to a Python-side default."""
    if (kind, table, names) in _checked:
        return
    unknown = [n for n in names if n not in table.c]
    if unknown:
        raise ValueError(f"{table.name} has no column {', '.join(unknown)}")
    given = set(names)
    if kind == "insert":
        missing = [c.name for c in table.columns if c.default is not None and c.name not in given]
    else:
        missing = [c.name for c in table.columns if c.onupdate is not None and c.name not in given]
    if missing:
        raise ValueError(f"{table.name}: give {', '.join(missing)} (a Python-side default is not applied here)")
    _checked.add((kind, table, names))


# --- PostgreSQL: one statement -------------------------------------------------------------------------

_columns: dict[tuple[str, Table, tuple[str, ...]], tuple[tuple[Any, type], ...]] = {}
_statements: dict[tuple, DriverStatement] = {}
_MAX_SHAPES = 512
_names: list[str] = []


def _types_of(kind: str, table: Table, names: tuple[str, ...]) -> tuple[tuple[Any, type], ...]:
    """The (type, type class) of each named column, checked once per (table, columns)."""
    got = _columns.get((kind, table, names))
    if got is None:
        _check(kind, table, names)
        got = _columns[(kind, table, names)] = tuple((table.c[n].type, table.c[n].type.__class__) for n in names)
    return got


def _plan(changes: Changes) -> tuple[tuple, list[Any], list[Any]]:
    """The statement's shape (its cache key), the parameter values and their types. A value is one
    parameter however many columns of one type class hold that very object; ``None`` is NULL in the SQL.
    (Every booking and order check runs this: plain loops, no per-value calls.)"""
    first: dict[int, int] = {}  # id(value) → its parameter
    values: list[Any] = []
    types: list[Any] = []
    classes: list[type] = []
    gate = changes.gate
    shape: list[Any] = [None if gate is None else gate.stmt]
    for w in changes.writes:
        if w.__class__ is Row:
            names = tuple(w)
            items = w.values()
            kind = "insert"
        else:
            names = (*w.key, *w.values)
            items = [*w.key.values(), *w.values.values()]
            kind = "update"
        refs = []
        for v, (t, k) in zip(items, _types_of(kind, w.table, names), strict=True):
            if v is None:
                refs.append(-1)
                continue
            i = first.get(id(v))
            if i is None or classes[i] is not k:
                i = first[id(v)] = len(values)
                values.append(v)
                types.append(t)
                classes.append(k)
            refs.append(i)
        shape.append((kind, w.table, names, tuple(refs)) if kind == "insert"
                     else (kind, w.table, tuple(w.key), names[len(w.key):], tuple(refs)))
    return tuple(shape), values, types


def _build(shape: tuple, types: list[Any]) -> DriverStatement:
    gate_stmt, *parts = shape
    binds = [bindparam(f"chg_{i}", type_=t) for i, t in enumerate(types)]
    taken = None
    if gate_stmt is not None:
        gate = gate_stmt.returning(literal_column("1").label("taken")).cte("chg_gate")
        taken = exists(select(gate.c.taken))
    ctes = []
    for k, part in enumerate(parts):
        if part[0] == "insert":
            _, table, names, refs = part
            _check("insert", table, names)
            if taken is None:
                stmt = insert(table).values({n: binds[r] if r >= 0 else null() for n, r in zip(names, refs, strict=True)})
            else:  # INSERT … SELECT: a NULL there needs its column's type (an untyped one would be text)
                cols = [binds[r] if r >= 0 else cast(null(), table.c[n].type) for n, r in zip(names, refs, strict=True)]
                stmt = insert(table).from_select(list(names), select(*cols).where(taken))
        else:
            _, table, keys, names, refs = part
            _check("update", table, (*keys, *names))
            where = [table.c[n] == binds[r] if r >= 0 else table.c[n].is_(None)
                     for n, r in zip(keys, refs, strict=False)]
            sets = {n: binds[r] if r >= 0 else null() for n, r in zip(names, refs[len(keys):], strict=True)}
            stmt = update(table).where(*where).values(sets)
            if taken is not None:
                stmt = stmt.where(taken)
        ctes.append(stmt.cte(f"chg_{k}"))
    return DriverStatement(select((taken if taken is not None else true()).label("written")).add_cte(*ctes))


def _fused(session: Session, changes: Changes) -> bool:
    shape, values, types = _plan(changes)
    stmt = _statements.get(shape)
    if stmt is None:
        if len(_statements) >= _MAX_SHAPES:  # a bounded cache: forget the oldest shape
            _statements.pop(next(iter(_statements)), None)
        stmt = _statements[shape] = _build(shape, types)
    while len(_names) < len(values):
        _names.append(f"chg_{len(_names)}")
    params = dict(zip(_names, values, strict=False))
    if changes.gate is not None:
        params.update(changes.gate.params)
    row = stmt.first(session, params)
    return bool(row is not None and row[0])


# --- other databases: one statement per table, in a savepoint -------------------------------------------

_inserts: dict[Table, Any] = {}


def _one_by_one(session: Session, changes: Changes) -> bool:
    with session.begin_nested():
        conn = session.connection()
        gate = changes.gate
        if gate is not None and not conn.execute(gate.stmt, dict(gate.params)).rowcount:
            return False
        run: list[Row] = []
        for w in [*changes.writes, None]:
            if run and not (isinstance(w, Row) and w.table is run[0].table and w.keys() == run[0].keys()):
                table = run[0].table
                _check("insert", table, tuple(run[0]))
                stmt = _inserts.get(table)
                if stmt is None:
                    stmt = _inserts[table] = insert(table)
                conn.execute(stmt, run)
                run = []
            if isinstance(w, Row):
                run.append(w)
            elif w is not None:
                _check("update", w.table, (*w.key, *w.values))
                conn.execute(update(w.table).where(*[w.table.c[n] == v for n, v in w.key.items()]).values(w.values))
    return True
