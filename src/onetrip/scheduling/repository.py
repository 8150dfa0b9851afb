"""Every scheduling query. The statements that move a slot's counters are here and nowhere else:
``take_reserved`` and ``general_place`` (conditional UPDATEs whose row count decides) and ``give_back``.

The booking path is lean (issue 5 benchmark): ``booking_facts`` reads everything a booking checks and
locks a free audit chain head in one SELECT (``audit.with_head_lock``); the booking's rows then go to
``db.changes.apply`` behind the ``general_place`` gate (on PostgreSQL: the place taken and every row written
in one statement). Core statements built once, no ORM flush.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Row, and_, bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from onetrip.audit import service as audit
from onetrip.db.changes import Gate
from onetrip.db.changes import Row as ChangeRow
from onetrip.db.fastpath import DriverStatement, column_param
from onetrip.kit.clock import utcnow
from onetrip.kit.fhir import DateSearch
from onetrip.persons.models import PatientRecord
from onetrip.rules.models import RuleValue
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


def _general_place_free(now):
    # A general place: the slot is not full, and either the reserved places have been released (their
    # release time has passed — no job needed for correctness) or a non-reserved place is left.
    return and_(
        Slot.blocked.is_(False),
        Slot.booked < Slot.capacity,
        or_(Slot.release_at.is_(None), Slot.release_at <= now,
            Slot.booked - Slot.reserved_booked < Slot.capacity - Slot.reserved),
    )


# Built once (bound parameters): building and cache-keying a statement per booking costs more Python
# time than running it.
_SLOT = Slot.__table__
_NOW = column_param("now", _SLOT.c.updated_at)
_TAKE_RESERVED = (
    update(_SLOT)
    .where(_SLOT.c.id == bindparam("slot_id"), _SLOT.c.blocked.is_(False),
           _SLOT.c.reserved_purpose == bindparam("purpose"), _SLOT.c.reserved_booked < _SLOT.c.reserved,
           _SLOT.c.booked < _SLOT.c.capacity, _SLOT.c.start > _NOW)
    .values(booked=_SLOT.c.booked + 1, reserved_booked=_SLOT.c.reserved_booked + 1, updated_at=_NOW)
)
_TAKE_GENERAL = (
    update(_SLOT)
    .where(_SLOT.c.id == column_param("slot_id", _SLOT.c.id), _general_place_free(_NOW), _SLOT.c.start > _NOW)
    .values(booked=_SLOT.c.booked + 1, updated_at=_NOW)
)


def take_reserved(session: Session, slot_id: str, *, purpose: str, now: dt.datetime) -> bool:
    """Take one of the slot's places reserved for ``purpose``, atomically; False when none is left.

    The WHERE clause is evaluated on the row as it is when the UPDATE gets it: PostgreSQL re-checks it
    after waiting for a concurrent writer's row lock, SQLite runs writers one at a time (BEGIN
    IMMEDIATE). The CHECK constraint ``booked <= capacity`` backs this up.
    """
    return session.connection().execute(_TAKE_RESERVED, {"slot_id": slot_id, "purpose": purpose,
                                                         "now": now}).rowcount == 1


def general_place(slot_id: str, now: dt.datetime) -> Gate:
    """The conditional UPDATE that takes one general place of a slot that has not started (as
    ``take_reserved``, decided on the row as it is), as the gate of a booking's ``Changes``: the booking's
    rows are written only if it took the place. On PostgreSQL the slot's row lock is then taken by the
    booking's last statement, held one round trip to COMMIT (bookings of one slot queue on it)."""
    return Gate(_TAKE_GENERAL, {"slot_id": slot_id, "now": now})


def give_back(session: Session, slot_id: str, *, reserved: bool, now: dt.datetime) -> None:
    values = {"booked": Slot.booked - 1, "updated_at": now}
    cond = [Slot.id == slot_id, Slot.booked > 0]
    if reserved:
        values["reserved_booked"] = Slot.reserved_booked - 1
        cond.append(Slot.reserved_booked > 0)
    session.execute(update(Slot).where(*cond).values(**values).execution_options(synchronize_session=False))


def started(slot: Any, now: dt.datetime) -> bool:
    """The slot's time has come: nobody can book it any more (the booking UPDATEs refuse it too)."""
    return slot.start <= now


def bookable(slot: Any, purpose: str | None, now: dt.datetime) -> bool:
    """Whether this booker could take a place now: not closed, not started, a place left (the board's
    可约 and FHIR's ``free``)."""
    return free_places(slot, purpose, now) > 0


