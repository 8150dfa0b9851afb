"""Referral business logic: draft, the lifecycle actions, SLA expiry with escalation, follow-ups.
Services flush, never commit (STYLE 2). Every transition goes through ``states.next_status`` and writes
an audit event and an outbox event (``referral.<state>``, payload per CONTRACTS.md) in the caller's
transaction.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from functools import lru_cache
from importlib import resources as pkg_resources
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from onetrip.access import service as access
from onetrip.audit import service as audit
from onetrip.kit import clock
from onetrip.kit.errors import BadRequest, Conflict, Forbidden, NotFound, Unprocessable
from onetrip.kit.principal import Principal
from onetrip.outbox.service import record_event
from onetrip.persons.models import PatientRecord, Person
from onetrip.referral import rules
from onetrip.referral.models import Referral, ReferralFollowUp
from onetrip.referral.states import Action, IllegalTransition, Status, next_status
from onetrip.registry.models import Department, Organization, Practitioner, User
from onetrip.rules.service import rule_values
from onetrip.scheduling import interface as scheduling

RULE_SET = "referral"
DIRECTIONS = ("up", "down")
AGGREGATE = "ServiceRequest"

# In-process consumers of a completed referral (e.g. a chronic-disease programme updating its plan).
# Each is called as hook(session, referral) inside the completing transaction; the outbox event
# ``referral.completed`` is the decoupled way to consume the same fact.
COMPLETED_HOOKS: list[Callable[[Session, Referral], None]] = []


def settings(session: Session) -> dict[str, Any]:
    return rule_values(session, RULE_SET)


def criteria(session: Session, direction: str) -> list[dict[str, str]]:
    """The pick-list of R2.1 (up) or R2.2 (down) as seeded in rules_referral.json."""
    key = "criteria_up" if direction == "up" else "criteria_down"
    return list(settings(session).get(key) or [])  # type: ignore[arg-type]


@lru_cache(maxsize=1)
def icd10_catalogue() -> dict[str, Any]:
    return json.loads(pkg_resources.files("onetrip.db.seeds").joinpath("icd10_clinical.json").read_text("utf-8"))


def icd10_codes() -> dict[str, dict[str, str]]:
    return {c["code"]: c for c in icd10_catalogue()["codes"]}


# --- helpers -----------------------------------------------------------------------------------------

def _user_of(session: Session, principal: Principal) -> User | None:
    return session.get(User, principal.id) if principal.kind == "user" else None


def _department_of(session: Session, principal: Principal) -> str | None:
    user = _user_of(session, principal)
    if user is None or user.practitioner_id is None:
        return None
    p = session.get(Practitioner, user.practitioner_id)
    return p.department_id if p else None


def _org(session: Session, org_id: str | None, what: str) -> Organization:
    org = session.get(Organization, org_id) if org_id else None
    if org is None or not org.active:
        raise BadRequest(f"机构不存在 / {what} organization not found", expression=[what])
    return org


def _lead_hospital_for(session: Session, sender: Organization) -> Organization | None:
    """Upward with no target named: the nearest hospital up the parent chain, else the community's lead."""
    seen: set[str] = set()
    org: Organization | None = sender
    while org is not None and org.parent_id and org.parent_id not in seen:
        seen.add(org.id)
        org = session.get(Organization, org.parent_id)
        if org is not None and rules.tier(org.org_type) == rules.HOSPITAL_TIER:
            return org
    if sender.community_id:
        return session.scalars(select(Organization).where(
            Organization.community_id == sender.community_id, Organization.org_type == "lead_hospital",
            Organization.active.is_(True))).first()
    return None


