"""Scheduling business logic: catalogue, resources, booking (hold → confirm, cancel, reschedule,
check-in, no-show), itinerary proposals and figures. Services flush, never commit (STYLE 2).

Every booking: real-name (the patient record carries a validated resident ID), one conditional UPDATE
takes the place (no double booking), a care relationship for the institution where the appointment
is, an audit event and an outbox event — all in the caller's transaction.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections import defaultdict
from functools import lru_cache
from importlib import resources as pkg_resources

from sqlalchemy.orm import Session, make_transient_to_detached

from onetrip.access import service as access
from onetrip.audit import service as audit
from onetrip.db.base import new_id
from onetrip.db.changes import Changes, apply
from onetrip.kit.clock import LOCAL_TZ, local_date, utcnow
from onetrip.kit.errors import BadRequest, Conflict, Forbidden, NotFound, Unprocessable
from onetrip.kit.identifiers import IdentifierError, parse_resident_id
from onetrip.kit.principal import Principal
from onetrip.outbox.service import event_row as outbox_event_row
from onetrip.outbox.service import record_event
from onetrip.persons.models import PatientRecord
from onetrip.rules.service import rule_values
from onetrip.scheduling import figures, itinerary
from onetrip.scheduling import repository as repo
from onetrip.scheduling.models import (
    Appointment,
    AppointmentStatus,
    Channel,
    Closure,
    ExamOrder,
    ExamType,
    Resource,
    ResourceKind,
    Slot,
    WeeklyTemplate,
)
from onetrip.scheduling.rules import Exam, Placed, RuleParams, SiteInfo

RULE_SET = "scheduling"


def settings(session: Session, on: dt.date | None = None) -> dict[str, object]:
    return rule_values(session, RULE_SET, on)


def rule_params(session: Session) -> RuleParams:
    return RuleParams.from_rule_values(settings(session))


# --- catalogue ---------------------------------------------------------------------------------------

def seed_catalogue(session: Session) -> int:
    """Insert the seeded exams that are missing; an admin's edits are never overwritten."""
    data = json.loads(pkg_resources.files("onetrip.db.seeds").joinpath("exam_catalogue.json").read_text("utf-8"))
    existing = repo.exam_types(session)
    added = 0
    for row in data:
        if row["code"] not in existing:
            session.add(ExamType(**row))
            added += 1
    session.flush()
    return added


def update_exam(session: Session, principal: Principal, code: str, changes: dict) -> ExamType:
    if not principal.is_admin:
        raise Forbidden("仅管理员可修改检查目录 / only an admin may edit the exam catalogue")
    exam = repo.exam_types(session, [code]).get(code)
    if exam is None:
        raise NotFound(f"检查项目不存在 / unknown exam {code!r}")
    for k, v in changes.items():
        if v is not None and k in ("name", "name_en", "duration_minutes", "tags", "prep_zh", "prep_en", "active",
                                   "modality"):
            setattr(exam, k, v)
    session.flush()
    audit.record(session, principal, "update", what=[f"ExamType/{code}"], detail={"changed": sorted(changes)})
    return exam


def exam_or_400(session: Session, code: str) -> ExamType:
    exam = repo.exam_types(session, [code]).get(code)
    if exam is None or not exam.active:
        raise BadRequest(f"检查项目不存在 / unknown exam {code!r}", expression=["exam_code"])
    return exam


# --- resources and templates -------------------------------------------------------------------------

def require_manager(principal: Principal, organization_id: str | None) -> None:
    """The institution's scheduler, or an operator (admin, system client, CLI); None = all institutions."""
    if principal.is_operator:
        return
    if organization_id is not None and principal.organization_id == organization_id and "scheduler" in principal.roles:
        return
    raise Forbidden("仅本机构排班员或管理员可维护号源 / only the institution's scheduler or an admin may "
                    "manage resources and slots")