def free_places(slot: Slot, purpose: str | None, now: dt.datetime) -> int:
    """Places this booker may still take (mirrors ``take_reserved`` and ``general_place``): none in a
    closed slot or one that has started."""
    if slot.blocked or started(slot, now):
        return 0
    left = slot.capacity - slot.booked
    released = slot.release_at is None or slot.release_at <= now
    general = left if released else min(left, (slot.capacity - slot.reserved) - (slot.booked - slot.reserved_booked))
    if purpose and purpose == slot.reserved_purpose and not released:
        general = min(left, general + (slot.reserved - slot.reserved_booked))
    return max(general, 0)


def _rule_value(rule_set: str, key: str):
    """The value in force on ``:on`` (as ``rules.service.rule_values`` reads it), as a scalar subquery."""
    return (select(RuleValue.value).where(RuleValue.rule_set == rule_set, RuleValue.key == key,
                                          RuleValue.effective_from <= bindparam("on"))
            .order_by(RuleValue.effective_from.desc()).limit(1).scalar_subquery())


_PR, _RES, _EXAM = PatientRecord.__table__, Resource.__table__, ExamType.__table__
_BOOKING_FACTS = (
    select(_PR.c.person_id, _PR.c.organization_id.label("record_organization_id"), _PR.c.id_number,
           _PR.c.deleted_at, _SLOT.c.id.label("slot_id"), _SLOT.c.organization_id, _SLOT.c.resource_id,
           _SLOT.c.start, _SLOT.c.end, _SLOT.c.capacity, _SLOT.c.booked, _SLOT.c.reserved, _SLOT.c.reserved_booked,
           _SLOT.c.reserved_purpose, _SLOT.c.release_at, _SLOT.c.blocked, _RES.c.exam_codes,
           _EXAM.c.code.label("exam_code"), _EXAM.c.active.label("exam_active"),
           _rule_value("scheduling", "hold_minutes").label("hold_minutes"),
           _rule_value("access", "care_relationship_days").label("care_relationship_days"))
    .select_from(_PR.outerjoin(_SLOT, _SLOT.c.id == bindparam("slot_id"))
                 .outerjoin(_RES, _RES.c.id == _SLOT.c.resource_id)
                 .outerjoin(_EXAM, _EXAM.c.code == bindparam("exam_code")))
    .where(_PR.c.id == bindparam("record_id"))
)


_FACTS = DriverStatement(audit.with_head_lock(_BOOKING_FACTS))


def booking_facts(session: Session, slot_id: str, patient_record_id: str, exam_code: str, on: dt.date,
                  audit_head: Mapping[str, Any]) -> Row | None:
    """Everything ``service.book`` checks, in one round trip: the patient record, the slot and its
    counters, whether the slot's resource performs the exam, the exam's state, and the rule values
    ``scheduling.hold_minutes`` and ``access.care_relationship_days`` in force on ``on`` (read fresh
    every time: a rule change applies to the next booking) — and the lock of a free audit chain head
    (``audit.with_head_lock``; ``audit_head``: ``audit.head_lock_params``). None when the patient record
    does not exist; a missing slot or exam gives NULL columns. Nothing of the slot is locked: only the
    conditional UPDATE decides."""
    return _FACTS.first(session, {"slot_id": slot_id, "record_id": patient_record_id, "exam_code": exam_code,
                                  "on": on, **audit_head})


_APPT = Appointment.__table__


def appointment_row(values: Mapping[str, Any]) -> ChangeRow:
    """The ``sched_appointment`` row to add to a booking's ``Changes``: every column (``values``)."""
    return ChangeRow(_APPT, values)


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
          status: str | None = None, when: DateSearch | None = None, ids: Sequence[str] | None = None,
          limit: int = 5000, offset: int = 0, now: dt.datetime | None = None) -> list[Slot]:
    """Slots by start. ``only_free``: not closed, not full and not started (at ``now``, default the
    present). ``status``: as FHIR shows a slot (``free``: a general place left and not started; ``busy``:
    none left; ``busy-unavailable``: closed or started). ``when``: a FHIR date search on the start."""
    now = now or utcnow()
    stmt = select(Slot).order_by(Slot.start, Slot.id)
    if ids is not None:
        stmt = stmt.where(Slot.id.in_(list(ids)))
    if resource_ids is not None:
        stmt = stmt.where(Slot.resource_id.in_(list(resource_ids)))
    if organization_id:
        stmt = stmt.where(Slot.organization_id == organization_id)
    if start:
        stmt = stmt.where(Slot.start >= start)
    if end:
        stmt = stmt.where(Slot.start < end)
    if when is not None:
        stmt = stmt.where(when.condition(Slot.start, now))
    if only_free:
        stmt = stmt.where(Slot.booked < Slot.capacity, Slot.blocked.is_(False), Slot.start > now)
    if status == "free":
        stmt = stmt.where(_general_place_free(now), Slot.start > now)
    elif status == "busy":
        stmt = stmt.where(Slot.blocked.is_(False), Slot.start > now, ~_general_place_free(now))
    elif status == "busy-unavailable":
        stmt = stmt.where(or_(Slot.blocked.is_(True), Slot.start <= now))
    return list(session.scalars(stmt.offset(offset).limit(limit)))


