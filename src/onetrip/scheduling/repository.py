"""Every scheduling query. The two statements that move a slot's counters are here and nowhere else:
``take_place`` (one conditional UPDATE whose row count decides) and ``give_back``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from onetrip.scheduling.models import (
    ACTIVE_STATUSES,
    Appointment,
    AppointmentStatus,
    Closure,
    ExamOrder,
    ExamType,
    Resource,
    Slot,
    WeeklyTemplate,
)


def _general_place_free(now: dt.datetime):
    # A general place: the slot is not full, and either the reserved places have been released (their
    # release time has passed — no job needed for correctness) or a non-reserved place is left.
    return and_(
        Slot.blocked.is_(False),
        Slot.booked < Slot.capacity,
        or_(Slot.release_at.is_(None), Slot.release_at <= now,
            Slot.booked - Slot.reserved_booked < Slot.capacity - Slot.reserved),
    )


def take_place(session: Session, slot_id: str, *, purpose: str | None, now: dt.datetime) -> str | None:
    """Take one place atomically; returns ``"reserved"``, ``"general"`` or None when full.

    The WHERE clause is evaluated on the row as it is when the UPDATE gets it: PostgreSQL re-checks it
    after waiting for a concurrent writer's row lock, SQLite runs writers one at a time (BEGIN
    IMMEDIATE). The CHECK constraint ``booked <= capacity`` backs this up.
    """
    if purpose:
        res = session.execute(
            update(Slot)
            .where(Slot.id == slot_id, Slot.blocked.is_(False), Slot.reserved_purpose == purpose,
                   Slot.reserved_booked < Slot.reserved, Slot.booked < Slot.capacity)
            .values(booked=Slot.booked + 1, reserved_booked=Slot.reserved_booked + 1, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        if res.rowcount == 1:
            return "reserved"
    res = session.execute(
        update(Slot).where(Slot.id == slot_id, _general_place_free(now))
        .values(booked=Slot.booked + 1, updated_at=now).execution_options(synchronize_session=False)
    )
    return "general" if res.rowcount == 1 else None


def give_back(session: Session, slot_id: str, *, reserved: bool, now: dt.datetime) -> None:
    values = {"booked": Slot.booked - 1, "updated_at": now}
    cond = [Slot.id == slot_id, Slot.booked > 0]
    if reserved:
        values["reserved_booked"] = Slot.reserved_booked - 1
        cond.append(Slot.reserved_booked > 0)
    session.execute(update(Slot).where(*cond).values(**values).execution_options(synchronize_session=False))


def free_places(slot: Slot, purpose: str | None, now: dt.datetime) -> int:
    """Places this booker may still take (mirrors ``take_place``)."""
    if slot.blocked:
        return 0
    left = slot.capacity - slot.booked
    released = slot.release_at is None or slot.release_at <= now
    general = left if released else min(left, (slot.capacity - slot.reserved) - (slot.booked - slot.reserved_booked))
    if purpose and purpose == slot.reserved_purpose and not released:
        general = min(left, general + (slot.reserved - slot.reserved_booked))
    return max(general, 0)


def exam_types(session: Session, codes: Sequence[str] | None = None) -> dict[str, ExamType]:
    stmt = select(ExamType)
    if codes is not None:
        stmt = stmt.where(ExamType.code.in_(list(codes)))
    return {e.code: e for e in session.scalars(stmt.order_by(ExamType.code))}


def resources(session: Session, *, organization_id: str | None = None, exam_code: str | None = None,
              modality: str | None = None, active_only: bool = True) -> list[Resource]:
    stmt = select(Resource).order_by(Resource.organization_id, Resource.code)
    if organization_id:
        stmt = stmt.where(Resource.organization_id == organization_id)
    if modality:
        stmt = stmt.where(Resource.modality == modality)
    if active_only:
        stmt = stmt.where(Resource.active.is_(True))
    rows = list(session.scalars(stmt))
    if exam_code:  # JSON containment differs per database; the list is short, filter here
        rows = [r for r in rows if exam_code in (r.exam_codes or [])]
    return rows


def templates_of(session: Session, resource_ids: Sequence[str]) -> list[WeeklyTemplate]:
    return list(session.scalars(select(WeeklyTemplate).where(WeeklyTemplate.resource_id.in_(list(resource_ids)))))


def closures(session: Session, organization_ids: Sequence[str], start: dt.date, end: dt.date) -> list[Closure]:
    return list(session.scalars(select(Closure).where(
        Closure.organization_id.in_(list(organization_ids)), Closure.starts_on <= end, Closure.ends_on >= start)))


def existing_slot_starts(session: Session, resource_ids: Sequence[str], start: dt.datetime,
                         end: dt.datetime) -> set[tuple[str, dt.datetime]]:
    rows = session.execute(select(Slot.resource_id, Slot.start).where(
        Slot.resource_id.in_(list(resource_ids)), Slot.start >= start, Slot.start < end))
    return {(r, s.astimezone(dt.UTC)) for r, s in rows}


def slots(session: Session, *, resource_ids: Sequence[str] | None = None, organization_id: str | None = None,
          start: dt.datetime | None = None, end: dt.datetime | None = None, only_free: bool = False,
          only_busy: bool = False, limit: int = 5000, offset: int = 0) -> list[Slot]:
    stmt = select(Slot).order_by(Slot.start, Slot.id)
    if resource_ids is not None:
        stmt = stmt.where(Slot.resource_id.in_(list(resource_ids)))
    if organization_id:
        stmt = stmt.where(Slot.organization_id == organization_id)
    if start:
        stmt = stmt.where(Slot.start >= start)
    if end:
        stmt = stmt.where(Slot.start < end)
    if only_free:
        stmt = stmt.where(Slot.booked < Slot.capacity, Slot.blocked.is_(False))
    if only_busy:
        stmt = stmt.where(or_(Slot.booked >= Slot.capacity, Slot.blocked.is_(True)))
    return list(session.scalars(stmt.offset(offset).limit(limit)))


def appointments_of_person(session: Session, person_id: str, *, active_only: bool = True) -> list[Appointment]:
    stmt = select(Appointment).where(Appointment.person_id == person_id).order_by(Appointment.start)
    if active_only:
        stmt = stmt.where(Appointment.status.in_([s.value for s in ACTIVE_STATUSES]))
    return list(session.scalars(stmt))


def appointments(session: Session, *, organization_id: str | None = None, patient_record_id: str | None = None,
                 start: dt.datetime | None = None, end: dt.datetime | None = None,
                 status: str | None = None, limit: int = 200, offset: int = 0) -> list[Appointment]:
    stmt = select(Appointment).order_by(Appointment.start, Appointment.id)
    if organization_id:
        stmt = stmt.where(Appointment.organization_id == organization_id)
    if patient_record_id:
        stmt = stmt.where(Appointment.patient_record_id == patient_record_id)
    if start:
        stmt = stmt.where(Appointment.start >= start)
    if end:
        stmt = stmt.where(Appointment.start < end)
    if status:
        stmt = stmt.where(Appointment.status == status)
    return list(session.scalars(stmt.offset(offset).limit(limit)))


def expired_holds(session: Session, now: dt.datetime) -> list[Appointment]:
    return list(session.scalars(select(Appointment).where(
        Appointment.status == AppointmentStatus.pending.value, Appointment.hold_expires_at <= now)
        .with_for_update()))


def release_reserved(session: Session, now: dt.datetime) -> int:
    """Unused reserved places whose release time has passed become general places (R2.4)."""
    res = session.execute(
        update(Slot).where(Slot.release_at <= now, Slot.reserved > Slot.reserved_booked)
        .values(reserved=Slot.reserved_booked, updated_at=now).execution_options(synchronize_session=False))
    return res.rowcount or 0


def pending_orders(session: Session, person_id: str) -> list[ExamOrder]:
    return list(session.scalars(select(ExamOrder).where(
        ExamOrder.person_id == person_id, ExamOrder.status == "pending").order_by(ExamOrder.created_at)))


def slot_usage(session: Session, organization_id: str | None, start: dt.datetime, end: dt.datetime):
    """(resource id, places, booked) per resource in the period."""
    stmt = select(Slot.resource_id, func.sum(Slot.capacity), func.sum(Slot.booked)).where(
        Slot.start >= start, Slot.start < end, Slot.blocked.is_(False)).group_by(Slot.resource_id)
    if organization_id:
        stmt = stmt.where(Slot.organization_id == organization_id)
    return [(r, int(c or 0), int(b or 0)) for r, c, b in session.execute(stmt)]