def _home_branch_for(session: Session, person_id: str, sender: Organization) -> Organization | None:
    """Downward with no target named: the branch (or station) where the resident is registered."""
    rows = session.execute(
        select(Organization).join(PatientRecord, PatientRecord.organization_id == Organization.id).where(
            PatientRecord.person_id == person_id, PatientRecord.deleted_at.is_(None),
            Organization.org_type.in_(("branch_centre", "station")), Organization.active.is_(True))
        .order_by(PatientRecord.created_at.desc())
    ).scalars().all()
    same = [o for o in rows if sender.community_id and o.community_id == sender.community_id]
    return (same or rows or [None])[0]


def _receiving_department(session: Session, org: Organization, direction: str) -> str | None:
    if direction != "up":
        return None
    code = str(settings(session).get("receiving_department_code", "PCD"))
    return session.scalars(select(Department.id).where(Department.organization_id == org.id,
                                                       Department.code == code)).first()


def _check_direction(session: Session, direction: str, sender: Organization, target: Organization) -> None:
    problem = rules.direction_problem(direction, sender.org_type, target.org_type)
    if problem:
        raise BadRequest(problem, expression=["to_organization_id"])
    if sender.id == target.id:
        raise BadRequest("不能转诊到本机构 / cannot refer to the sending institution itself",
                         expression=["to_organization_id"])


def _check_criteria(session: Session, direction: str, codes: list[str]) -> list[str]:
    known = {c["code"] for c in criteria(session, direction)}
    bad = [c for c in codes if c not in known]
    if bad:
        raise BadRequest(f"转诊标准代码无效 / unknown {direction} referral criteria {bad}; allowed: {sorted(known)}",
                         expression=["criteria_codes"])
    return list(dict.fromkeys(codes))


def check_diagnoses(items: list[dict] | None) -> list[dict[str, str]]:
    """[{code, display?}] with codes from the seeded ICD-10 国家临床版 list."""
    cat = icd10_codes()
    out = []
    for d in items or []:
        code = str((d or {}).get("code", "")).strip()
        if code not in cat:
            raise BadRequest(f"诊断编码不在 ICD-10 国家临床版目录中 / diagnosis code {code!r} is not in the "
                             "ICD-10 clinical catalogue", expression=["diagnoses"])
        out.append({"code": code, "display": str(d.get("display") or cat[code]["zh"])[:200]})
    return out


def check_medications(items: list[dict] | None) -> list[dict[str, str]]:
    out = []
    for m in items or []:
        name = str((m or {}).get("name", "")).strip()
        if not name:
            raise BadRequest("药品名称不能为空 / each medication needs a name", expression=["medications"])
        out.append({"name": name[:100], "dose": str(m.get("dose") or "")[:100],
                    **({"code": str(m["code"])[:64]} if m.get("code") else {})})
    return out


def payload(r: Referral, at: dt.datetime) -> dict[str, Any]:
    """The outbox payload of CONTRACTS.md."""
    return {"referral_id": r.id, "direction": r.direction, "from_organization_id": r.from_organization_id,
            "to_organization_id": r.to_organization_id, "to_department_id": r.to_department_id,
            "submitted_at": r.submitted_at.isoformat() if r.submitted_at else None, "at": at.isoformat(),
            "reserved_slot": bool(r.reserved_slot)}


def _record(session: Session, principal: Principal | None, r: Referral, event: str, at: dt.datetime,
            subtype: str = "update", **detail: Any) -> None:
    audit.record(session, principal, subtype, person_ids=[r.person_id], what=[f"ServiceRequest/{r.id}"],
                 detail={"status": r.status, "event": event, **detail})
    record_event(session, event, AGGREGATE, r.id, payload(r, at), person_id=r.person_id)


# --- draft -------------------------------------------------------------------------------------------

