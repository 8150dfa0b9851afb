"""Write and check audit events. One event per patient read, one per patient in a search page, one per
denied read (IHE BALP shape, RULES §10)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BindParameter, Integer, Select, bindparam, func, insert, select, true, update
from sqlalchemy.orm import Session

from onetrip.audit.chain import ChainProblem, row_hash
from onetrip.audit.integrity import verify_report
from onetrip.audit.keys import current_keyring
from onetrip.audit.models import AuditChainHead, AuditEvent
from onetrip.db.changes import Row, Update
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
class _Appended:
    """Events computed for a chain whose head this transaction holds, not yet written."""

    chain: int
    rows: list[Row]
    last_seq: int
    last_hash: str


def _start(session: Session, head: Any = None) -> _Appended:
    """Where the transaction's next events go: the head a ``with_head_lock`` read locked (``head``: that row;
    NULL columns when it locked none), unless the transaction already appends to a chain; else the head
    ``_lock_head`` locks (or re-locks)."""
    if head is not None and head.audit_head_id is not None and _held_chain(session) is None:
        session.info[_TXN_CHAIN] = (session.get_transaction(), int(head.audit_head_id))
        return _Appended(int(head.audit_head_id), [], int(head.audit_head_last_seq), str(head.audit_head_last_hash))
    chain, last_seq, last_hash = _lock_head(session)
    return _Appended(chain, [], last_seq, last_hash)


def _append(
    appended: _Appended,
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
) -> _Appended:
    """Compute more events after ``appended`` (same chain, continuing its positions and hashes)."""
    persons = person_ids or [None]
    whats = what or [None] * len(persons)
    chain, last_seq, last_hash = appended.chain, appended.last_seq, appended.last_hash
    keyring = current_keyring()  # built once per process; the key lives outside the database (issue 26)
    mac, key_id = keyring.active_mac, keyring.active
    now = utcnow()
    rows = appended.rows
    for person_id, entity in zip(persons, whats, strict=True):
        last_seq += 1
        data = Row(_EVENT, {
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
            "query": scrub(query)[:1000] if query else None, "detail": detail, "key_id": key_id,
        })
        data["prev_hash"] = last_hash
        data["row_hash"] = last_hash = row_hash(last_hash, data, mac)
        rows.append(data)
    return _Appended(chain, rows, last_seq, last_hash)


def _appended(session: Session, principal: Principal | None, events: Sequence[tuple[str, dict[str, Any]]],
              head: Any = None) -> _Appended:
    if not events:
        raise ValueError("no audit events")
    appended = _start(session, head)
    for subtype, fields in events:
        appended = _append(appended, principal, subtype, **fields)
    return appended


def _write(session: Session, appended: _Appended) -> None:
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
    transaction's chain. Keyword arguments: outcome, outcome_desc, person_ids, what, query, purpose_of_use,
    type_code, detail. Returns the rows written (without ``seq``, which the database assigns)."""
    return record_many(session, principal, [(subtype, kwargs)])


def record_many(session: Session, principal: Principal | None, events: list[tuple[str, dict[str, Any]]]
                ) -> list[dict[str, Any]]:
    """Several ``record`` calls in one: ``events`` are (subtype, keyword arguments as ``record``), appended
    in order to the transaction's chain with one head lock, one INSERT and one head UPDATE."""
    if not events:
        return []
    appended = _appended(session, principal, events)
    _write(session, appended)
    session.flush()  # callers relied on record() flushing their pending objects
    return appended.rows


def events(session: Session, principal: Principal | None, events: Sequence[tuple[str, dict[str, Any]]],
           *, head: Any = None) -> list[Row | Update]:
    """The audit part of a domain's ``db.changes.Changes``: ``events`` ((subtype, keyword arguments as
    ``record``), in order) appended to the transaction's chain, their hashes computed, and the chain head's
    move. ``changes.apply`` must write them in this transaction (or the transaction must roll back: the
    head stays locked, its position unused). ``head``: the row of a read built with ``with_head_lock``
    (its lock saves a round trip); without it, or when that read locked no head, the head is locked now
    as ``record`` locks it."""
    appended = _appended(session, principal, events, head)
    return [*appended.rows, Update(_HEAD, {"id": appended.chain},
                                   {"last_seq": appended.last_seq, "last_hash": appended.last_hash})]


_HEAD_START = bindparam("audit_head_start", type_=Integer)


def with_head_lock(stmt: Select) -> Select:
    """``stmt`` (a read of one row ahead of an audited write) that also locks, in the same round trip, a
    chain head no other transaction holds: columns ``audit_head_id``, ``audit_head_last_seq``,
    ``audit_head_last_hash`` (NULL when none was free from the random start, or the transaction already
    appends to a chain). Build it once; run it with ``head_lock_params(session)``; give its row to
    ``events(..., head=row)``. (SQLite has no row locks: the transaction already holds the database's
    write lock.)"""
    head = _free_head_from(_HEAD_START).subquery("audit_head")
    return (stmt.add_columns(head.c.id.label("audit_head_id"), head.c.last_seq.label("audit_head_last_seq"),
                             head.c.last_hash.label("audit_head_last_hash"))
            .outerjoin(head, true()))


def head_lock_params(session: Session) -> dict[str, int | None]:
    """The parameter of a ``with_head_lock`` read: where to start looking (random, as ``record``), or None
    when the transaction already holds a chain (then lock no other: ``events`` continues that one)."""
    return {"audit_head_start": None if _held_chain(session) is not None else random.randint(1, SPREAD)}


def verify(session: Session) -> tuple[int, list[ChainProblem]]:
    """Check every chain with the settings' keyring and the latest signed checkpoint (see
    ``audit.integrity.verify_report``). Returns (rows checked, problems)."""
    report = verify_report(session)
    return report.checked, report.problems


@dataclass(frozen=True)
class CheckpointStatus:
    """What the chain was compared with: the latest signed checkpoint outside the database, or why none."""

    state: str  # "compared" | "none-yet" (directory set, nothing written) | "not-configured"
    taken_at: str | None = None  # UTC ISO time of the checkpoint
    line: int | None = None
    key_id: str | None = None
    chains: int = 0


def verify_with_checkpoint(session: Session) -> tuple[int, list[ChainProblem], CheckpointStatus]:
    """``verify`` plus the checkpoint it compared against, for the admin's page and API (without it a deleted
    tail of the log cannot be told from one never written: the operator must see whether checkpoints run)."""
    report = verify_report(session)
    if report.checkpoint is not None:
        c = report.checkpoint
        status = CheckpointStatus("compared", c.at, c.line, c.key_id, len(c.heads))
    elif report.checkpoint_path is not None:
        status = CheckpointStatus("none-yet")
    else:
        status = CheckpointStatus("not-configured")
    return report.checked, report.problems, status