def create_resource(session: Session, principal: Principal, *, organization_id: str, code: str, name: str,
                    kind: str, modality: str, exam_codes: list[str], practitioner_id: str | None = None,
                    department_id: str | None = None) -> Resource:
    require_manager(principal, organization_id)
    if kind not in {k.value for k in ResourceKind}:
        raise BadRequest(f"资源类型无效 / kind must be one of {[k.value for k in ResourceKind]}", expression=["kind"])
    unknown = set(exam_codes) - set(repo.exam_types(session, exam_codes))
    if unknown:
        raise BadRequest(f"检查项目不存在 / unknown exams {sorted(unknown)}", expression=["exam_codes"])
    r = Resource(organization_id=organization_id, code=code, name=name, kind=kind, modality=modality,
                 exam_codes=exam_codes, practitioner_id=practitioner_id, department_id=department_id)
    session.add(r)
    session.flush()
    audit.record(session, principal, "create", what=[f"Schedule/{r.id}"])
    record_event(session, "schedule.created", "Schedule", r.id, {"organization_id": organization_id})
    return r


def add_template(session: Session, principal: Principal, resource_id: str, *, weekday: int, start_time: str,
                 end_time: str, slot_minutes: int, capacity: int = 1, reserved_share: float | None = None,
                 reserved_purpose: str | None = None, valid_from: dt.date | None = None,
                 valid_to: dt.date | None = None) -> WeeklyTemplate:
    r = session.get(Resource, resource_id)
    if r is None:
        raise NotFound("资源不存在 / resource not found")
    require_manager(principal, r.organization_id)
    if not (0 <= weekday <= 6) or start_time >= end_time or slot_minutes <= 0 or capacity <= 0:
        raise BadRequest("模板无效 / invalid template: weekday 0–6, start < end, positive slot length and capacity")
    if reserved_share is not None and not (0 <= reserved_share <= 1):
        raise BadRequest("预留比例应在 0–1 之间 / reserved_share must be between 0 and 1")
    t = WeeklyTemplate(resource_id=resource_id, weekday=weekday, start_time=start_time, end_time=end_time,
                       slot_minutes=slot_minutes, capacity=capacity, reserved_share=reserved_share,
                       reserved_purpose=reserved_purpose, valid_from=valid_from, valid_to=valid_to)
    session.add(t)
    session.flush()
    return t


def add_closure(session: Session, principal: Principal, *, organization_id: str, starts_on: dt.date,
                ends_on: dt.date, resource_id: str | None = None, reason: str | None = None) -> Closure:
    """Close a resource (or the institution) on some dates; slots already generated there are blocked
    (booked appointments stay and are listed for the desk to rebook)."""
    require_manager(principal, organization_id)
    if ends_on < starts_on:
        raise BadRequest("结束日期早于开始日期 / ends_on is before starts_on")
    c = Closure(organization_id=organization_id, resource_id=resource_id, starts_on=starts_on, ends_on=ends_on,
                reason=reason)
    session.add(c)
    from onetrip.kit.clock import local_datetime

    lo, hi = local_datetime(starts_on, "00:00"), local_datetime(ends_on + dt.timedelta(days=1), "00:00")
    rids = [resource_id] if resource_id else [r.id for r in repo.resources(session, organization_id=organization_id,
                                                                              active_only=False)]
    for s in repo.slots(session, resource_ids=rids, start=lo, end=hi, limit=100_000):
        s.blocked = True
    session.flush()
    audit.record(session, principal, "create", what=[f"Closure/{c.id}"], detail={"reason": reason})
    return c


# --- booking -----------------------------------------------------------------------------------------

def _patient(session: Session, principal: Principal, record_id: str, *, audit_read: bool = True) -> PatientRecord:
    """The patient record, if the caller may act for it (access policy), with real-name checked.

    With ``audit_read=False`` (booking) a permitted access is not audited here — the booking's own audit
    event records it — so no audit-chain lock is taken before the slot's row lock. A denial is still
    audited and refused."""
    rec = session.get(PatientRecord, record_id)
    if rec is None or rec.deleted_at is not None:
        raise NotFound("患者记录不存在 / patient record not found", expression=["patient"])
    own = principal.is_operator or rec.organization_id == principal.organization_id
    if not own and (audit_read or not access.decisions(session, principal, [rec.person_id])[rec.person_id].allowed):
        access.require_read(session, principal, rec.person_id, f"Patient/{rec.id}")
    _require_real_name(rec.id_number)
    return rec


@lru_cache(maxsize=65536)
def _valid_resident_id(number: str) -> bool:
    """Raises for an invalid ID; only valid ones are cached (a valid ID stays valid)."""
    parse_resident_id(number)
    return True