def draft_referral(session: Session, principal: Principal, *, person_id: str, direction: str,
                   to_organization_id: str | None, reason: str, criteria_codes: list[str], source: str,
                   urgent: bool = False, department_id: str | None = None,
                   diagnoses: list[dict] | None = None, history_summary: str | None = None,
                   treatment_summary: str | None = None, medications: list[dict] | None = None,
                   discharge_summary: str | None = None, rehab_plan: str | None = None,
                   note: str | None = None) -> Referral:
    """A new referral in ``draft`` from the principal's institution (CONTRACTS.md). ``department_id`` is
    the receiving department (基层科 by default for upward referrals). With no target institution named,
    upward goes to the lead hospital, downward to the branch where the resident is registered."""
    if direction not in DIRECTIONS:
        raise BadRequest("转诊方向须为 up 或 down / direction must be up or down", expression=["direction"])
    if not principal.organization_id:
        raise Forbidden("只有机构用户可以发起转诊 / only a user or system of an institution can refer")
    sender = _org(session, principal.organization_id, "from_organization_id")
    person = session.get(Person, person_id)
    if person is None:
        raise NotFound("居民不存在 / person not found", expression=["person_id"])
    if person.merged_into_id:
        person_id = person.merged_into_id
    if not access.decisions(session, principal, [person_id])[person_id].allowed:
        access.require_read(session, principal, person_id, f"Patient/{person_id}")  # audits and raises
    if to_organization_id:
        target: Organization | None = _org(session, to_organization_id, "to_organization_id")
    else:
        target = (_lead_hospital_for(session, sender) if direction == "up"
                  else _home_branch_for(session, person_id, sender))
    if target is not None:
        _check_direction(session, direction, sender, target)
    if department_id is not None:
        dept = session.get(Department, department_id)
        if dept is None or target is None or dept.organization_id != target.id:
            raise BadRequest("接收科室不属于接收机构 / the receiving department is not at the receiving institution",
                             expression=["department_id"])
    elif target is not None:
        department_id = _receiving_department(session, target, direction)
    codes = _check_criteria(session, direction, list(criteria_codes or []))
    if len(reason or "") > 2000:
        raise BadRequest("转诊理由过长（最多2000字）/ reason too long (2000 characters at most)", expression=["reason"])
    record = session.scalars(select(PatientRecord).where(
        PatientRecord.person_id == person_id, PatientRecord.organization_id == sender.id,
        PatientRecord.deleted_at.is_(None)).order_by(PatientRecord.created_at.desc())).first()
    user = _user_of(session, principal)
    r = Referral(
        person_id=person_id, patient_record_id=record.id if record else None, direction=direction,
        status=Status.draft.value, urgent=bool(urgent), source=(source or "api")[:32],
        from_organization_id=sender.id, from_department_id=_department_of(session, principal),
        requester_user_id=user.id if user else None, requester_name=principal.name[:64],
        to_organization_id=target.id if target else None, to_department_id=department_id,
        reason=(reason or "").strip(), criteria_codes=codes, diagnoses=check_diagnoses(diagnoses),
        history_summary=history_summary, treatment_summary=treatment_summary,
        medications=check_medications(medications), discharge_summary=discharge_summary, rehab_plan=rehab_plan,
        note=note,
    )
    session.add(r)
    session.flush()
    _record(session, principal, r, "referral.drafted", clock.utcnow(), subtype="create", source=r.source)
    return r


_EDITABLE = {"reason", "criteria_codes", "urgent", "to_organization_id", "to_department_id", "diagnoses",
             "history_summary", "treatment_summary", "medications", "discharge_summary", "rehab_plan", "note"}


