"""Write an event alongside the state change; publishers (later issues) read unpublished rows."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from onetrip.kit.clock import utcnow
from onetrip.outbox.models import OutboxEvent


def record_event(
    session: Session, event_type: str, aggregate_type: str, aggregate_id: str, payload: dict,
    *, person_id: str | None = None,
) -> OutboxEvent:
    event = OutboxEvent(
        event_id=uuid.uuid4().hex, occurred_at=utcnow(), event_type=event_type,
        aggregate_type=aggregate_type, aggregate_id=aggregate_id, person_id=person_id, payload=payload,
    )
    session.add(event)
    return event