def slot_states(session: Session, slot_ids: Sequence[str], now: dt.datetime | None = None) -> dict[str, dict]:
    """Per slot: ``started`` (its time has come), ``bookable`` (a general place left now) and ``free``
    (general places left) — what the board shows (可约 only when bookable; started slots greyed)."""
    now = now or utcnow()
    rows = session.scalars(select(Slot).where(Slot.id.in_(list(slot_ids)))) if slot_ids else []
    return {s.id: {"started": started(s, now), "bookable": bookable(s, None, now), "free": free_places(s, None, now)}
            for s in rows}


def appointment_search(session: Session, *, ids: Sequence[str] | None = None,
                       patient_record_id: str | None = None, slot_ids: Sequence[str] | None = None,
                       resource_ids: Sequence[str] | None = None, exam_codes: Sequence[str] | None = None,
                       statuses: Sequence[str] | None = None, when: DateSearch | None = None,
                       visible_to: str | None = None, granted: Any = None, limit: int = 200,
                       offset: int = 0) -> list[Appointment]:
    """Appointments by start (FHIR search). ``visible_to``: an institution — only appointments there, booked
    by it, or of the persons in ``granted`` (a subquery of person ids, ``access.granted_person_ids``)."""
    stmt = select(Appointment).order_by(Appointment.start, Appointment.id)
    if ids is not None:
        stmt = stmt.where(Appointment.id.in_(list(ids)))
    if patient_record_id is not None:
        stmt = stmt.where(Appointment.patient_record_id == patient_record_id)
    if slot_ids is not None:
        stmt = stmt.where(Appointment.slot_id.in_(list(slot_ids)))
    if resource_ids is not None:
        stmt = stmt.where(Appointment.resource_id.in_(list(resource_ids)))
    if exam_codes is not None:
        stmt = stmt.where(Appointment.exam_code.in_(list(exam_codes)))
    if statuses is not None:
        stmt = stmt.where(Appointment.status.in_(list(statuses)))
    if when is not None:
        stmt = stmt.where(when.condition(Appointment.start))
    if visible_to is not None:
        seen = [Appointment.organization_id == visible_to, Appointment.booking_organization_id == visible_to]
        if granted is not None:
            seen.append(Appointment.person_id.in_(select(granted.c.person_id)))
        stmt = stmt.where(or_(*seen))
    return list(session.scalars(stmt.offset(offset).limit(limit)))


def resources_of_practitioner(session: Session, practitioner_id: str) -> list[str]:
    return list(session.scalars(select(Resource.id).where(Resource.practitioner_id == practitioner_id)))


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


def sites_of(session: Session, organization_ids: Sequence[str]) -> tuple[list[Any], list[Any]]:
    """(organizations, site rows) for the itinerary's site names, addresses and coordinates (issue 17)."""
    from onetrip.registry.models import Organization
    from onetrip.scheduling.models import Site

    ids = sorted(set(organization_ids))
    if not ids:
        return [], []
    return (list(session.scalars(select(Organization).where(Organization.id.in_(ids)))),
            list(session.scalars(select(Site).where(Site.organization_id.in_(ids)))))


def lead_hospitals(session: Session, organization_ids: Sequence[str]) -> list[str]:
    """The lead hospitals (总院) of the medical communities of these organizations."""
    from onetrip.registry.models import Organization, OrgType

    ids = sorted(set(organization_ids))
    communities = select(Organization.community_id).where(Organization.id.in_(ids),
                                                          Organization.community_id.is_not(None))
    return list(session.scalars(select(Organization.id).where(Organization.community_id.in_(communities),
                                                              Organization.org_type == OrgType.lead_hospital)))


def reserved_places(session: Session, organization_id: str, purpose: str, start: dt.datetime, end: dt.datetime,
                    *, limit: int) -> list[tuple[Slot, Resource]]:
    """Slots at ``organization_id`` starting in [start, end) that still hold a place for ``purpose`` and have a
    place left at all, soonest first, with their resources."""
    return [tuple(row) for row in session.execute(
        select(Slot, Resource).join(Resource, Resource.id == Slot.resource_id).where(
            Slot.organization_id == organization_id, Slot.reserved_purpose == purpose, Slot.blocked.is_(False),
            Slot.reserved_booked < Slot.reserved, Slot.booked < Slot.capacity, Slot.start > start,
            Slot.start < end)
        .order_by(Slot.start, Resource.code).limit(limit))]