def update_draft(session: Session, principal: Principal, referral_id: str, changes: dict[str, Any]) -> Referral:
    """Edit a draft (the sender only)."""
    r = _referral(session, referral_id, lock=True)
    _require_side(principal, r, "sender")
    if r.status != Status.draft.value:
        raise Conflict(f"只有草稿可以修改 / only a draft can be edited (this referral is {r.status})")
    unknown = set(changes) - _EDITABLE
    if unknown:
        raise BadRequest(f"不可修改的字段 / fields that cannot be edited: {sorted(unknown)}")
    if "to_organization_id" in changes and changes["to_organization_id"] != r.to_organization_id:
        target = _org(session, changes["to_organization_id"], "to_organization_id")
        _check_direction(session, r.direction, _org(session, r.from_organization_id, "from"), target)
        r.to_organization_id = target.id
        r.to_department_id = _receiving_department(session, target, r.direction)
    if "to_department_id" in changes:
        dept = session.get(Department, changes["to_department_id"]) if changes["to_department_id"] else None
        if changes["to_department_id"] and (dept is None or dept.organization_id != r.to_organization_id):
            raise BadRequest("接收科室不属于接收机构 / the receiving department is not at the receiving institution",
                             expression=["to_department_id"])
        r.to_department_id = changes["to_department_id"]
    if "criteria_codes" in changes:
        r.criteria_codes = _check_criteria(session, r.direction, list(changes["criteria_codes"] or []))
    if "diagnoses" in changes:
        r.diagnoses = check_diagnoses(changes["diagnoses"])
    if "medications" in changes:
        r.medications = check_medications(changes["medications"])
    for k in ("reason", "urgent", "history_summary", "treatment_summary", "discharge_summary", "rehab_plan",
              "note"):
        if k in changes:
            setattr(r, k, changes[k] if k != "urgent" else bool(changes[k]))
    session.flush()
    audit.record(session, principal, "update", person_ids=[r.person_id], what=[f"ServiceRequest/{r.id}"],
                 detail={"edited": sorted(changes)})
    return r


# --- reading -----------------------------------------------------------------------------------------

def _referral(session: Session, referral_id: str, *, lock: bool = False) -> Referral:
    r = session.get(Referral, referral_id, with_for_update=lock) if lock else session.get(Referral, referral_id)
    if r is None:
        raise NotFound("转诊单不存在 / referral not found")
    return r


def side_of(principal: Principal, r: Referral) -> str | None:
    """sender | receiver | None (operators act as either)."""
    if principal.organization_id and principal.organization_id == r.from_organization_id:
        return "sender"
    if principal.organization_id and principal.organization_id == r.to_organization_id:
        return "receiver"
    return None


def _require_side(principal: Principal, r: Referral, *sides: str) -> None:
    if principal.is_operator:
        return
    if side_of(principal, r) not in sides:
        who = {"sender": "转出机构 / the sending institution", "receiver": "接收机构 / the receiving institution"}
        raise Forbidden("只有" + "或".join(who[s].split(" / ")[0] for s in sides) + "可以执行此操作 / only "
                        + " or ".join(who[s].split(" / ")[1] for s in sides) + " may do this")


def get_referral(session: Session, principal: Principal, referral_id: str, *, audit_read: bool = True) -> Referral:
    """A referral the principal's institution sent or receives (or an operator); audited."""
    r = _referral(session, referral_id)
    if not principal.is_operator and side_of(principal, r) is None:
        raise NotFound("转诊单不存在 / referral not found")
    if r.to_organization_id == principal.organization_id and r.status == Status.draft.value:
        raise NotFound("转诊单不存在 / referral not found")  # a draft is the sender's own
    if audit_read:
        audit.record(session, principal, "read", person_ids=[r.person_id], what=[f"ServiceRequest/{r.id}"])
    return r


# --- transitions -------------------------------------------------------------------------------------

def _transition(session: Session, principal: Principal | None, r: Referral, action: Action,
                now: dt.datetime, **detail: Any) -> Referral:
    try:
        new = next_status(r.status, action)
    except IllegalTransition:
        raise Conflict(f"转诊单状态为 {r.status}，不能执行 {action.value} / cannot {action.value} a referral "
                       f"that is {r.status}") from None
    r.status = new.value
    stamp = {Status.submitted: "submitted_at", Status.accepted: "accepted_at", Status.rejected: "rejected_at",
             Status.scheduled: "scheduled_at", Status.arrived: "arrived_at", Status.completed: "completed_at",
             Status.cancelled: "cancelled_at", Status.expired: "expired_at"}.get(new)
    if stamp:
        setattr(r, stamp, now)
    session.flush()
    _record(session, principal, r, f"referral.{new.value}", now, action=action.value, **detail)
    return r


