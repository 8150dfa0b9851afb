"""REST endpoints under /api/referrals — thin: check the scope, call one service function, shape.

Scopes: drafting is ``ServiceRequest.c``, reading ``ServiceRequest.r``/``.s``, every workflow action
``Task.u`` (the referral's Task changes state)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query, Request

from onetrip.access import service as access
from onetrip.api.deps import DB, SERVICE_DATE, CurrentPrincipal, require_scope
from onetrip.audit import service as audit
from onetrip.kit import clock
from onetrip.kit.clock import local_date
from onetrip.kit.errors import BadRequest, NotFound
from onetrip.kit.fhir import MAX_OFFSET
from onetrip.kit.masking import mask_id_number
from onetrip.kit.principal import Principal
from onetrip.persons.models import PatientRecord
from onetrip.referral import figures, package, rules, service
from onetrip.referral import repository as repo
from onetrip.referral.models import Referral
from onetrip.referral.schemas import (
    ActionIn,
    FollowUpOut,
    ReferralChange,
    ReferralIn,
    ReferralOut,
    Worklist,
    WorklistRow,
    iso,
)
from onetrip.referral.states import Status, allowed_actions

router = APIRouter(prefix="/api/referrals", tags=["referral"])


def referral_out(r: Referral, principal: Principal | None = None) -> ReferralOut:
    now = clock.utcnow()
    side = service.side_of(principal, r) if principal else None
    acts = [a.value for a in allowed_actions(r.status) if a.value != "expire"]
    if principal is not None and not principal.is_operator:
        from onetrip.referral.states import RECEIVER_ACTIONS, SENDER_ACTIONS, SENDER_MAY_ALSO

        mine = SENDER_ACTIONS | SENDER_MAY_ALSO if side == "sender" else RECEIVER_ACTIONS if side == "receiver" else set()
        acts = [a for a in acts if a in {m.value for m in mine}]
    return ReferralOut(
        id=r.id, status=r.status, direction=r.direction, urgent=r.urgent, source=r.source, person_id=r.person_id,
        patient_record_id=r.patient_record_id, from_organization_id=r.from_organization_id,
        to_organization_id=r.to_organization_id, to_department_id=r.to_department_id,
        requester_name=r.requester_name, receiver_name=r.receiver_name, reason=r.reason,
        criteria_codes=list(r.criteria_codes or []), diagnoses=list(r.diagnoses or []),
        medications=list(r.medications or []), history_summary=r.history_summary,
        treatment_summary=r.treatment_summary, discharge_summary=r.discharge_summary, rehab_plan=r.rehab_plan,
        note=r.note, reject_reason=r.reject_reason, cancel_reason=r.cancel_reason, appointment_id=r.appointment_id,
        reserved_slot=r.reserved_slot, created_at=iso(r.created_at) or "", submitted_at=iso(r.submitted_at),
        due_at=iso(r.due_at), escalate_at=iso(r.escalate_at), escalated_at=iso(r.escalated_at),
        accepted_at=iso(r.accepted_at), rejected_at=iso(r.rejected_at), scheduled_at=iso(r.scheduled_at),
        arrived_at=iso(r.arrived_at), completed_at=iso(r.completed_at), cancelled_at=iso(r.cancelled_at),
        expired_at=iso(r.expired_at), access_until=iso(r.access_until),
        sla=rules.sla_state(now, r.due_at, r.escalate_at) if r.status == Status.submitted.value else None,
        allowed_actions=acts, ui_url=f"/ui/referrals/{r.id}",
    )


def person_of(session, body_person: str | None, record_id: str | None) -> str:
    if record_id:
        rec = session.get(PatientRecord, record_id)
        if rec is None or rec.deleted_at is not None:
            raise NotFound("患者记录不存在 / patient record not found", expression=["patient_record_id"])
        return rec.person_id
    if not body_person:
        raise BadRequest("请指定患者 / give person_id or patient_record_id", expression=["person_id"])
    return body_person


@router.get("/criteria")
def list_criteria(session: DB, principal: CurrentPrincipal, direction: str = "up") -> list[dict]:
    """The referral criteria pick-list: R2.1 (up) or R2.2 (down)."""
    if direction not in service.DIRECTIONS:
        raise BadRequest("direction 须为 up 或 down / direction must be up or down", expression=["direction"])
    return service.criteria(session, direction)


@router.get("/icd10")
def list_icd10(principal: CurrentPrincipal, q: str = "") -> list[dict]:
    """The seeded ICD-10 国家临床版 codes, filtered by code prefix or name."""
    term = q.strip().lower()
    return [c for c in service.icd10_catalogue()["codes"]
            if not term or c["code"].lower().startswith(term) or term in c["zh"] or term in c["en"].lower()][:50]


@router.post("", response_model=ReferralOut, status_code=201)
def create(body: ReferralIn, session: DB, principal: CurrentPrincipal) -> ReferralOut:
    """Draft a referral from your institution (``submit: true`` sends it at once, optionally booking a
    reserved slot at the receiving institution)."""
    require_scope(principal, "ServiceRequest", "c")
    person_id = person_of(session, body.person_id, body.patient_record_id)
    r = service.draft_referral(
        session, principal, person_id=person_id, direction=body.direction, to_organization_id=body.to_organization_id,
        reason=body.reason, criteria_codes=body.criteria_codes, source="api", urgent=body.urgent,
        department_id=body.department_id, diagnoses=[d.model_dump() for d in body.diagnoses],
        history_summary=body.history_summary, treatment_summary=body.treatment_summary,
        medications=[m.model_dump(exclude_none=True) for m in body.medications],
        discharge_summary=body.discharge_summary, rehab_plan=body.rehab_plan, note=body.note)
    if body.submit:
        require_scope(principal, "Task", "u")
        r = service.submit(session, principal, r.id, slot_id=body.slot_id, exam_code=body.exam_code)
    return referral_out(r, principal)


@router.get("", response_model=Worklist)
def worklist(session: DB, principal: CurrentPrincipal, box: str = "incoming",
             status: Annotated[list[str] | None, Query()] = None, direction: str | None = None,
             urgent: bool | None = None, overdue: bool = False, department: str | None = None, q: str | None = None,
             organization: str | None = None, limit: Annotated[int, Query(ge=1, le=200)] = 50,
             offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0) -> Worklist:
    """The worklist: ``incoming`` (sent to your institution) or ``outgoing`` (sent by it), with filters;
    submitted referrals first, by deadline. Identifiers are masked; each listed patient is audited."""
    require_scope(principal, "ServiceRequest", "s")
    if box not in repo.BOXES:
        raise BadRequest("box 须为 incoming 或 outgoing / box must be incoming or outgoing", expression=["box"])
    bad = [s for s in status or [] if s not in {x.value for x in Status}]
    if bad:
        raise BadRequest(f"未知状态 / unknown status {bad}", expression=["status"])
    org = organization if principal.is_operator else principal.organization_id
    now = clock.utcnow()
    rows, total = repo.worklist(session, org, repo.WorklistFilter(
        box=box, status=status, direction=direction, urgent=urgent, overdue=overdue, department_id=department, q=q),
        now, limit=limit, offset=offset)
    if rows:
        audit.record(session, principal, "search", person_ids=[p.id for _, p in rows],
                     what=[f"ServiceRequest/{r.id}" for r, _ in rows], query=f"referrals box={box}")
    return Worklist(total=total, items=[WorklistRow(
        id=r.id, status=r.status, direction=r.direction, urgent=r.urgent, patient_name=p.name,
        id_number_masked=mask_id_number(p.id_number), from_organization_id=r.from_organization_id,
        to_organization_id=r.to_organization_id, submitted_at=iso(r.submitted_at), due_at=iso(r.due_at),
        sla=rules.sla_state(now, r.due_at, r.escalate_at) if r.status == "submitted" else "ok",
        minutes_left=int((r.due_at - now).total_seconds() // 60) if r.due_at and r.status == "submitted" else None,
    ) for r, p in rows])


@router.get("/badges")
def badges(session: DB, principal: CurrentPrincipal) -> dict[str, int]:
    """Counts for the navigation badge: new, overdue, follow-ups due, returned (rejected/expired)."""
    now = clock.utcnow()
    return repo.badges(session, principal.organization_id, now, local_date(now))


@router.get("/figures")
def get_figures(session: DB, principal: CurrentPrincipal, start: Annotated[dt.date, SERVICE_DATE],
                end: Annotated[dt.date, SERVICE_DATE], organization: str | None = None) -> dict:
    """Upward / downward counts with year-on-year change (overall and per month), time to acceptance,
    acceptance / rejection / completion rates and reserved-slot use."""
    return figures.compute(session, principal, organization_id=organization, start=start, end=end)


@router.get("/followups", response_model=list[FollowUpOut])
def list_followups(session: DB, principal: CurrentPrincipal, status: str = "open") -> list[FollowUpOut]:
    """Your institution's follow-ups after referrals (R2.5)."""
    require_scope(principal, "Task", "r")
    rows = repo.followups(session, None if principal.is_operator else principal.organization_id, status=status)
    if rows:
        audit.record(session, principal, "search", person_ids=[p.id for _, p in rows],
                     what=[f"Task/{f.id}" for f, _ in rows], query="referral followups")
    return [FollowUpOut(id=f.id, referral_id=f.referral_id, person_id=f.person_id, patient_name=p.name,
                        organization_id=f.organization_id, kind=f.kind, due_on=f.due_on.isoformat(), status=f.status)
            for f, p in rows]


