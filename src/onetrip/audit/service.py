"""Write and check audit events. One event per patient read, one per patient in a search page, one per
denied read (IHE BALP shape, RULES §10)."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    CTE,
    BindParameter,
    ColumnElement,
    Select,
    Subquery,
    Update,
    bindparam,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Session

from onetrip.audit.chain import ChainProblem, row_hash, verify_rows
from onetrip.audit.models import AuditChainHead, AuditEvent
from onetrip.db.fastpath import DriverStatement
from onetrip.kit.clock import utcnow
from onetrip.kit.masking import scrub
from onetrip.kit.principal import Principal

OUTCOME_SUCCESS, OUTCOME_MINOR, OUTCOME_SERIOUS = "0", "4", "8"
ACTIONS = {"create": "C", "read": "R", "vread": "R", "history": "R", "search-type": "E", "search": "E",
           "update": "U", "delete": "D", "login": "E", "logout": "E", "break-glass": "E", "export": "R"}

_HEAD = AuditChainHead.__table__
_EVENT = AuditEvent.__table__
_TXN_CHAIN = "onetrip.audit.chain"  # session.info key: (the transaction, the chain it appends to)
# Built once: this runs on every audited request.
_HEAD_COLS = (_HEAD.c.id, _HEAD.c.last_seq, _HEAD.c.last_hash)
# A free head from a random starting point, walking the primary key (a few index pages; ``ORDER BY
# random()`` read and sorted every head, dead versions included, on every audited request), then from
# the first. Migration 0011 creates heads 1–32.
SPREAD = 32


def _free_head_from(start: BindParameter[int]) -> Select:
    return (select(*_HEAD_COLS).where(_HEAD.c.id >= start).order_by(_HEAD.c.id).limit(1)
            .with_for_update(skip_locked=True))


_LOCK_FREE_HEAD_FROM = DriverStatement(_free_head_from(bindparam("start")))
_LOCK_HEAD = select(*_HEAD_COLS).where(_HEAD.c.id == bindparam("chain_id")).with_for_update()
_RELOCK_HEAD = select(*_HEAD_COLS).where(_HEAD.c.id == bindparam("chain_id")).with_for_update(skip_locked=True)
_INSERT_EVENTS = insert(_EVENT)
_MOVE_HEAD = (update(_HEAD).where(_HEAD.c.id == bindparam("chain_id"))
              .values(last_seq=bindparam("new_seq"), last_hash=bindparam("new_hash")))


def _held_chain(session: Session) -> int | None:
    """The chain this transaction appends to, if it has locked one."""
    held = session.info.get(_TXN_CHAIN)
    return held[1] if held is not None and held[0] is session.get_transaction() else None


def _lock_head(session: Session) -> tuple[int, int, str]:
    """Lock one chain head until commit and return (chain, last position, last hash).

    A transaction keeps to one chain (so it never holds two heads). The first time, it takes a chain no
    other transaction holds (PostgreSQL ``FOR UPDATE SKIP LOCKED``, random order so writers spread);
    only when every chain is held does it wait for one. (Random start, then the id order: heads past the
    start are a little likelier to be taken; every free head can be.) SQLite ignores the row lock: the transaction
    already holds the database's write lock (``BEGIN IMMEDIATE``)."""
    conn = session.connection()
    held = _held_chain(session)
    row = None
    if held is not None:
        # still ours (our own lock does not skip) — unless a rolled-back savepoint released it and
        # another transaction took it: then take another chain rather than wait
        row = conn.execute(_RELOCK_HEAD, {"chain_id": held}).first()
    start = random.randint(1, SPREAD)
    if row is None:
        row = _LOCK_FREE_HEAD_FROM.first(session, {"start": start})
    if row is None and start > 1:
        row = _LOCK_FREE_HEAD_FROM.first(session, {"start": 0})
    if row is None:  # every chain is held by another transaction: wait for one
        n = conn.execute(select(func.count()).select_from(_HEAD)).scalar_one()
        k = conn.execute(select(_HEAD.c.id).order_by(_HEAD.c.id).offset(random.randrange(n)).limit(1)).scalar_one()
        row = conn.execute(_LOCK_HEAD, {"chain_id": k}).one()
    session.info[_TXN_CHAIN] = (session.get_transaction(), row[0])
    return int(row[0]), int(row[1]), str(row[2])


@dataclass
class Appended:
    """Events computed for a chain whose head this transaction holds, not yet written."""

    chain: int
    rows: list[dict[str, Any]]
    last_seq: int
    last_hash: str


def prepare(session: Session, principal: Principal | None, subtype: str, **fields: Any) -> Appended:
    """Lock the transaction's chain head and compute the events (hashes included); ``write`` (or a
    statement from ``combined_write``) must write them in this transaction. ``fields`` are ``_append``'s
    keyword arguments (outcome, person_ids, what, query, purpose_of_use, detail, ...)."""
    chain, last_seq, last_hash = _lock_head(session)
    return _append(Appended(chain, [], last_seq, last_hash), principal, subtype, **fields)