def submit(session: Session, principal: Principal, referral_id: str, *, slot_id: str | None = None,
           exam_code: str | None = None) -> Referral:
    """Send the referral. With ``slot_id`` (and the exam) a reserved slot (号源下沉, R2.4) at the receiving
    institution is booked at once for the patient; accepting then makes the referral ``scheduled``."""
    r = _referral(session, referral_id, lock=True)
    _require_side(principal, r, "sender")
    missing = [f for f, ok in (("to_organization_id", r.to_organization_id), ("reason", (r.reason or "").strip()),
                               ("criteria_codes", r.criteria_codes)) if not ok]
    if missing:
        raise Unprocessable("转诊单不完整：请填写接收机构、转诊理由并选择转诊标准 / the referral is incomplete: "
                            f"fill in {', '.join(missing)}", expression=missing)
    if r.status == Status.draft.value and slot_id:
        _book(session, principal, r, slot_id, exam_code)
    now = clock.utcnow()
    cfg = settings(session)
    sla = rules.sla_hours(cfg, urgent=r.urgent)
    r.due_at = now + dt.timedelta(hours=sla)
    r.escalate_at = now + dt.timedelta(hours=rules.escalate_hours(cfg, urgent=r.urgent))
    return _transition(session, principal, r, Action.submit, now)


def accept(session: Session, principal: Principal, referral_id: str, *, note: str | None = None) -> Referral:
    """The receiving side accepts: it may now read the patient's shared record for ``access_days`` (A5),
    and a downward referral creates the branch's follow-up (R2.5)."""
    r = _referral(session, referral_id, lock=True)
    _require_side(principal, r, "receiver")
    now = clock.utcnow()
    _transition(session, principal, r, Action.accept, now)
    user = _user_of(session, principal)
    r.receiver_user_id, r.receiver_name = (user.id if user else None), principal.name[:64]
    if note:
        r.note = ((r.note + "\n") if r.note else "") + note[:500]
    days = int(settings(session).get("access_days", 30))
    rel = access.add_care_relationship(session, r.person_id, r.to_organization_id, "referral",
                                       f"ServiceRequest/{r.id}", days=days)
    r.access_until = rel.ends_at
    if r.direction == "down":
        _add_followup(session, r, r.to_organization_id, now)
    if r.appointment_id:
        _transition(session, principal, r, Action.schedule, now, appointment=r.appointment_id)
    session.flush()
    return r


def reject(session: Session, principal: Principal, referral_id: str, *, reason: str) -> Referral:
    text = (reason or "").strip()
    if len(text) < 2:
        raise BadRequest("请填写拒绝理由 / give the reason for rejecting", expression=["reason"])
    r = _referral(session, referral_id, lock=True)
    _require_side(principal, r, "receiver")
    r.reject_reason = text[:500]
    _transition(session, principal, r, Action.reject, clock.utcnow(), reason=text[:500])
    _release_appointment(session, principal, r, "referral-rejected")
    return r


def cancel(session: Session, principal: Principal, referral_id: str, *, reason: str = "") -> Referral:
    r = _referral(session, referral_id, lock=True)
    _require_side(principal, r, "sender")
    r.cancel_reason = (reason or "").strip()[:500] or None
    _transition(session, principal, r, Action.cancel, clock.utcnow(), reason=r.cancel_reason)
    _release_appointment(session, principal, r, "referral-cancelled")
    _close_followups(session, r, "cancelled")
    return r