def _require_real_name(id_number: str | None) -> None:
    """Real-name booking (实名制预约): a validated 18-character resident ID on the record."""
    try:
        if not id_number:
            raise IdentifierError("missing")
        _valid_resident_id(id_number)
    except IdentifierError:
        raise Unprocessable("实名预约需要已核验的居民身份证号 / real-name booking needs a patient record with a "
                            "validated resident ID number", expression=["patient"]) from None


def _check_channel(channel: str) -> str:
    if channel not in {c.value for c in Channel}:
        raise BadRequest(f"预约渠道无效 / channel must be one of {[c.value for c in Channel]}",
                         expression=["channel"])
    return channel


def _check_booking(f, exam_code: str, now: dt.datetime) -> None:
    """What a booking needs besides a free place (``f``: ``repo.booking_facts``)."""
    _require_real_name(f.id_number)
    if f.exam_code is None or not f.exam_active:
        raise BadRequest(f"检查项目不存在 / unknown exam {exam_code!r}", expression=["exam_code"])
    if f.slot_id is None:
        raise NotFound("号源不存在 / slot not found", expression=["slot"])
    if exam_code not in (f.exam_codes or []):
        raise BadRequest(f"该号源不做此检查 / this slot's resource does not perform {exam_code}",
                         expression=["serviceType"])
    if f.start <= now:  # time is honest: a slot that has started is not bookable (nor free over FHIR)
        at = f.start.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M")
        raise Conflict(f"号源已于 {at} 开始，不可再预约 / the slot started at {at} (Asia/Shanghai) and can no "
                       "longer be booked", expression=["slot"])


SLOT_FULL = "号源已满 / the slot is full (no place left)"


def book(session: Session, principal: Principal, *, slot_id: str, patient_record_id: str, exam_code: str,
         channel: str, purpose: str | None = None, hold: bool = False, order_id: str | None = None,
         precise: bool = True, rescheduled_from_id: str | None = None) -> Appointment:
    """Book (or, with ``hold``, hold) one place. 409 when the slot has no place left for this booker.

    The lean path (issue 5 benchmark): one read of everything checked, which also locks a free audit
    chain head (``repo.booking_facts``); then the booking's changes — the appointment, the care
    relationship it gives the institution, its outbox event and audit event — behind the conditional
    UPDATE that takes a general place (``repo.general_place``), written by ``db.changes.apply`` (on
    PostgreSQL that is the booking's second and last statement). A booking with a purpose first tries one
    of the places reserved for it (``repo.take_reserved``); if it gets one, its changes need no gate.
    Nothing is written unless a place was taken, so a 409 leaves nothing behind; a slot seen full in the
    first read is refused at once (only the UPDATE accepts)."""
    _check_channel(channel)
    now = utcnow()
    today = now.date()  # the date rules.service.rule_values reads rule values on
    # the audit chain head is locked before the slot, by every booking (one lock order)
    f = repo.booking_facts(session, slot_id, patient_record_id, exam_code, today, audit.head_lock_params(session))
    if (f is None or f.deleted_at is not None
            or not (principal.is_operator or f.record_organization_id == principal.organization_id)):
        _patient(session, principal, patient_record_id, audit_read=False)  # 404, or the access policy decides
        if f is None:
            raise NotFound("患者记录不存在 / patient record not found", expression=["patient"])
    _check_booking(f, exam_code, now)
    if repo.free_places(f, purpose, now) <= 0:  # type: ignore[arg-type]
        raise Conflict(SLOT_FULL)
    reserved = purpose is not None and repo.take_reserved(session, slot_id, purpose=purpose, now=now)
    hold_minutes = int(f.hold_minutes if f.hold_minutes is not None else 15)
    status = (AppointmentStatus.pending if hold else AppointmentStatus.booked).value
    values = {
        "id": new_id(), "created_at": now, "updated_at": now, "version_id": 1,
        "person_id": f.person_id, "patient_record_id": patient_record_id, "organization_id": f.organization_id,
        "booking_organization_id": principal.organization_id or f.record_organization_id, "slot_id": slot_id,
        "resource_id": f.resource_id, "exam_code": exam_code, "start": f.start, "end": f.end, "status": status,
        "channel": channel, "precise": precise, "used_reserved": reserved, "purpose": purpose,
        "hold_expires_at": now + dt.timedelta(minutes=hold_minutes) if hold else None, "booked_at": now,
        "checked_in_at": None, "cancelled_at": None, "cancel_reason": None,
        "rescheduled_from_id": rescheduled_from_id, "order_id": order_id, "booked_by": principal.name[:64],
    }
    ref = f"Appointment/{values['id']}"
    changes = Changes(
        repo.appointment_row(values),
        access.care_relationship_row(f.person_id, f.organization_id, "appointment", ref, now=now,
                                     days=int(f.care_relationship_days if f.care_relationship_days is not None
                                              else 365)),
        outbox_event_row("appointment.held" if hold else "appointment.booked", "Appointment", values["id"],
                         {"slot_id": slot_id, "exam_code": exam_code, "channel": channel,
                          "organization_id": f.organization_id}, person_id=f.person_id, occurred_at=now),
        *audit.events(session, principal, [("create", {
            "person_ids": [f.person_id], "what": [ref],
            "detail": {"slot": slot_id, "channel": channel, "status": status}})], head=f),
        gate=None if reserved else repo.general_place(slot_id, now))
    if not apply(session, changes):  # the UPDATE found the slot full (another booking took the last place)
        raise Conflict(SLOT_FULL)
    # The row is written; the object the callers get is the same row, without reading it back.
    appt = Appointment(**values)
    make_transient_to_detached(appt)
    session.add(appt)
    if order_id:
        order = session.get(ExamOrder, order_id)
        if order is not None and order.person_id == f.person_id:
            order.status, order.appointment_id = "scheduled", appt.id
            session.flush()
    return appt