def _append(
    appended: Appended,
    principal: Principal | None,
    subtype: str,
    *,
    outcome: str = OUTCOME_SUCCESS,
    outcome_desc: str | None = None,
    person_ids: list[str | None] | None = None,
    what: list[str | None] | None = None,
    query: str | None = None,
    purpose_of_use: str | None = None,
    type_code: str = "rest",
    detail: dict[str, Any] | None = None,
) -> Appended:
    """Compute more events after ``appended`` (same chain, continuing its positions and hashes)."""
    persons = person_ids or [None]
    whats = what or [None] * len(persons)
    chain, last_seq, last_hash = appended.chain, appended.last_seq, appended.last_hash
    now = utcnow()
    rows: list[dict[str, Any]] = appended.rows
    for person_id, entity in zip(persons, whats, strict=True):
        last_seq += 1
        data: dict[str, Any] = {
            "chain": chain, "chain_seq": last_seq, "recorded_at": now, "type_code": type_code,
            "subtype": subtype, "action": ACTIONS.get(subtype, "E"), "outcome": outcome,
            "outcome_desc": scrub(outcome_desc) if outcome_desc else None,
            "agent_user_id": principal.id if principal and principal.kind == "user" else None,
            "agent_client_id": principal.client_id if principal else None,
            "agent_name": principal.name if principal else None,
            "agent_org_id": principal.organization_id if principal else None,
            "source": principal.source if principal else "job",
            "network_address": principal.network_address if principal else None,
            "purpose_of_use": purpose_of_use, "entity_person_id": person_id, "entity_what": entity,
            "query": scrub(query)[:1000] if query else None, "detail": detail,
        }
        data["prev_hash"] = last_hash
        data["row_hash"] = last_hash = row_hash(last_hash, data)
        rows.append(data)
    return Appended(chain, rows, last_seq, last_hash)


def write(session: Session, appended: Appended) -> None:
    """One INSERT (several rows: one round trip) and one UPDATE of the head; ``seq`` comes from the
    database. No ORM objects: this runs on every audited request."""
    conn = session.connection()
    conn.execute(_INSERT_EVENTS, appended.rows)
    conn.execute(_MOVE_HEAD, {"chain_id": appended.chain, "new_seq": appended.last_seq,
                              "new_hash": appended.last_hash})


def record(
    session: Session,
    principal: Principal | None,
    subtype: str,
    **kwargs: Any,
) -> list[dict[str, Any]]:
    """Append one event per entity (``person_ids`` / ``what`` pairwise), or one event when none, to the
    transaction's chain. Keyword arguments as ``prepare``. Returns the rows written (without ``seq``,
    which the database assigns)."""
    appended = prepare(session, principal, subtype, **kwargs)
    write(session, appended)
    session.flush()  # callers relied on record() flushing their pending objects
    return appended.rows


def prepare_many(session: Session, principal: Principal | None, events: list[tuple[str, dict[str, Any]]]
                 ) -> Appended:
    """``prepare`` for several events: (subtype, keyword arguments as ``prepare``), appended in order to the
    transaction's chain with one head lock; ``write`` (or ``combined_write(..., events=n)``) writes them."""
    if not events:
        raise ValueError("no audit events to prepare")
    (subtype, kwargs), *rest = events
    appended = prepare(session, principal, subtype, **kwargs)
    for subtype, kwargs in rest:
        appended = _append(appended, principal, subtype, **kwargs)
    return appended


def record_many(session: Session, principal: Principal | None, events: list[tuple[str, dict[str, Any]]]
                ) -> list[dict[str, Any]]:
    """Several ``record`` calls in one: ``events`` are (subtype, keyword arguments as ``prepare``), appended
    in order to the transaction's chain with one head lock, one INSERT and one head UPDATE."""
    if not events:
        return []
    appended = prepare_many(session, principal, events)
    write(session, appended)
    session.flush()
    return appended.rows


_EVENT_BINDS = {c.name: bindparam(f"audit_{c.name}", type_=c.type) for c in _EVENT.columns if c.name != "seq"}