def schedule(session: Session, principal: Principal, referral_id: str, *, slot_id: str | None = None,
             exam_code: str | None = None, appointment_id: str | None = None) -> Referral:
    """Book (or link) the appointment of an accepted referral; on a scheduled one, move it (reschedule)."""
    r = _referral(session, referral_id, lock=True)
    _require_side(principal, r, "receiver", "sender")
    if bool(slot_id) == bool(appointment_id):
        raise BadRequest("请选择号源（slot_id）或已有预约（appointment_id）之一 / give slot_id or appointment_id",
                         expression=["slot_id"])
    action = Action.reschedule if r.status == Status.scheduled.value else Action.schedule
    try:
        next_status(r.status, action)
    except IllegalTransition:
        raise Conflict(f"转诊单状态为 {r.status}，不能预约 / cannot schedule a referral that is {r.status}") from None
    old = r.appointment_id
    if appointment_id:
        appt = session.get(scheduling.Appointment, appointment_id)
        if appt is None or appt.person_id != r.person_id or appt.status not in ("booked", "pending"):
            raise BadRequest("预约不存在或不属于该患者 / the appointment is not an active one of this patient",
                             expression=["appointment_id"])
        r.appointment_id, r.reserved_slot = appt.id, bool(appt.used_reserved)
    else:
        _book(session, principal, r, slot_id, exam_code)
    if old and old != r.appointment_id:
        _release_appointment(session, principal, r, "referral-rescheduled", appointment_id=old)
    return _transition(session, principal, r, action, clock.utcnow(), appointment=r.appointment_id)


def arrive(session: Session, principal: Principal, referral_id: str) -> Referral:
    """The patient arrived at the receiving institution (checks the appointment in, if booked)."""
    r = _referral(session, referral_id, lock=True)
    _require_side(principal, r, "receiver")
    _transition(session, principal, r, Action.arrive, clock.utcnow())
    if r.appointment_id:
        appt = session.get(scheduling.Appointment, r.appointment_id)
        if appt is not None and appt.status == "booked":
            scheduling.check_in(session, principal, appt.id)
    return r


def complete(session: Session, principal: Principal, referral_id: str, *, note: str | None = None) -> Referral:
    """Care at the receiving side is done. An upward referral of a managed chronic patient gets a
    follow-up at the sending branch (R2.5); hooks and the outbox event ``referral.completed`` follow."""
    r = _referral(session, referral_id, lock=True)
    _require_side(principal, r, "receiver")
    now = clock.utcnow()
    if note:
        r.note = ((r.note + "\n") if r.note else "") + note[:500]
    _transition(session, principal, r, Action.complete, now)
    cfg = settings(session)
    if r.direction == "up" and rules.is_chronic(r.diagnoses, cfg):
        _add_followup(session, r, r.from_organization_id, now)
    for hook in COMPLETED_HOOKS:
        hook(session, r)
    return r


ACTIONS: dict[str, Callable[..., Referral]] = {
    "submit": submit, "accept": accept, "reject": reject, "cancel": cancel, "schedule": schedule,
    "reschedule": schedule, "arrive": arrive, "complete": complete,
}


# --- appointments ------------------------------------------------------------------------------------

def _book(session: Session, principal: Principal, r: Referral, slot_id: str | None, exam_code: str | None) -> None:
    slot, first_exam = scheduling.slot_and_first_exam(session, slot_id or "")
    if slot is None:
        raise NotFound("号源不存在 / slot not found", expression=["slot_id"])
    if slot.organization_id != r.to_organization_id:
        raise BadRequest("号源不属于接收机构 / the slot is not at the receiving institution", expression=["slot_id"])
    exam_code = exam_code or first_exam
    record_id = _booking_record(session, principal, r)
    purpose = scheduling.reserved_purpose(session)
    appt = scheduling.book(session, principal, slot_id=slot.id, patient_record_id=record_id,
                           exam_code=exam_code or "", channel="clinic", purpose=purpose)
    r.appointment_id, r.reserved_slot = appt.id, bool(appt.used_reserved)
    session.flush()