def _appointment(session: Session, principal: Principal, appointment_id: str, *, lock: bool = True) -> Appointment:
    appt = session.get(Appointment, appointment_id, with_for_update=lock)
    if appt is None:
        raise NotFound("预约不存在 / appointment not found")
    if not (principal.is_operator or principal.organization_id in (appt.organization_id, appt.booking_organization_id)):
        access.require_read(session, principal, appt.person_id, f"Appointment/{appt.id}")
    return appt


def read_appointment(session: Session, principal: Principal, appointment_id: str) -> Appointment:
    appt = _appointment(session, principal, appointment_id, lock=False)
    audit.record(session, principal, "read", person_ids=[appt.person_id], what=[f"Appointment/{appt.id}"])
    return appt


def _transition(session: Session, principal: Principal, appt: Appointment, status: str, event: str,
                **fields) -> Appointment:
    appt.status = status
    for k, v in fields.items():
        setattr(appt, k, v)
    session.flush()
    audit.record(session, principal, "update", person_ids=[appt.person_id], what=[f"Appointment/{appt.id}"],
                 detail={"status": status})
    record_event(session, event, "Appointment", appt.id, {"status": status}, person_id=appt.person_id)
    return appt


def confirm(session: Session, principal: Principal, appointment_id: str) -> Appointment:
    """A hold becomes a booking (409 if the hold expired or the appointment is not a hold)."""
    appt = _appointment(session, principal, appointment_id)
    if appt.status == AppointmentStatus.booked.value:
        return appt
    if appt.status != AppointmentStatus.pending.value:
        raise Conflict(f"预约状态为 {appt.status}，不能确认 / cannot confirm an appointment that is {appt.status}")
    if appt.hold_expires_at and appt.hold_expires_at <= utcnow():
        _release(session, appt, "hold-expired")
        raise Conflict("占号已过期，请重新预约 / the hold expired: book again")
    return _transition(session, principal, appt, AppointmentStatus.booked.value, "appointment.booked",
                       hold_expires_at=None, booked_at=utcnow())


def _release(session: Session, appt: Appointment, reason: str) -> None:
    now = utcnow()
    repo.give_back(session, appt.slot_id, reserved=appt.used_reserved, now=now)
    appt.status, appt.cancelled_at, appt.cancel_reason = AppointmentStatus.cancelled.value, now, reason
    if appt.order_id:
        order = session.get(ExamOrder, appt.order_id)
        if order is not None and order.appointment_id == appt.id:
            order.status, order.appointment_id = "pending", None
    session.flush()


