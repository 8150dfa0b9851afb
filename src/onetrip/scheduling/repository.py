"""Every scheduling query. The statements that move a slot's counters are here and nowhere else:
``take_place`` (one conditional UPDATE whose row count decides), the same UPDATE inside
``take_and_write_booking``, and ``give_back``.

The booking path is lean (issue 5 benchmark): ``booking_facts`` (on PostgreSQL with a free audit chain
head: ``booking_facts_and_head``) reads everything a booking checks in one SELECT; on PostgreSQL
``take_and_write_booking`` then takes the place and writes the appointment, its care relationship, its
outbox event and its audit event in one statement (``insert_booking`` after ``take_place``: one statement
on PostgreSQL, one INSERT per table on SQLite) — Core statements built once, no ORM flush."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Integer,
    Null,
    Row,
    and_,
    bindparam,
    cast,
    func,
    insert,
    literal_column,
    null,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.orm import Session

from onetrip.access import service as access
from onetrip.access.models import CareRelationship
from onetrip.audit import service as audit
from onetrip.db.fastpath import DriverStatement, column_param
from onetrip.identity.models import PatientRecord
from onetrip.outbox import service as outbox_service
from onetrip.outbox.models import OutboxEvent
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
_TAKE_RESERVED = (
    update(_SLOT)
    .where(_SLOT.c.id == bindparam("slot_id"), _SLOT.c.blocked.is_(False),
           _SLOT.c.reserved_purpose == bindparam("purpose"), _SLOT.c.reserved_booked < _SLOT.c.reserved,
           _SLOT.c.booked < _SLOT.c.capacity)
    .values(booked=_SLOT.c.booked + 1, reserved_booked=_SLOT.c.reserved_booked + 1, updated_at=bindparam("now"))
)
_TAKE_GENERAL = (
    update(_SLOT)
    .where(_SLOT.c.id == bindparam("slot_id"), _general_place_free(bindparam("now")))
    .values(booked=_SLOT.c.booked + 1, updated_at=bindparam("now"))
)


def take_place(session: Session, slot_id: str, *, purpose: str | None, now: dt.datetime) -> str | None:
    """Take one place atomically; returns ``"reserved"``, ``"general"`` or None when full.

    The WHERE clause is evaluated on the row as it is when the UPDATE gets it: PostgreSQL re-checks it
    after waiting for a concurrent writer's row lock, SQLite runs writers one at a time (BEGIN
    IMMEDIATE). The CHECK constraint ``booked <= capacity`` backs this up.
    """
    conn = session.connection()
    if purpose and conn.execute(_TAKE_RESERVED, {"slot_id": slot_id, "purpose": purpose, "now": now}).rowcount == 1:
        return "reserved"
    return "general" if conn.execute(_TAKE_GENERAL, {"slot_id": slot_id, "now": now}).rowcount == 1 else None


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


_HEAD = audit.free_head(bindparam("audit_head_start", type_=Integer))
_FACTS_AND_HEAD = DriverStatement(
    _BOOKING_FACTS.add_columns(_HEAD.c.id.label("head_id"), _HEAD.c.last_seq.label("head_last_seq"),
                               _HEAD.c.last_hash.label("head_last_hash"))
    .outerjoin_from(_PR, _HEAD, true()))
_FACTS_ONLY = DriverStatement(_BOOKING_FACTS)


def booking_facts_and_head(session: Session, slot_id: str, patient_record_id: str, exam_code: str,
                           on: dt.date, *, head_start: int) -> Row | None:
    """PostgreSQL: ``booking_facts`` and, in the same round trip, the lock of a free audit chain head from
    ``head_start`` on (``audit.free_head``; columns ``head_id``, ``head_last_seq``, ``head_last_hash``,
    NULL when none was free from there). Nothing of the slot is locked: ``take_and_write_booking``
    decides."""
    return _FACTS_AND_HEAD.first(session, {"slot_id": slot_id, "record_id": patient_record_id,
                                           "exam_code": exam_code, "on": on, "audit_head_start": head_start})


def booking_facts(session: Session, slot_id: str, patient_record_id: str, exam_code: str,
                  on: dt.date) -> Row | None:
    """Everything ``service.book`` checks, in one round trip: the patient record, the slot and its
    counters, whether the slot's resource performs the exam, the exam's state, and the rule values
    ``scheduling.hold_minutes`` and ``access.care_relationship_days`` in force on ``on`` (read fresh
    every time: a rule change applies to the next booking). None when the patient record does not
    exist; a missing slot or exam gives NULL columns. Read without locks: only the conditional UPDATE
    decides."""
    return _FACTS_ONLY.first(session, {"slot_id": slot_id, "record_id": patient_record_id, "exam_code": exam_code,
                                       "on": on})


_APPT, _CARE, _OUTBOX = Appointment.__table__, CareRelationship.__table__, OutboxEvent.__table__
_INSERT_APPOINTMENT, _INSERT_CARE, _INSERT_OUTBOX = insert(_APPT), insert(_CARE), insert(_OUTBOX)


def _booking_write(only_if: ColumnElement[bool] | None = None, shared_now: BindParameter | None = None):
    """PostgreSQL: the appointment, its care relationship, its outbox event, the audit event and its
    chain head in one statement (data-modifying CTEs); with ``only_if``, each row only when it holds.
    Values shared between the rows are one parameter each."""
    p = column_param
    now = shared_now if shared_now is not None else p("now", _APPT.c.created_at)
    person, org, appt_id = (p("person_id", _APPT.c.person_id), p("organization_id", _APPT.c.organization_id),
                            p("appointment_id", _APPT.c.id))
    shared = {"id": appt_id, "created_at": now, "updated_at": now, "booked_at": now, "person_id": person,
              "organization_id": org, "version_id": literal_column("1"), "checked_in_at": null(), "cancelled_at": null(),
              "cancel_reason": null()}
    appt = {c.name: shared.get(c.name, p(c.name, c)) for c in _APPT.columns}
    care = {"id": p("care_id", _CARE.c.id), "person_id": person, "organization_id": org,
            "kind": literal_column("'appointment'"), "source_ref": p("care_source_ref", _CARE.c.source_ref),
            "starts_at": now, "ends_at": p("care_ends_at", _CARE.c.ends_at), "created_at": now}
    outbox = {"event_id": p("event_id", _OUTBOX.c.event_id), "occurred_at": now,
              "event_type": p("event_type", _OUTBOX.c.event_type), "aggregate_type": literal_column("'Appointment'"),
              "aggregate_id": appt_id, "person_id": person, "payload": p("payload", _OUTBOX.c.payload),
              "published_at": null()}

    def rows(table, values: dict, name: str):
        if only_if is None:
            return insert(table).values(values).cte(name)
        # INSERT … SELECT: a NULL there needs its column's type (PostgreSQL would read an untyped one as text)
        typed = [cast(v, table.c[k].type) if isinstance(v, Null) else v for k, v in values.items()]
        return insert(table).from_select(list(values), select(*typed).where(only_if)).cte(name)

    return audit.combined_write(rows(_APPT, appt, "booking_appointment"), rows(_CARE, care, "booking_care"),
                                rows(_OUTBOX, outbox, "booking_outbox"), only_if=only_if)


def _take_and_write():
    """PostgreSQL: the conditional UPDATE that takes a general place (``take_place``'s) and, only when it
    took one, the rows of ``_booking_write``: the slot's row lock is taken by the last statement before
    COMMIT, so a booking holds it for one round trip (concurrent bookings of one slot queue on it). The
    statement's row count (the audit head moved or not) says whether the place was taken."""
    p = column_param
    now = p("now", _APPT.c.created_at)
    take = (update(_SLOT).where(_SLOT.c.id == p("slot_id", _SLOT.c.id), _general_place_free(now),
                                _SLOT.c.start > now)
            .values(booked=_SLOT.c.booked + 1, updated_at=now).returning(_SLOT.c.id).cte("booking_take"))
    taken = select(take.c.id).exists()
    return _booking_write(only_if=taken, shared_now=now)


_TAKE_AND_WRITE = DriverStatement(_take_and_write())
_BOOKING_WRITE = DriverStatement(_booking_write())
_APPT_SHARED = ("id", "created_at", "updated_at", "booked_at", "version_id", "checked_in_at", "cancelled_at",
                "cancel_reason")


def _write_params(appointment: Mapping[str, Any], care_days: int, event_type: str, payload: dict,
                  audited: audit.Appended) -> tuple[dict, dict, dict[str, Any]]:
    """The care relationship row (``access.care_relationship_row``, kind ``appointment``), the outbox row
    (``outbox.event_row``) and the one-statement write's parameters."""
    now, person_id, appt_id = appointment["created_at"], appointment["person_id"], appointment["id"]
    care = access.care_relationship_row(person_id, appointment["organization_id"], "appointment",
                                        f"Appointment/{appt_id}", days=care_days, now=now)
    outbox = outbox_service.event_row(event_type, "Appointment", appt_id, payload, person_id=person_id,
                                      occurred_at=now)
    params = {k: v for k, v in appointment.items() if k not in _APPT_SHARED}
    params.update(now=now, appointment_id=appt_id, care_id=care["id"], care_source_ref=care["source_ref"],
                  care_ends_at=care["ends_at"], event_id=outbox["event_id"], event_type=event_type,
                  payload=payload, **audit.combined_params(audited))
    return care, outbox, params


def insert_booking(session: Session, appointment: Mapping[str, Any], *, care_days: int, event_type: str,
                   payload: dict, audited: audit.Appended) -> bool:
    """The appointment row (its place already taken), the care relationship it gives the institution
    where it is, the outbox event and the prepared audit event, in the caller's transaction: one
    statement on PostgreSQL, one INSERT per table on SQLite. ``appointment`` has every column, with
    ``created_at`` = ``updated_at`` = ``booked_at`` (now) and no check-in or cancellation. True."""
    care, outbox, params = _write_params(appointment, care_days, event_type, payload, audited)
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        _BOOKING_WRITE.execute(session, params)
        return True
    conn.execute(_INSERT_APPOINTMENT, dict(appointment))
    conn.execute(_INSERT_CARE, care)
    conn.execute(_INSERT_OUTBOX, outbox)
    audit.write(session, audited)
    return True


def take_and_write_booking(session: Session, appointment: Mapping[str, Any], *, care_days: int, event_type: str,
                           payload: dict, audited: audit.Appended) -> bool:
    """PostgreSQL, a general place: ``take_place`` and ``insert_booking`` in one statement
    (``_take_and_write``). True when the place was taken and the rows written; False (nothing written, the
    audit head not moved) when the slot had no general place left."""
    _, _, params = _write_params(appointment, care_days, event_type, payload, audited)
    return _TAKE_AND_WRITE.execute(session, params) == 1


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