def _booking_record(session: Session, principal: Principal, r: Referral) -> str:
    """The patient record to book with: the acting institution's own record of the resident if it has
    one, else the sender's record (the receiver may act on it once it has accepted — A5)."""
    rows = session.scalars(select(PatientRecord).where(
        PatientRecord.person_id == r.person_id, PatientRecord.deleted_at.is_(None))
        .order_by(PatientRecord.created_at.desc())).all()
    for rec in rows:
        if rec.organization_id == principal.organization_id:
            return rec.id
    if r.patient_record_id:
        return r.patient_record_id
    if rows:
        return rows[0].id
    raise Unprocessable("该居民没有可用于预约的患者记录 / the resident has no patient record to book with")


def _release_appointment(session: Session, principal: Principal | None, r: Referral, reason: str, *,
                         appointment_id: str | None = None) -> None:
    scheduling.release_appointment(session, principal, appointment_id or r.appointment_id, reason)


# --- follow-ups (R2.5) -------------------------------------------------------------------------------

def _add_followup(session: Session, r: Referral, organization_id: str | None, now: dt.datetime) -> ReferralFollowUp | None:
    if organization_id is None:
        return None
    days = int(settings(session).get("followup_days", 14))
    f = ReferralFollowUp(referral_id=r.id, person_id=r.person_id, organization_id=organization_id, kind="visit",
                         due_on=rules.followup_due(now, days), status="open")
    session.add(f)
    session.flush()
    record_event(session, "referral.followup-created", "Task", f.id,
                 {"referral_id": r.id, "organization_id": organization_id, "due_on": f.due_on.isoformat()},
                 person_id=r.person_id)
    return f


def _close_followups(session: Session, r: Referral, status: str) -> None:
    for f in session.scalars(select(ReferralFollowUp).where(ReferralFollowUp.referral_id == r.id,
                                                            ReferralFollowUp.status == "open")):
        f.status = status


def complete_followup(session: Session, principal: Principal, followup_id: str, note: str | None = None) -> ReferralFollowUp:
    f = session.get(ReferralFollowUp, followup_id, with_for_update=True)
    if f is None or not (principal.is_operator or principal.organization_id == f.organization_id):
        raise NotFound("随访任务不存在 / follow-up not found")
    if f.status != "open":
        raise Conflict(f"随访任务状态为 {f.status} / the follow-up is {f.status}")
    f.status, f.done_at, f.done_by, f.note = "done", clock.utcnow(), principal.name[:64], (note or None)
    session.flush()
    audit.record(session, principal, "update", person_ids=[f.person_id], what=[f"Task/{f.id}"],
                 detail={"status": "done"})
    record_event(session, "referral.followup-done", "Task", f.id, {"referral_id": f.referral_id},
                 person_id=f.person_id)
    return f


# --- SLA: escalation then expiry ---------------------------------------------------------------------

def run_sla(session: Session, now: dt.datetime | None = None) -> dict[str, int]:
    """Escalate submitted referrals past ``escalate_at`` to the receiving department head, then expire
    those past ``due_at`` (issue 6 §1). Idempotent; run every few minutes (``onetrip referral expire``)."""
    now = now or clock.utcnow()
    escalated = expired = 0
    rows = session.scalars(
        select(Referral).where(Referral.status == Status.submitted.value, Referral.escalate_at <= now,
                               Referral.escalated_at.is_(None)).with_for_update()
    ).all()
    for r in rows:
        r.escalated_at = now
        _record(session, None, r, "referral.escalated", now, to="department_head")
        escalated += 1
    rows = session.scalars(
        select(Referral).where(Referral.status == Status.submitted.value, Referral.due_at <= now).with_for_update()
    ).all()
    for r in rows:
        _transition(session, None, r, Action.expire, now, due_at=r.due_at.isoformat() if r.due_at else None)
        _release_appointment(session, None, r, "referral-expired")
        expired += 1
    session.flush()
    return {"escalated": escalated, "expired": expired}