def cancel(session: Session, principal: Principal, appointment_id: str, reason: str = "patient-request") -> Appointment:
    appt = _appointment(session, principal, appointment_id)
    if appt.status == AppointmentStatus.cancelled.value:
        return appt
    if appt.status not in (AppointmentStatus.pending.value, AppointmentStatus.booked.value):
        raise Conflict(f"预约状态为 {appt.status}，不能取消 / cannot cancel an appointment that is {appt.status}")
    release_recorded(session, principal, appt, reason)
    return appt


def release_recorded(session: Session, principal: Principal | None, appt: Appointment, reason: str) -> None:
    """Cancel ``appt`` and give its place back, with its audit event and ``appointment.cancelled`` event
    (``principal`` is None for jobs)."""
    _release(session, appt, reason[:64])
    audit.record(session, principal, "update", person_ids=[appt.person_id], what=[f"Appointment/{appt.id}"],
                 detail={"status": "cancelled", "reason": reason[:64]})
    record_event(session, "appointment.cancelled", "Appointment", appt.id, {"reason": reason[:64]},
                 person_id=appt.person_id)


def reschedule(session: Session, principal: Principal, appointment_id: str, new_slot_id: str,
               channel: str | None = None) -> Appointment:
    """Book the new slot first (409 leaves the old appointment untouched), then cancel the old one."""
    old = _appointment(session, principal, appointment_id)
    if old.status not in (AppointmentStatus.pending.value, AppointmentStatus.booked.value):
        raise Conflict(f"预约状态为 {old.status}，不能改约 / cannot reschedule an appointment that is {old.status}")
    new = book(session, principal, slot_id=new_slot_id, patient_record_id=old.patient_record_id,
               exam_code=old.exam_code, channel=channel or old.channel, purpose=old.purpose,
               order_id=old.order_id, precise=old.precise, rescheduled_from_id=old.id)
    _release(session, old, "rescheduled")
    if new.order_id:
        order = session.get(ExamOrder, new.order_id)
        if order is not None:
            order.status, order.appointment_id = "scheduled", new.id
    record_event(session, "appointment.rescheduled", "Appointment", old.id, {"to": new.id}, person_id=old.person_id)
    session.flush()
    return new


def check_in(session: Session, principal: Principal, appointment_id: str) -> Appointment:
    appt = _appointment(session, principal, appointment_id)
    if appt.status != AppointmentStatus.booked.value:
        raise Conflict(f"预约状态为 {appt.status}，不能签到 / cannot check in an appointment that is {appt.status}")
    return _transition(session, principal, appt, AppointmentStatus.checked_in.value, "appointment.checked-in",
                       checked_in_at=utcnow())


def no_show(session: Session, principal: Principal, appointment_id: str) -> Appointment:
    appt = _appointment(session, principal, appointment_id)
    if appt.status != AppointmentStatus.booked.value:
        raise Conflict(f"预约状态为 {appt.status}，不能标记爽约 / cannot mark no-show on {appt.status}")
    if appt.start > utcnow():
        raise Conflict("预约时间未到 / the appointment has not started yet")
    return _transition(session, principal, appt, AppointmentStatus.noshow.value, "appointment.noshow")


def create_order(session: Session, principal: Principal, patient_record_id: str, exam_code: str) -> ExamOrder:
    rec = _patient(session, principal, patient_record_id)
    exam_or_400(session, exam_code)
    order = ExamOrder(person_id=rec.person_id, patient_record_id=rec.id,
                      organization_id=principal.organization_id or rec.organization_id, exam_code=exam_code)
    session.add(order)
    session.flush()
    audit.record(session, principal, "create", person_ids=[rec.person_id], what=[f"ServiceRequest/{order.id}"])
    record_event(session, "order.created", "ServiceRequest", order.id, {"exam_code": exam_code},
                 person_id=rec.person_id)
    return order


# --- finding and proposing ---------------------------------------------------------------------------