@router.post("/followups/{followup_id}/done", response_model=FollowUpOut)
def followup_done(followup_id: str, session: DB, principal: CurrentPrincipal, body: ActionIn | None = None):
    require_scope(principal, "Task", "u")
    f = service.complete_followup(session, principal, followup_id, (body.note if body else None))
    from onetrip.persons.models import Person

    p = session.get(Person, f.person_id)
    return FollowUpOut(id=f.id, referral_id=f.referral_id, person_id=f.person_id, patient_name=p.name if p else "",
                       organization_id=f.organization_id, kind=f.kind, due_on=f.due_on.isoformat(), status=f.status)


@router.get("/persons/{person_id}", response_model=list[ReferralOut])
def person_history(person_id: str, session: DB, principal: CurrentPrincipal) -> list[ReferralOut]:
    """A resident's referral history (access policy; audited)."""
    require_scope(principal, "ServiceRequest", "s")
    access.require_read(session, principal, person_id, f"Person/{person_id}/referrals", subtype="search-type")
    return [referral_out(r, principal) for r in repo.of_person(session, person_id, principal.organization_id)]


@router.get("/{referral_id}", response_model=ReferralOut)
def read(referral_id: str, session: DB, principal: CurrentPrincipal) -> ReferralOut:
    require_scope(principal, "ServiceRequest", "r")
    return referral_out(service.get_referral(session, principal, referral_id), principal)


