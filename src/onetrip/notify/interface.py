"""What other capability domains may use of notify — its named service interface.

A message for a resident (an invitation, a reminder) is an outbox event of its own type: the dispatcher delivers
it, at least once and signed, to every receiver registered for that type (e.g. the district's SMS gateway or the
resident app), without patient identifiers — the receiver fetches what it needs through the API. Siblings import
this module and nothing else of notify (import contract "domains" in pyproject.toml); notify's own tables are
never written from outside.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from onetrip.outbox.service import record_event

__all__ = ["message_resident"]


def message_resident(session: Session, event_type: str, aggregate_type: str, aggregate_id: str, data: dict, *,
                     person_id: str) -> str:
    """Queue one message about ``aggregate_type/aggregate_id`` for the resident ``person_id``, in the caller's
    transaction (nothing is sent if it rolls back). Returns the notification's reference: the event id, which
    every delivery of it carries (``X-OneTrip-Event-Id``)."""
    event = record_event(session, event_type, aggregate_type, aggregate_id, data, person_id=person_id)
    return event.event_id