def find_candidates(session: Session, exam_code: str, start: dt.datetime, end: dt.datetime, *,
                    organization_ids: list[str] | None = None, purpose: str | None = None,
                    now: dt.datetime | None = None) -> list[tuple[Slot, Resource, int]]:
    """Free slots for an exam: (slot, resource, places this booker may take), earliest first."""
    now = now or utcnow()
    res = [r for r in repo.resources(session, exam_code=exam_code)
           if not organization_ids or r.organization_id in organization_ids]
    by_id = {r.id: r for r in res}
    if not by_id:
        return []
    out = []
    for s in repo.slots(session, resource_ids=list(by_id), start=max(start, now), end=end, only_free=True,
                        now=now):
        free = repo.free_places(s, purpose, now)
        if free > 0:
            out.append((s, by_id[s.resource_id], free))
    return out


def _history(session: Session, person_id: str, types: dict[str, ExamType]) -> list[Placed]:
    appts = repo.appointments_of_person(session, person_id)
    missing = {a.exam_code for a in appts} - set(types)
    types = {**types, **repo.exam_types(session, list(missing))} if missing else types
    return [Placed(f"booked:{a.id}", frozenset(types[a.exam_code].tags or []), a.start, a.end)
            for a in appts if a.exam_code in types]


def site_key(organization_id: str, campus: str | None) -> str:
    """A site's key: the organization id, or ``org:campus`` for one of its campuses (issue 17)."""
    return f"{organization_id}:{campus}" if campus else organization_id


def _site_infos(session: Session, keys: set[str]) -> dict[str, SiteInfo]:
    orgs, rows = repo.sites_of(session, [k.split(":")[0] for k in keys])
    org_by_id = {o.id: o for o in orgs}
    row_by_key = {site_key(r.organization_id, r.campus): r for r in rows}
    out = {}
    for k in keys:
        org_id, _, campus = k.partition(":")
        org, row = org_by_id.get(org_id), row_by_key.get(k)
        name = row.name if row else ((org.name if org else org_id) + (f"（{campus}）" if campus else ""))
        out[k] = SiteInfo(k, org_id, name, row.latitude if row else None, row.longitude if row else None)
    return out


def site_addresses(session: Session, keys: set[str]) -> dict[str, str | None]:
    orgs, rows = repo.sites_of(session, [k.split(":")[0] for k in keys])
    out: dict[str, str | None] = {o.id: o.address for o in orgs}
    out.update({site_key(r.organization_id, r.campus): r.address for r in rows if r.address})
    return {k: out.get(k) or out.get(k.split(":")[0]) for k in keys}


