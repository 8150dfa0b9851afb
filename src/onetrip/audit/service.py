"""Write and check audit events. One event per patient read, one per patient in a search page, one per
denied read (IHE BALP shape, RULES §10)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from onetrip.audit.chain import ChainProblem, row_hash, verify_rows
from onetrip.audit.models import AuditChainHead, AuditEvent
from onetrip.auth.principal import Principal
from onetrip.kit.clock import utcnow
from onetrip.kit.masking import scrub

OUTCOME_SUCCESS, OUTCOME_MINOR, OUTCOME_SERIOUS = "0", "4", "8"
ACTIONS = {"create": "C", "read": "R", "vread": "R", "history": "R", "search-type": "E", "search": "E",
           "update": "U", "delete": "D", "login": "E", "logout": "E", "break-glass": "E", "export": "R"}


def _lock_head(session: Session) -> AuditChainHead:
    # PostgreSQL: row lock; SQLite: the transaction already holds the write lock (BEGIN IMMEDIATE).
    head = session.execute(select(AuditChainHead).where(AuditChainHead.id == 1).with_for_update()).scalar_one()
    return head


def record(
    session: Session,
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
) -> list[AuditEvent]:
    """Append one event per entity (``person_ids`` / ``what`` pairwise), or one event when none."""
    persons = person_ids or [None]
    whats = what or [None] * len(persons)
    head = _lock_head(session)
    now = utcnow()
    events = []
    for person_id, entity in zip(persons, whats, strict=True):
        seq = head.last_seq + 1
        data: dict[str, Any] = {
            "seq": seq, "recorded_at": now, "type_code": type_code, "subtype": subtype,
            "action": ACTIONS.get(subtype, "E"), "outcome": outcome,
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
        data["prev_hash"] = head.last_hash
        data["row_hash"] = row_hash(head.last_hash, data)
        ev = AuditEvent(**data)
        session.add(ev)
        head.last_seq, head.last_hash = seq, data["row_hash"]
        events.append(ev)
    session.flush()
    return events


def _rows(session: Session) -> Iterator[dict[str, Any]]:
    cols = [c.key for c in AuditEvent.__table__.columns]
    stmt = select(*AuditEvent.__table__.columns).order_by(AuditEvent.seq).execution_options(yield_per=5000)
    for row in session.execute(stmt):
        yield dict(zip(cols, row, strict=True))


def verify(session: Session) -> tuple[int, list[ChainProblem]]:
    head = session.get(AuditChainHead, 1)
    return verify_rows(_rows(session), head.last_seq, head.last_hash)
