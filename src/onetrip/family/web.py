"""Web pages for family-doctor teams under /ui/family: the team dashboard (counts, alerts, check-in by ID
card), the worklist (due / overdue / lost; print view and CSV/xlsx export), and the patient's chronic-care
page (pre-visit summary, follow-up form with its classification and any referral draft, long-prescription
form). Same services as the API; English ``_()`` strings, Chinese from locale/zh_CN/.../family.po."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import or_, select

from onetrip.api.deps import DB, CurrentPrincipal, require_scope
from onetrip.api.web import check_origin, html_errors, page
from onetrip.family import common, prescriptions, rules
from onetrip.family import repository as repo
from onetrip.family.figures.service import compute_figures
from onetrip.family.followups import previsit
from onetrip.family.followups import service as followups
from onetrip.family.models import Followup, Team
from onetrip.family.teams import get_team
from onetrip.family.worklist import service as worklists
from onetrip.kit.errors import BadRequest
from onetrip.kit.masking import mask_id_number
from onetrip.kit.principal import Principal
from onetrip.registry.models import Practitioner, User

router = APIRouter(prefix="/ui/family", include_in_schema=False)

SYMPTOMS = ("altered_consciousness", "severe_headache", "severe_dizziness", "vomiting", "blurred_vision",
            "chest_tightness", "cannot_lie_flat")


def _teams(session, principal: Principal) -> list[Team]:
    return repo.teams(session, None if principal.is_operator else principal.organization_id)


def _my_team(session, principal: Principal, teams: list[Team], team_id: str | None) -> Team | None:
    if team_id:
        return next((t for t in teams if t.id == team_id), None) or get_team(session, team_id)
    user = session.get(User, principal.id) if principal.kind == "user" else None
    if user is not None and user.practitioner_id:
        pid = user.practitioner_id
        mine = session.scalars(select(Team).where(Team.active.is_(True), or_(
            Team.doctor_id == pid, Team.nurse_id == pid, Team.public_health_id == pid,
            Team.specialist_id == pid))).first()
        if mine is not None:
            return mine
    return teams[0] if teams else None


def _f(value: str | None) -> float | None:
    if value is None or value.strip() == "":
        return None
    try:
        return float(value)
    except ValueError:
        raise BadRequest(f"不是数字 / not a number: {value!r}") from None


@router.get("")
@router.get("/")
@html_errors
def dashboard(request: Request, session: DB, principal: CurrentPrincipal, team: str | None = None) -> Response:
    """The team dashboard: managed, due, overdue, lost and controlled counts, open alerts, this year's
    figures for the team, and the check-in box (swipe / type the ID number)."""
    require_scope(principal, "CarePlan", "s")
    teams = _teams(session, principal)
    current = _my_team(session, principal, teams, team)
    data = alerts = figures = None
    if current is not None:
        data = worklists.build(session, principal, team_id=current.id, limit=10)
        alerts = worklists.alert_list(session, principal, team_id=current.id)[:20]
        figs = compute_figures(session, principal, level="team", organization_id=current.organization_id)
        figures = {p: v["by"].get(current.id) for p, v in figs["programmes"].items()}
    members = {}
    if current is not None:
        ids = [current.doctor_id, current.nurse_id, current.public_health_id, current.specialist_id]
        members = {p.id: p for p in session.scalars(select(Practitioner).where(Practitioner.id.in_([i for i in ids if i])))}
    return page(request, "family/dashboard.html", session=session, principal=principal, teams=teams, team=current,
                data=data, alerts=alerts or [], figures=figures or {}, members=members)


@router.get("/worklist")
@html_errors
def worklist(request: Request, session: DB, principal: CurrentPrincipal, team: str | None = None,
             only: str | None = "overdue", page_no: int = Query(default=1, alias="page", ge=1, le=100_000),
             print_view: bool = Query(default=False, alias="print")) -> Response:
    """Due / overdue / lost-to-follow-up patients of a team, most overdue first; a print view."""
    require_scope(principal, "CarePlan", "s")
    teams = _teams(session, principal)
    current = _my_team(session, principal, teams, team)
    only = only or None
    size = 500 if print_view else 50
    data = worklists.build(session, principal, team_id=current.id, only=only, limit=size,
                           offset=(max(page_no, 1) - 1) * size, masked=False) if current else None
    return page(request, "family/worklist.html", session=session, principal=principal, teams=teams, team=current,
                only=only or "", data=data, page_no=max(page_no, 1), print_view=print_view)


@router.post("/checkin")
@html_errors
def check_in(request: Request, session: DB, principal: CurrentPrincipal,
             id_number: Annotated[str, Form()] = "") -> Response:
    """The patient swipes the ID card: open their chronic-care page with the pre-visit summary."""
    check_origin(request)
    require_scope(principal, "CarePlan", "r")
    summary = previsit.check_in(session, principal, id_number=id_number)
    return RedirectResponse(f"/ui/family/patients/{summary['person']['id']}?checked_in=1", status_code=303)


@router.get("/patients/{person_id}")
@html_errors
def patient(request: Request, person_id: str, session: DB, principal: CurrentPrincipal, fu: str | None = None,
            rx: str | None = None, checked_in: bool = False) -> Response:
    """The chronic-care page: the pre-visit summary, the follow-up form per registry, recent follow-ups,
    long prescriptions and the long-prescription form."""
    require_scope(principal, "CarePlan", "r")
    summary = previsit.previsit_summary(session, principal, person_id)
    pid = summary["person"]["id"]
    regs = repo.registries_of(session, pid)
    history = repo.followups(session, person_id=pid, limit=20)
    recorded = session.get(Followup, fu) if fu else None
    rxs = repo.prescriptions_of(session, pid)
    p = common.params(session)
    return page(request, "family/patient.html", session=session, principal=principal, s=summary, regs=regs,
                history=history, recorded=recorded if recorded and recorded.person_id == pid else None, rxs=rxs,
                rx_new=rx, checked_in=checked_in, symptoms=SYMPTOMS, today=common.today(), p=p,
                mask_id=mask_id_number, programmes=rules.PROGRAMMES)


@router.post("/registries/{registry_id}/followups")
@html_errors
def record_followup(request: Request, registry_id: str, session: DB, principal: CurrentPrincipal,
                    visit_date: Annotated[str, Form()] = "", method: Annotated[str, Form()] = "clinic",
                    sbp: Annotated[str, Form()] = "", dbp: Annotated[str, Form()] = "",
                    heart_rate: Annotated[str, Form()] = "", fasting_glucose: Annotated[str, Form()] = "",
                    weight_kg: Annotated[str, Form()] = "", adherence: Annotated[str, Form()] = "",
                    symptom: Annotated[list[str] | None, Form()] = None, adverse_reaction: Annotated[str, Form()] = "",
                    complication: Annotated[str, Form()] = "", medication: Annotated[str, Form()] = "",
                    smoking: Annotated[str, Form()] = "", exercise: Annotated[str, Form()] = "",
                    salt: Annotated[str, Form()] = "", note: Annotated[str, Form()] = "") -> Response:
    """Record a follow-up from the form; back to the patient page showing its classification and any
    referral draft."""
    check_origin(request)
    require_scope(principal, "CarePlan", "u")
    try:
        day = dt.date.fromisoformat(visit_date) if visit_date else None
    except ValueError:
        raise BadRequest("随访日期无效 / visit_date is not a date") from None
    meds = [{"drug": m.strip()} for m in medication.split(",") if m.strip()]
    lifestyle = {k: v for k, v in (("smoking", smoking), ("exercise", exercise), ("salt", salt)) if v}
    fu = followups.record_followup(session, principal, registry_id, visit_date=day, method=method, sbp=_f(sbp),
                                   dbp=_f(dbp), heart_rate=_f(heart_rate), fasting_glucose=_f(fasting_glucose),
                                   weight_kg=_f(weight_kg), symptoms=symptom or [], adverse_reaction=bool(adverse_reaction),
                                   complication=bool(complication), medication=meds, adherence=adherence or None,
                                   lifestyle=lifestyle, note=note or None)
    return RedirectResponse(f"/ui/family/patients/{fu.person_id}?fu={fu.id}#result", status_code=303)


@router.post("/patients/{person_id}/prescriptions")
@html_errors
def issue_prescription(request: Request, person_id: str, session: DB, principal: CurrentPrincipal,
                       drug: Annotated[list[str], Form()], drug_class: Annotated[list[str], Form()],
                       dose: Annotated[list[str], Form()], weeks: Annotated[int, Form()],
                       assessment: Annotated[str, Form()] = "",
                       patient_confirmed: Annotated[str, Form()] = "") -> Response:
    """Issue a long prescription from the form (R4.1–R4.3 checked; errors name the rule)."""
    check_origin(request)
    require_scope(principal, "MedicationRequest", "c")
    items = [{"drug": d.strip(), "drug_class": (c or None), "dose": (s or None)}
             for d, c, s in zip(drug, drug_class, dose, strict=False) if d.strip()]
    rx = prescriptions.issue_long_prescription(session, principal, person_id=person_id, items=items, weeks=weeks,
                                         assessment=assessment or None, patient_confirmed=bool(patient_confirmed))
    return RedirectResponse(f"/ui/family/patients/{rx.person_id}?rx={rx.id}#rx", status_code=303)
