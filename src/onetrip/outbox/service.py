"""Write an event alongside the state change; publishers (later issues) read unpublished rows."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy.orm import Session

from onetrip.db.changes import Row
from onetrip.kit.clock import utcnow
from onetrip.outbox.models import OutboxEvent

_OUTBOX = OutboxEvent.__table__


def event_row(
    event_type: str, aggregate_type: str, aggregate_id: str, payload: dict,
    *, person_id: str | None = None, occurred_at: dt.datetime | None = None,
) -> Row:
    """The ``outbox_event`` row (a dict that knows its table): ``record_event`` makes it an ORM object; a
    domain adds it to its ``db.changes.Changes``, written with its own rows."""
    return Row(_OUTBOX, event_id=uuid.uuid4().hex, occurred_at=occurred_at or utcnow(), event_type=event_type,
               aggregate_type=aggregate_type, aggregate_id=aggregate_id, person_id=person_id, payload=payload,
               published_at=None)


def record_event(
    session: Session, event_type: str, aggregate_type: str, aggregate_id: str, payload: dict,
    *, person_id: str | None = None,
) -> OutboxEvent:
    event = OutboxEvent(**event_row(event_type, aggregate_type, aggregate_id, payload, person_id=person_id))
    session.add(event)
    return event