def combined_write(*ctes: CTE, events: int = 1, shared: Sequence[str] = (),
                   only_if: ColumnElement[bool] | None = None) -> Update:
    """PostgreSQL: one statement that writes ``events`` audit events (default one), moves their chain head
    and runs the caller's data-modifying CTEs (e.g. the INSERTs of a booking) — one round trip for all of
    them. The last event's columns are the parameters ``audit_<column>``; an earlier event k (1 = the
    first) has ``audit<k>_<column>``, except the columns in ``shared``, which are the last event's (one
    parameter for all: fewer parameters to convert and send).
    With ``only_if`` (a condition on the caller's CTEs, e.g. that its conditional UPDATE took a row) the
    events are written and the head moved only when it holds: the statement's row count (1 or 0) says
    which, and the caller's own CTEs must carry the same condition. Build it once; run it with
    ``combined_params``."""
    b = _EVENT_BINDS

    def events_insert(values: dict[str, Any], name: str) -> CTE:
        if only_if is None:
            return insert(_EVENT).values(values).cte(name)
        return insert(_EVENT).from_select(list(values), select(*values.values()).where(only_if)).cte(name)

    stmt = (update(_HEAD).where(_HEAD.c.id == b["chain"])
            .values(last_seq=b["chain_seq"], last_hash=b["row_hash"])
            .add_cte(events_insert(b, "audit_insert")))
    if only_if is not None:
        stmt = stmt.where(only_if)
    for k in range(1, events):
        earlier = {name: bind if name in shared else bindparam(f"audit{k}_{name}", type_=bind.type)
                   for name, bind in b.items()}
        stmt = stmt.add_cte(events_insert(earlier, f"audit_insert_{k}"))
    return stmt.add_cte(*ctes)


def free_head(start: BindParameter[int]) -> Subquery:
    """The head lock of ``prepare``'s first try, for a caller that folds it into a statement of its own (one
    round trip less): a chain head no other transaction holds, from ``start`` on (FOR UPDATE SKIP LOCKED),
    columns ``id``, ``last_seq``, ``last_hash``; no row when none is free from there. Give ``start`` the
    value of ``free_head_start`` and the row to ``prepare_on_head``."""
    return _free_head_from(start).subquery("audit_head")


def free_head_start(session: Session) -> int | None:
    """Where ``free_head`` should start looking (random, as ``prepare``), or None when the transaction
    already holds a chain (then do not lock another: ``prepare_on_head(None)`` re-locks its own)."""
    return None if _held_chain(session) is not None else random.randint(1, SPREAD)


def prepare_on_head(session: Session, head: tuple[Any, Any, Any] | None, principal: Principal | None,
                    subtype: str, **fields: Any) -> Appended:
    """``prepare`` with the head the caller's statement locked with ``free_head`` (id, last_seq, last_hash;
    None or a NULL id when it locked none: then ``prepare`` locks one as usual). If the transaction has
    appended to a chain since (another audited step in between), ``prepare`` continues that chain from its
    current head instead: the head read earlier may be stale."""
    if head is None or head[0] is None or _held_chain(session) is not None:
        return prepare(session, principal, subtype, **fields)
    session.info[_TXN_CHAIN] = (session.get_transaction(), int(head[0]))
    return _append(Appended(int(head[0]), [], int(head[1]), str(head[2])), principal, subtype, **fields)


def combined_params(appended: Appended, shared: Sequence[str] = ()) -> dict[str, Any]:
    """The parameters of the audit part of ``combined_write(..., events=len(appended.rows), shared=...)``:
    21 for the last event, and the unshared columns of each earlier one. ValueError when a ``shared``
    column differs between the events (then write them with ``write``)."""
    rows = appended.rows
    if not rows:
        raise ValueError("no audit events to write")
    last = rows[-1]
    params = {f"audit_{k}": v for k, v in last.items()}
    for k, row in enumerate(rows[:-1], start=1):
        for name, value in row.items():
            if name not in shared:
                params[f"audit{k}_{name}"] = value
            elif value != last[name]:
                raise ValueError(f"audit column {name} differs between the events")
    return params


def _rows(session: Session) -> Iterator[dict[str, Any]]:
    cols = [c.key for c in _EVENT.columns]
    stmt = (select(*_EVENT.columns).order_by(_EVENT.c.chain, _EVENT.c.chain_seq)
            .execution_options(yield_per=5000))
    for row in session.execute(stmt):
        yield dict(zip(cols, row, strict=True))


def verify(session: Session) -> tuple[int, list[ChainProblem]]:
    """Check every chain: edited rows, missing rows, broken links, a head that does not match its last
    row (truncation), and rows of a chain that has no head."""
    heads = {k: (int(n), str(h)) for k, n, h in session.execute(select(_HEAD.c.id, _HEAD.c.last_seq,
                                                                                   _HEAD.c.last_hash))}
    checked, problems = 0, []
    seen = set()
    for chain, rows in itertools.groupby(_rows(session), key=lambda r: r["chain"]):
        seen.add(chain)
        head = heads.get(chain)
        if head is None:
            n = sum(1 for _ in rows)
            checked += n
            problems.append(ChainProblem(0, f"chain {chain}: {n} rows but no chain head (head removed)"))
            continue
        c, p = verify_rows(rows, head[0], head[1], chain=chain)
        checked, problems = checked + c, problems + p
    for chain, head in sorted(heads.items()):
        if chain not in seen:
            problems += verify_rows([], head[0], head[1], chain=chain)[1]
    return checked, problems