def propose_itinerary(session: Session, principal: Principal, patient_record_id: str, *,
                      exam_codes: list[str] | None = None, from_date: dt.date | None = None,
                      organization_ids: list[str] | None = None, purpose: str | None = None,
                      use_cp_sat: bool = True, sites: list[str] | None = None, restrict_to_own: bool = False,
                      sites_per_day: int | None = None, alternative: bool = True,
                      ) -> tuple[itinerary.Proposal, dict[str, ExamType], dict[str, str], dict[str, str]]:
    """The best itinerary for the patient's pending exam orders (or the given exam codes).
    Returns (proposal, exam types, exam key → order id, exam key → exam code).

    Where (issue 17): ``restrict_to_own`` keeps to the caller's institution; ``sites`` (site keys
    ``org`` or ``org:campus``; ``organization_ids`` is the older spelling) to those sites. Otherwise the
    preferred sites are the ordering institution, the patient's own (registered) institution and the
    community's lead hospital; an exam none of them offers is looked for at any site. ``sites_per_day``
    (S1, default from the rule table: 1) lets the patient travel between sites on one day. When nothing
    is feasible the proposal carries ``reasons`` and, where a wider search finds one, ``alternative``."""
    rec = _patient(session, principal, patient_record_id)
    order_of: dict[str, str] = {}
    ordering: set[str] = set()
    if exam_codes:
        keys = [(f"{c}#{i}", c) for i, c in enumerate(exam_codes)]
    else:
        orders = repo.pending_orders(session, rec.person_id)
        keys = [(o.id, o.exam_code) for o in orders]
        order_of = {o.id: o.id for o in orders}
        ordering = {o.organization_id for o in orders}
    if not keys:
        raise BadRequest("没有待预约的检查 / no pending exam orders to schedule")
    types = repo.exam_types(session, [c for _, c in keys])
    unknown = {c for _, c in keys} - set(types)
    if unknown:
        raise BadRequest(f"检查项目不存在 / unknown exams {sorted(unknown)}")
    if principal.organization_id:
        ordering.add(principal.organization_id)
    restricted: list[str] | None = None
    if restrict_to_own:
        if not principal.organization_id:
            raise BadRequest("调用者不属于任何机构 / the caller belongs to no institution", expression=["restrict_to_own"])
        restricted = [principal.organization_id]
    elif sites or organization_ids:
        restricted = list(sites or []) + list(organization_ids or [])
    cfg = settings(session)
    params = RuleParams.from_rule_values(cfg)
    if sites_per_day:
        params = dataclasses.replace(params, max_sites_per_day=sites_per_day)
    now = utcnow()
    start = max(now, dt.datetime.combine(from_date, dt.time(0), LOCAL_TZ).astimezone(dt.UTC)) if from_date else now
    horizon = int(cfg.get("horizon_days", 14))  # type: ignore[arg-type]
    end = start + dt.timedelta(days=horizon)
    exams = []
    everywhere: dict[str, list[itinerary.Candidate]] = {}
    for key, code in keys:
        t = types[code]
        exams.append(Exam(key, code, t.duration_minutes, frozenset(t.tags or []), t.name, t.name_en))
        if code not in everywhere:
            everywhere[code] = [itinerary.Candidate(s.id, s.start, s.end, r.id, r.organization_id, free,
                                                    site_key(r.organization_id, r.campus))
                                for s, r, free in find_candidates(session, code, start, end, purpose=purpose, now=now)]
    preferred_orgs = ordering | {rec.organization_id} | set(repo.lead_hospitals(session, ordering | {rec.organization_id}))
    preferred = frozenset(preferred_orgs | {c.site_key for cs in everywhere.values() for c in cs
                                            if c.organization_id in preferred_orgs})
    history = _history(session, rec.person_id, types)
    limit_ms = int(cfg.get("solver_time_limit_ms", 250))  # type: ignore[arg-type]

    def in_scope(c: itinerary.Candidate, scope: list[str]) -> bool:
        return c.site_key in scope or c.organization_id in scope

    def candidates_for(scope: list[str] | None) -> dict[str, list[itinerary.Candidate]]:
        out = {}
        for key, code in keys:
            cs = everywhere[code]
            if scope is not None:
                out[key] = [c for c in cs if in_scope(c, scope)]
            else:  # default: the preferred sites; an exam none of them offers, anywhere
                near = [c for c in cs if in_scope(c, list(preferred))]
                out[key] = near or cs
        return out

    infos = _site_infos(session, {c.site_key for cs in everywhere.values() for c in cs} | set(preferred) |
                        {k for k in restricted or [] if k})

    def solve(scope: list[str] | None) -> itinerary.Proposal:
        names = "、".join(infos[k].name if k in infos else k for k in scope) if scope else ""
        return itinerary.plan(exams, candidates_for(scope), params, history, time_limit_ms=limit_ms,
                              use_cp_sat=use_cp_sat, sites=infos, preferred=preferred, horizon_days=horizon,
                              scope=names)

    proposal = solve(restricted)
    proposal.sites = infos
    if not proposal.placements and alternative:
        wider = solve(None) if restricted is not None else None
        if wider is None or not wider.placements:
            wider = itinerary.plan(exams, {k: everywhere[c] for k, c in keys}, params, history,
                                   time_limit_ms=limit_ms, use_cp_sat=use_cp_sat, sites=infos, preferred=preferred,
                                   horizon_days=horizon)
        if not wider.placements and params.max_sites_per_day < 2:
            wider = itinerary.plan(exams, {k: everywhere[c] for k, c in keys},
                                   dataclasses.replace(params, max_sites_per_day=2), history, time_limit_ms=limit_ms,
                                   use_cp_sat=use_cp_sat, sites=infos, preferred=preferred, horizon_days=horizon)
        if wider.placements:
            wider.sites = infos
            proposal.alternative = wider
    elif proposal.placements:
        offered = {c.site_key for cs in candidates_for(restricted).values() for c in cs}
        if restricted is None and not offered <= preferred:
            far = sorted({e.name or e.code for e in exams
                          if not any(in_scope(c, list(preferred)) for c in everywhere[e.code])})
            proposal.explanation.insert(1, {
                "rule": "sites", "zh": "首选机构（开单机构、签约机构、总院）不提供：" + "、".join(far) + "，已在其他院区安排",
                "en": "not offered at the preferred sites (ordering, patient's own, lead hospital): " +
                      ", ".join(far) + " — placed at another site"})
    audit.record(session, principal, "read", person_ids=[rec.person_id], what=[f"Patient/{rec.id}"],
                 detail={"itinerary": proposal.solver, "exams": len(exams)})
    return proposal, types, order_of, dict(keys)


