"""Web pages for referrals under /ui/referrals: the worklist (incoming for 基层科, outgoing, follow-ups)
with filters and SLA timers, the one-page sending screen pre-filled from the patient (with a reserved
slot), the referral detail with its package, the printable letter, a patient's referral history, and the
nav badge (HTMX fragment). Same services as the API."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from onetrip.access import service as access
from onetrip.api.deps import DB, CurrentPrincipal, require_scope
from onetrip.api.web import check_origin, html_errors, locale_of, page
from onetrip.audit import service as audit
from onetrip.kit import clock
from onetrip.kit.clock import local_date, local_hhmm
from onetrip.kit.errors import BadRequest, NotFound
from onetrip.persons.models import PatientRecord
from onetrip.referral import package, rules, service
from onetrip.referral import repository as repo
from onetrip.referral.endpoints import referral_out
from onetrip.referral.models import Referral
from onetrip.referral.states import Status
from onetrip.registry.models import Department, Organization
from onetrip.scheduling import interface as scheduling

router = APIRouter(prefix="/ui/referrals", include_in_schema=False)
PAGE_SIZE = 30
STATUS_ORDER = [s.value for s in Status]


def _orgs(session, ids) -> dict[str, Organization]:
    ids = {i for i in ids if i}
    return {o.id: o for o in session.scalars(select(Organization).where(Organization.id.in_(ids)))} if ids else {}


def _exam_names(session, locale: str) -> dict[str, str]:
    return {c: (t.name_en if locale == "en" else t.name) for c, t in scheduling.exam_types(session).items()}


def _minutes_left(r: Referral, now: dt.datetime) -> int | None:
    if r.status != Status.submitted.value or r.due_at is None:
        return None
    return int((r.due_at - now).total_seconds() // 60)


@router.get("")
@html_errors
def worklist(request: Request, session: DB, principal: CurrentPrincipal, box: str = "incoming",
             status: str = "", direction: str = "", urgent: str = "", overdue: str = "", q: str = "",
             department: str = "", page_no: int = 1) -> Response:
    """The receiving worklist (基层科) and the outgoing list, with filters and SLA timers."""
    require_scope(principal, "ServiceRequest", "s")
    now = clock.utcnow()
    org = None if principal.is_operator else principal.organization_id
    if box == "followups":
        rows = repo.followups(session, org)
        if rows:
            audit.record(session, principal, "search", person_ids=[p.id for _, p in rows],
                         what=[f"Task/{f.id}" for f, _ in rows], query="referral followups")
        return page(request, "referral/worklist.html", session=session, principal=principal, box=box, rows=[],
                    followups=rows, total=len(rows), orgs={}, f={}, now=now, today=local_date(now), pages=1, depts=[],
                    page_no=1, statuses=STATUS_ORDER, minutes_left=_minutes_left, sla_state=rules.sla_state,
                    badges=repo.badges(session, principal.organization_id, now, local_date(now)))
    if box not in repo.BOXES:
        raise BadRequest("box 须为 incoming、outgoing 或 followups / box must be incoming, outgoing or followups")
    statuses = [s for s in status.split(",") if s in STATUS_ORDER] or None
    filt = repo.WorklistFilter(box=box, status=statuses, direction=direction or None,
                               urgent=True if urgent == "1" else None, overdue=overdue == "1", q=q.strip()[:32] or None,
                               department_id=department or None)
    page_no = max(1, page_no)
    rows, total = repo.worklist(session, org, filt, now, limit=PAGE_SIZE, offset=(page_no - 1) * PAGE_SIZE)
    if rows:
        audit.record(session, principal, "search", person_ids=[p.id for _, p in rows],
                     what=[f"ServiceRequest/{r.id}" for r, _ in rows], query=f"referrals box={box}")
    orgs = _orgs(session, {r.from_organization_id for r, _ in rows} | {r.to_organization_id for r, _ in rows})
    depts = list(session.scalars(select(Department).where(Department.organization_id == org).order_by(
        Department.code))) if org and box == "incoming" else []
    return page(request, "referral/worklist.html", session=session, principal=principal, box=box, rows=rows,
                followups=[], total=total, orgs=orgs, now=now, today=local_date(now), depts=depts,
                f={"status": status, "direction": direction, "urgent": urgent, "overdue": overdue, "q": q,
                   "department": department},
                pages=max(1, -(-total // PAGE_SIZE)), page_no=page_no, statuses=STATUS_ORDER,
                minutes_left=_minutes_left, sla_state=rules.sla_state,
                badges=repo.badges(session, principal.organization_id, now, local_date(now)))


@router.get("/badge")
def badge(request: Request, session: DB, principal: CurrentPrincipal) -> Response:
    """The nav badge (HTMX): new and overdue incoming referrals, follow-ups due."""
    now = clock.utcnow()
    counts = repo.badges(session, principal.organization_id, now, local_date(now))
    return page(request, "referral/_badge.html", session=session, principal=principal, counts=counts)


# --- sending -------------------------------------------------------------------------------------------

def _reserved_slots(session, org_id: str | None, now: dt.datetime, limit: int = 40) -> list[dict]:
    """Free places held for referrals (号源下沉, R2.4) at the receiving institution, soonest first."""
    if not org_id:
        return []
    types = scheduling.exam_types(session)
    out = []
    for place in scheduling.reserved_places(session, org_id, now, days=14, limit=limit):
        slot, res = place.slot, place.resource
        for code in (res.exam_codes or [])[:3]:
            t = types.get(code)
            out.append({"value": f"{slot.id}|{code}", "date": local_date(slot.start).isoformat(),
                        "time": local_hhmm(slot.start), "resource": res.name, "exam": t.name if t else code,
                        "exam_en": t.name_en if t else code})
    return out


def _targets(session, sender: Organization, direction: str) -> list[Organization]:
    q = select(Organization).where(Organization.active.is_(True))
    if sender.community_id:
        q = q.where(Organization.community_id == sender.community_id)
    return [o for o in session.scalars(q.order_by(Organization.code))
            if rules.direction_problem(direction, sender.org_type, o.org_type) is None]


@router.get("/new")
@html_errors
def new(request: Request, session: DB, principal: CurrentPrincipal, record_id: str = "", direction: str = "up",
        to: str = "", q: str = "") -> Response:
    """One page, pre-filled from the patient: who, where to, why (criteria pick-list), diagnoses, history,
    treatment, medication (downward: discharge summary, rehabilitation plan), and a reserved slot."""
    require_scope(principal, "ServiceRequest", "c")
    if direction not in service.DIRECTIONS:
        direction = "up"
    sender = session.get(Organization, principal.organization_id) if principal.organization_id else None
    if sender is None:
        raise BadRequest("只有机构用户可以发起转诊 / only a user of an institution can refer")
    if not record_id:
        found = []
        term = q.strip()[:32]
        if term:
            found = list(session.scalars(select(PatientRecord).where(
                PatientRecord.organization_id == sender.id, PatientRecord.deleted_at.is_(None),
                (PatientRecord.name.startswith(term)) | (PatientRecord.mrn == term)
                | (PatientRecord.id_number == term.upper())).order_by(PatientRecord.name).limit(20)))
            if found:
                audit.record(session, principal, "search", person_ids=[r.person_id for r in found],
                             what=[f"Patient/{r.id}" for r in found], query="referral patient search")
        return page(request, "referral/pick_patient.html", session=session, principal=principal, q=term,
                    found=found, direction=direction)
    rec = session.get(PatientRecord, record_id)
    if rec is None or rec.deleted_at is not None:
        raise NotFound("患者记录不存在 / patient record not found")
    access.require_read(session, principal, rec.person_id, f"Patient/{rec.id}")
    targets = _targets(session, sender, direction)
    default = None
    if to:
        default = next((o for o in targets if o.id == to), None)
    if default is None:
        default = (service._lead_hospital_for(session, sender) if direction == "up"  # noqa: SLF001
                   else service._home_branch_for(session, rec.person_id, sender))  # noqa: SLF001
    depts = list(session.scalars(select(Department).where(Department.organization_id == default.id)
                                 .order_by(Department.code))) if default else []
    default_dept = service._receiving_department(session, default, direction) if default else None  # noqa: SLF001
    now = clock.utcnow()
    history = repo.of_person(session, rec.person_id, principal.organization_id, limit=10)
    return page(request, "referral/new.html", session=session, principal=principal, rec=rec, direction=direction,
                targets=targets, target=default, depts=depts, default_dept=default_dept,
                criteria=service.criteria(session, direction), icd=service.icd10_catalogue()["codes"],
                slots=_reserved_slots(session, default.id if default else None, now) if direction == "up" else [],
                history=history, orgs=_orgs(session, {r.to_organization_id for r in history}
                                            | {r.from_organization_id for r in history}))


def _medications(text: str) -> list[dict]:
    out = []
    for line in (text or "").splitlines():
        line = line.strip()
        if not line:
            continue
        name, _, dose = line.partition(" ")
        out.append({"name": name, "dose": dose.strip()})
    return out


@router.post("/new")
@html_errors
def create(request: Request, session: DB, principal: CurrentPrincipal,
           record_id: Annotated[str, Form()], direction: Annotated[str, Form()],
           to_organization_id: Annotated[str, Form()] = "", department_id: Annotated[str, Form()] = "",
           reason: Annotated[str, Form()] = "", criteria: Annotated[list[str] | None, Form()] = None,
           diagnoses: Annotated[list[str] | None, Form()] = None, history_summary: Annotated[str, Form()] = "",
           treatment_summary: Annotated[str, Form()] = "", medications: Annotated[str, Form()] = "",
           discharge_summary: Annotated[str, Form()] = "", rehab_plan: Annotated[str, Form()] = "",
           urgent: Annotated[str, Form()] = "", slot: Annotated[str, Form()] = "",
           send: Annotated[str, Form()] = "") -> Response:
    check_origin(request)
    require_scope(principal, "ServiceRequest", "c")
    rec = session.get(PatientRecord, record_id)
    if rec is None:
        raise NotFound("患者记录不存在 / patient record not found")
    r = service.draft_referral(
        session, principal, person_id=rec.person_id, direction=direction, to_organization_id=to_organization_id or None,
        reason=reason, criteria_codes=criteria or [], source="web", urgent=urgent == "1",
        department_id=department_id or None, diagnoses=[{"code": c} for c in diagnoses or [] if c],
        history_summary=history_summary or None, treatment_summary=treatment_summary or None,
        medications=_medications(medications), discharge_summary=discharge_summary or None,
        rehab_plan=rehab_plan or None)
    if send:
        require_scope(principal, "Task", "u")
        slot_id, _, exam = slot.partition("|")
        service.submit(session, principal, r.id, slot_id=slot_id or None, exam_code=exam or None)
    return RedirectResponse(f"/ui/referrals/{r.id}", status_code=303)


# --- one referral ----------------------------------------------------------------------------------------

@router.get("/{referral_id}")
@html_errors
def detail(request: Request, referral_id: str, session: DB, principal: CurrentPrincipal) -> Response:
    """The referral with its package: patient, criteria, diagnoses, history, treatment, medication,
    (downward) discharge summary and rehabilitation plan, recent shared results, the appointment."""
    require_scope(principal, "ServiceRequest", "r")
    r = service.get_referral(session, principal, referral_id)
    pkg = package.assemble(session, principal, r)
    now = clock.utcnow()
    out = referral_out(r, principal)
    slots = (_reserved_slots(session, r.to_organization_id, now)
             if {"schedule", "reschedule"} & set(out.allowed_actions) else [])
    steps = [(s, getattr(r, f"{s}_at")) for s in ("submitted", "accepted", "rejected", "scheduled", "arrived",
                                                 "completed", "cancelled", "expired") if getattr(r, f"{s}_at")]
    return page(request, "referral/detail.html", session=session, principal=principal, r=r, pkg=pkg, out=out,
                steps=steps, slots=slots, now=now, minutes_left=_minutes_left(r, now),
                sla=rules.sla_state(now, r.due_at, r.escalate_at) if r.status == "submitted" else None,
                side=service.side_of(principal, r), exam_names=_exam_names(session, locale_of(request)))


@router.get("/{referral_id}/letter")
@html_errors
def letter(request: Request, referral_id: str, session: DB, principal: CurrentPrincipal) -> Response:
    """The printable referral letter (转诊单): print it, or print to PDF from the browser."""
    require_scope(principal, "ServiceRequest", "r")
    r = service.get_referral(session, principal, referral_id)
    pkg = package.assemble(session, principal, r)
    masked = list(service.settings(session).get("letter_masked_fields") or [])  # type: ignore[arg-type]
    audit.record(session, principal, "export", person_ids=[r.person_id], what=[f"ServiceRequest/{r.id}/letter"])
    return page(request, "referral/letter.html", session=session, principal=principal, r=r, pkg=pkg,
                patient=package.masked_patient(pkg, masked), printed=clock.utcnow(),
                exam_names=_exam_names(session, locale_of(request)))


@router.post("/{referral_id}/{action}")
@html_errors
def act(request: Request, referral_id: str, action: str, session: DB, principal: CurrentPrincipal,
        reason: Annotated[str, Form()] = "", note: Annotated[str, Form()] = "",
        slot: Annotated[str, Form()] = "") -> Response:
    check_origin(request)
    require_scope(principal, "Task", "u")
    if action not in service.ACTIONS:
        raise NotFound("未知操作 / unknown action")
    kw: dict = {}
    if action in ("reject", "cancel"):
        kw = {"reason": reason}
    elif action in ("accept", "complete"):
        kw = {"note": note or None}
    elif action in ("schedule", "reschedule", "submit"):
        slot_id, _, exam = slot.partition("|")
        if action == "submit":
            kw = {"slot_id": slot_id or None, "exam_code": exam or None}
        else:
            kw = {"slot_id": slot_id or None, "exam_code": exam or None}
    service.ACTIONS[action](session, principal, referral_id, **kw)
    return RedirectResponse(f"/ui/referrals/{referral_id}", status_code=303)


@router.post("/followups/{followup_id}/done")
@html_errors
def followup_done(request: Request, followup_id: str, session: DB, principal: CurrentPrincipal,
                  note: Annotated[str, Form()] = "") -> Response:
    check_origin(request)
    require_scope(principal, "Task", "u")
    service.complete_followup(session, principal, followup_id, note or None)
    return RedirectResponse("/ui/referrals?box=followups", status_code=303)


@router.get("/persons/{person_id}")
@html_errors
def person_history(request: Request, person_id: str, session: DB, principal: CurrentPrincipal) -> HTMLResponse:
    """A resident's referral history (access policy; audited)."""
    require_scope(principal, "ServiceRequest", "s")
    access.require_read(session, principal, person_id, f"Person/{person_id}/referrals", subtype="search-type")
    from onetrip.persons.models import Person

    person = session.get(Person, person_id)
    rows = repo.of_person(session, person_id, None if principal.is_operator else principal.organization_id)
    return page(request, "referral/history.html", session=session, principal=principal, person=person, rows=rows,
                orgs=_orgs(session, {r.to_organization_id for r in rows} | {r.from_organization_id for r in rows}))
