"""What other capability domains may use of scheduling — its named service interface.

Siblings (referral today) import this module and nothing else of scheduling; the import contract in
pyproject.toml ("domains") enforces it. Models exported here are for reading; every change to scheduling's
tables goes through a function below, which writes its own audit and outbox events.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session

from onetrip.kit.principal import Principal
from onetrip.rules.service import rule_values
from onetrip.scheduling import repository, service
from onetrip.scheduling.models import Appointment, ExamType, Resource, Slot

__all__ = ["Appointment", "ReservedPlace", "Resource", "Slot", "book", "check_in", "exam_types", "release_appointment",
           "reserved_places", "reserved_purpose", "slot_and_first_exam"]

book = service.book
check_in = service.check_in


def exam_types(session: Session) -> dict[str, ExamType]:
    """The exam catalogue by code (names in Chinese and English)."""
    return repository.exam_types(session)


def reserved_purpose(session: Session) -> str:
    """The purpose places are held for on behalf of primary care (号源下沉, R2.4)."""
    return str(rule_values(session, "scheduling").get("reserved_purpose", "primary_care"))


def slot_and_first_exam(session: Session, slot_id: str) -> tuple[Slot | None, str | None]:
    """A slot and the first exam its resource performs (the default when a referral names none)."""
    slot = session.get(Slot, slot_id) if slot_id else None
    if slot is None:
        return None, None
    res = session.get(Resource, slot.resource_id)
    return slot, ((res.exam_codes or [None])[0] if res else None)


@dataclass(frozen=True)
class ReservedPlace:
    slot: Slot
    resource: Resource


def reserved_places(session: Session, organization_id: str, now: dt.datetime, *, days: int = 14,
                    limit: int = 40) -> list[ReservedPlace]:
    """Slots at ``organization_id`` in the next ``days`` that still have a place held for primary care and a
    place left at all (the rule ``repository.free_places`` applies at booking), soonest first."""
    rows = repository.reserved_places(session, organization_id, reserved_purpose(session), now, now + dt.timedelta(days=days),
                                      limit=limit)
    return [ReservedPlace(slot, res) for slot, res in rows]


def release_appointment(session: Session, principal: Principal | None, appointment_id: str | None,
                        reason: str) -> Appointment | None:
    """Give an active (booked or held) appointment's place back, in the caller's transaction, with its audit
    and outbox events (``appointment.cancelled``). An appointment already ended is left alone. ``principal``
    is None for jobs (a referral expiring)."""
    appt = session.get(Appointment, appointment_id) if appointment_id else None
    if appt is None or appt.status not in ("booked", "pending"):
        return None
    service.release_recorded(session, principal, appt, reason)
    return appt