def book_itinerary(session: Session, principal: Principal, patient_record_id: str,
                   items: list[tuple[str, str, str | None]], channel: str, *,
                   sites_per_day: int | None = None) -> list[Appointment]:
    """Book several (slot, exam, order) at once: all or nothing (one 409 rolls the whole request back).
    The rules are checked again, with S1/S2 (one site per day unless ``sites_per_day`` allows more)."""
    if not items:
        raise BadRequest("没有要预约的项目 / nothing to book")
    params = rule_params(session)
    if sites_per_day:
        params = dataclasses.replace(params, max_sites_per_day=sites_per_day)
    rec = _patient(session, principal, patient_record_id)
    types = repo.exam_types(session, [c for _, c, _ in items])
    placed = []
    for i, (slot_id, code, _) in enumerate(items):
        slot = session.get(Slot, slot_id)
        if slot is None or code not in types:
            raise BadRequest("号源或检查项目无效 / unknown slot or exam in the itinerary")
        res = session.get(Resource, slot.resource_id)
        where = site_key(res.organization_id, res.campus) if res else ""
        placed.append(Placed(f"{code}#{i}", frozenset(types[code].tags or []), slot.start, slot.end, where))
    from onetrip.scheduling.rules import violations

    broken = violations(placed, params, _history(session, rec.person_id, types),
                        _site_infos(session, {p.site for p in placed if p.site}))
    if broken:
        raise Unprocessable("行程违反检查顺序规则 / the itinerary breaks a rule: " +
                            "; ".join(f"{v.rule} {v.message}" for v in broken))
    return [book(session, principal, slot_id=s, patient_record_id=patient_record_id, exam_code=c, channel=channel,
                 order_id=o) for s, c, o in items]


# --- figures -----------------------------------------------------------------------------------------

def compute_figures(session: Session, principal: Principal, *, organization_id: str | None, start: dt.date,
                    end: dt.date) -> dict:
    """智慧预约率, median wait days per modality, no-show rate, utilisation per resource for
    appointments starting in [start, end] (local dates)."""
    if not principal.is_operator and organization_id != principal.organization_id:
        raise Forbidden("只能查看本机构的统计 / figures of your own institution only")
    lo = dt.datetime.combine(start, dt.time(0), LOCAL_TZ).astimezone(dt.UTC)
    hi = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(0), LOCAL_TZ).astimezone(dt.UTC)
    appts = repo.appointments(session, organization_id=organization_id, start=lo, end=hi, limit=1_000_000)
    types = repo.exam_types(session)
    now = utcnow()
    rows = [figures.ApptFact(a.status, a.precise, types[a.exam_code].modality if a.exam_code in types else "?",
                             (local_date(a.start) - local_date(a.booked_at or a.created_at)).days, a.start <= now)
            for a in appts]
    res_names = {r.id: r for r in repo.resources(session, organization_id=organization_id, active_only=False)}
    usage = defaultdict(lambda: [0, 0])
    for rid, places, booked in repo.slot_usage(session, organization_id, lo, hi):
        usage[rid][0] += places
        usage[rid][1] += booked
    return {
        "period": {"start": start.isoformat(), "end": end.isoformat()},
        "organization_id": organization_id,
        "appointments": len(rows),
        "smart_booking_rate": figures.smart_booking_rate(rows),
        "median_wait_days": figures.median_wait_days(rows),
        "no_show_rate": figures.no_show_rate(rows),
        "utilisation": [{"resource_id": rid, "resource": res_names[rid].name if rid in res_names else rid,
                         "places": p, "booked": b, "utilisation": figures.utilisation(p, b)}
                        for rid, (p, b) in sorted(usage.items())],
    }