@router.patch("/{referral_id}", response_model=ReferralOut)
def change(referral_id: str, body: ReferralChange, session: DB, principal: CurrentPrincipal) -> ReferralOut:
    """Edit a draft (the sending institution)."""
    require_scope(principal, "Task", "u")
    changes = body.model_dump(exclude_unset=True)
    r = service.update_draft(session, principal, referral_id, changes)
    return referral_out(r, principal)


@router.get("/{referral_id}/package")
def get_package(referral_id: str, request: Request, session: DB, principal: CurrentPrincipal) -> dict:
    """The referral package as a FHIR collection Bundle (shared results once the receiver has accepted)."""
    require_scope(principal, "ServiceRequest", "r")
    r = service.get_referral(session, principal, referral_id)
    pkg = package.assemble(session, principal, r)
    return package.to_bundle(session, pkg, str(request.base_url).rstrip("/"))


@router.post("/{referral_id}/{action}", response_model=ReferralOut)
def act(referral_id: str, action: str, session: DB, principal: CurrentPrincipal,
        body: ActionIn | None = None) -> ReferralOut:
    """A workflow action: submit, accept, reject (reason), schedule / reschedule (slot_id or
    appointment_id), arrive, complete, cancel. 409 when the state does not allow it."""
    require_scope(principal, "Task", "u")
    body = body or ActionIn()
    if action not in service.ACTIONS:
        raise NotFound(f"未知操作 / unknown action {action!r}; one of {sorted(service.ACTIONS)}")
    kw: dict = {}
    if action == "submit":
        kw = {"slot_id": body.slot_id, "exam_code": body.exam_code}
    elif action == "reject" or action == "cancel":
        kw = {"reason": body.reason or ""}
    elif action in ("schedule", "reschedule"):
        kw = {"slot_id": body.slot_id, "exam_code": body.exam_code, "appointment_id": body.appointment_id}
    elif action in ("accept", "complete"):
        kw = {"note": body.note}
    r = service.ACTIONS[action](session, principal, referral_id, **kw)
    return referral_out(r, principal)
