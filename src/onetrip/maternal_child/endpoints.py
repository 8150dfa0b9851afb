"""REST endpoints under /api/maternal-child — thin: check the scope, call one service function, shape."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import (
    APIRouter,
    Path,
    Query,
)

from onetrip.api.deps import (
    DB,
    SERVICE_DATE,
    CurrentPrincipal,
    require_scope,
)
from onetrip.maternal_child import (
    child_health,
    pregnancy,
    screening,
)
from onetrip.maternal_child.schemas import (
    CaseManagerIn,
    ChildCheckIn,
    ChildCheckOut,
    ChildPlanOut,
    DeliveryIn,
    EscalationIn,
    GradeOut,
    OverdueOut,
    PlanItemOut,
    PlanWindowOut,
    PregnancyBookingIn,
    PregnancyOut,
    PregnancyRow,
    PregnancyVisitOut,
    ScreeningCampaignIn,
    ScreeningCampaignOut,
    ScreeningEligibleOut,
    ScreeningFiguresOut,
    ScreeningFollowupIn,
    ScreeningInviteOut,
    ScreeningOut,
    ScreeningResultIn,
    VisitIn,
)

router = APIRouter(prefix="/api/maternal-child", tags=["maternal and child health"])


# --- pregnancy care: booking, visit plan, five-colour risk, case management (issue 21 point 1) ---

def pregnancy_out(v: pregnancy.View) -> PregnancyOut:
    p = v.pregnancy
    return PregnancyOut(
        id=p.id, patient_id=p.patient_record_id, person_id=p.person_id, organization_id=p.organization_id,
        lmp=p.lmp, edd=p.edd, edd_source=p.edd_source, booked_on=p.booked_on,
        gestational_age=pregnancy.ga_text(v.ga_days), status=p.status, risk_colour=p.risk_colour, purple=p.purple,
        risk_reasons=list(p.risk_reasons or []), case_management=p.risk_colour in ("orange", "red"),
        case_manager_id=p.case_manager_id, case_manager_name=p.case_manager_name, case_plan=p.case_plan,
        referral_id=p.referral_id,
        delivery_date=p.delivery_date, discharge_date=p.discharge_date, delivery_outcome=p.delivery_outcome,
        facts=dict(p.facts or {}), antenatal_checks=v.antenatal_checks,
        plan=[PlanWindowOut(key=w.key, kind=w.kind, start=w.start, end=w.end, state=w.state,
                            visit_date=w.visit_date) for w in v.plan],
        grades=[GradeOut(colour=g.colour, purple=g.purple, reasons=list(g.reasons), graded_on=g.graded_on,
                         visit_id=g.visit_id) for g in v.grades],
        visits=[PregnancyVisitOut(id=x.id, kind=x.kind, visit_date=x.visit_date,
                                  gestational_age=pregnancy.ga_text(x.ga_days), findings=dict(x.findings or {}),
                                  facts=dict(x.facts or {})) for x in v.visits])


@router.post("/pregnancies", response_model=PregnancyOut, status_code=201)
def book_pregnancy(body: PregnancyBookingIn, session: DB, principal: CurrentPrincipal) -> PregnancyOut:
    """建册: book a pregnancy for a registered woman (LMP, optional dating ultrasound, the grading facts). The
    EDD is Naegele's, or the early ultrasound's when they differ by more than the rule's tolerance; the booking
    check is the first antenatal visit; the five-colour risk grade (R11.2) is computed."""
    require_scope(principal, "EpisodeOfCare", "c")
    return pregnancy_out(pregnancy.snapshot(session, pregnancy.book(session, principal, body)))


@router.get("/pregnancies", response_model=list[PregnancyRow])
def list_pregnancies(session: DB, principal: CurrentPrincipal,
                     which: Annotated[Literal["all", "overdue", "case-management"], Query(alias="list")] = "all"
                     ) -> list[PregnancyRow]:
    """The institution's open pregnancies (masked): ``list=all``; ``overdue`` (a visit window passed without
    its visit); ``case-management`` (orange or red without a case manager). Audited."""
    require_scope(principal, "EpisodeOfCare", "r")
    return [PregnancyRow(**r.out()) for r in pregnancy.worklist(session, principal, which)]


@router.get("/pregnancies/{pregnancy_id}", response_model=PregnancyOut)
def read_pregnancy(pregnancy_id: str, session: DB, principal: CurrentPrincipal) -> PregnancyOut:
    """The pregnancy with its visit plan (each window done / due / overdue / upcoming today), grade history
    and visits. Another institution's: the access policy decides (audited)."""
    require_scope(principal, "EpisodeOfCare", "r")
    return pregnancy_out(pregnancy.view(session, principal, pregnancy_id))


@router.post("/pregnancies/{pregnancy_id}/visits", response_model=PregnancyOut, status_code=201)
def record_pregnancy_visit(pregnancy_id: str, body: VisitIn, session: DB, principal: CurrentPrincipal
                           ) -> PregnancyOut:
    """A check: antenatal (re-grades the risk from the facts given and those in force), postpartum home visit,
    or the 42-day check (closes the record)."""
    require_scope(principal, "EpisodeOfCare", "u")
    visit, _ = pregnancy.record_visit(session, principal, pregnancy_id, body)
    return pregnancy_out(pregnancy.snapshot(session, session.get(pregnancy.Pregnancy, visit.pregnancy_id)))


@router.post("/pregnancies/{pregnancy_id}/case-manager", response_model=PregnancyOut)
def assign_case_manager(pregnancy_id: str, body: CaseManagerIn, session: DB, principal: CurrentPrincipal
                        ) -> PregnancyOut:
    """专案管理: name the case manager (default the caller) and the plan of an orange or red pregnancy."""
    require_scope(principal, "EpisodeOfCare", "u")
    return pregnancy_out(pregnancy.snapshot(session, pregnancy.assign_case_manager(session, principal,
                                                                                   pregnancy_id, body)))


@router.post("/pregnancies/{pregnancy_id}/escalate", response_model=PregnancyOut)
def escalate_pregnancy(pregnancy_id: str, body: EscalationIn, session: DB, principal: CurrentPrincipal
                       ) -> PregnancyOut:
    """Escalate an orange or red case to the lead hospital's obstetrics: an upward referral is drafted (urgent
    when red) and sent from the referral worklist."""
    require_scope(principal, "EpisodeOfCare", "u")
    require_scope(principal, "Task", "c")  # the referral workflow (mch_doctor: Task.crus)
    return pregnancy_out(pregnancy.snapshot(session, pregnancy.escalate(session, principal, pregnancy_id, body)))


@router.post("/pregnancies/{pregnancy_id}/delivery", response_model=PregnancyOut)
def record_delivery(pregnancy_id: str, body: DeliveryIn, session: DB, principal: CurrentPrincipal
                    ) -> PregnancyOut:
    """The delivery and the discharge day: opens the postpartum home visit (within a week of discharge) and
    the 42-day check."""
    require_scope(principal, "EpisodeOfCare", "u")
    return pregnancy_out(pregnancy.snapshot(session, pregnancy.record_delivery(session, principal, pregnancy_id,
                                                                               body)))


# --- child health 0-6: check plan, WHO growth z-scores, screening reminders (issue 21 point 2) ---

@router.get("/children/overdue", response_model=list[OverdueOut])
def child_overdue(session: DB, principal: CurrentPrincipal,
                  on: Annotated[dt.date | None, SERVICE_DATE] = None) -> list[OverdueOut]:
    """The institution's worklist: overdue child checks and Hb / hearing screenings (R11.3), names masked."""
    require_scope(principal, "CarePlan", "r")
    return [OverdueOut(patient_id=i.record.id, name=i.masked_name, birth_date=i.record.birth_date, key=i.window.key,
                       kind=i.window.kind, end=i.window.end, days_overdue=i.days_overdue)
            for i in child_health.overdue_worklist(session, principal, on)]


@router.get("/children/{patient_id}/plan", response_model=ChildPlanOut)
def child_plan(patient_id: Annotated[str, Path(max_length=32)], session: DB, principal: CurrentPrincipal,
               on: Annotated[dt.date | None, SERVICE_DATE] = None,
               discharge: Annotated[dt.date | None, SERVICE_DATE] = None) -> ChildPlanOut:
    """The child's R11.3 check plan: each check's and screening's window and state (done / due / overdue /
    upcoming) on ``on`` (today); the newborn home visit counts from ``discharge`` (birth when not given)."""
    require_scope(principal, "CarePlan", "r")
    p = child_health.plan(session, principal, patient_id, on, discharge)
    return ChildPlanOut(patient_id=p.record.id, birth_date=p.record.birth_date, sex=p.sex, on=p.on,
                        items=[PlanItemOut(key=w.key, kind=w.kind, target=w.target, start=w.start, end=w.end,
                                           state=state, done_on=when) for w, state, when in p.items])


@router.post("/children/{patient_id}/checks", response_model=ChildCheckOut, status_code=201)
def child_check_record(patient_id: Annotated[str, Path(max_length=32)], body: ChildCheckIn, session: DB,
                       principal: CurrentPrincipal) -> ChildCheckOut:
    """Record a check with its measurements: the WHO z-scores (weight-, length/height-, BMI-, head
    circumference-for-age, weight-for-length/height) and growth flags are computed and returned. An implausible
    value is refused (400) naming the field."""
    require_scope(principal, "Observation", "c")
    return ChildCheckOut(**child_health.check_out(child_health.record_check(session, principal, patient_id, body)))


@router.get("/children/{patient_id}/checks", response_model=list[ChildCheckOut])
def child_check_list(patient_id: Annotated[str, Path(max_length=32)], session: DB, principal: CurrentPrincipal
                     ) -> list[ChildCheckOut]:
    """The child's checks, oldest first, with their z-scores and flags."""
    require_scope(principal, "Observation", "r")
    _rec, checks = child_health.list_checks(session, principal, patient_id)
    return [ChildCheckOut(**child_health.check_out(c)) for c in checks]


# --- 两癌 screening campaign (issue 21 point 5) ---
# Scopes: campaigns and invitations CarePlan (c to create and invite, r to read); results Observation.c; the
# follow-up of a positive CarePlan.u.

SCREENING = "/screening"
OnDay = Annotated[dt.date | None, SERVICE_DATE]


def screening_campaign_out(c, figures: dict | None = None) -> ScreeningCampaignOut:
    return ScreeningCampaignOut(
        id=c.id, code=c.code, name=c.name, organization_id=c.organization_id, township=c.township,
        start_date=c.start_date, end_date=c.end_date, reference_date=c.reference_date, min_age=c.min_age,
        max_age=c.max_age, sex=c.sex, interval_years=c.interval_years, status=c.status,
        figures=ScreeningFiguresOut(**figures) if figures is not None else None)


@router.get(f"{SCREENING}/campaigns", response_model=list[ScreeningCampaignOut])
def screening_campaigns(session: DB, principal: CurrentPrincipal) -> list[ScreeningCampaignOut]:
    """The institution's 两癌 screening campaigns."""
    require_scope(principal, "CarePlan", "r")
    return [screening_campaign_out(c) for c in screening.listing(session, principal)]


@router.post(f"{SCREENING}/campaigns", response_model=ScreeningCampaignOut, status_code=201)
def screening_campaign_create(body: ScreeningCampaignIn, session: DB,
                              principal: CurrentPrincipal) -> ScreeningCampaignOut:
    """A campaign for the women of the institution (ages not given: rule value two_cancers_campaign, 35–64)."""
    require_scope(principal, "CarePlan", "c")
    return screening_campaign_out(screening.create(session, principal, body))


@router.get(f"{SCREENING}/campaigns/{{campaign_id}}", response_model=ScreeningCampaignOut)
def screening_campaign_read(campaign_id: str, session: DB, principal: CurrentPrincipal,
                            date: OnDay = None) -> ScreeningCampaignOut:
    """The campaign with its figures on ``date`` (default today): eligible, screened, 两癌筛查率, positives,
    positives diagnosed within the deadline, overdue."""
    require_scope(principal, "CarePlan", "r")
    c = screening.get(session, principal, campaign_id)
    return screening_campaign_out(c, screening.figures(session, c, date))


@router.get(f"{SCREENING}/campaigns/{{campaign_id}}/eligible", response_model=list[ScreeningEligibleOut])
def screening_eligible(campaign_id: str, session: DB, principal: CurrentPrincipal,
                       offset: Annotated[int, Query(ge=0)] = 0,
                       limit: Annotated[int | None, Query(ge=1, le=10000)] = None) -> list[ScreeningEligibleOut]:
    """The eligible women (masked) with their screening status, ordered by birth date; ``offset``/``limit`` page
    through a large campaign. Audited."""
    require_scope(principal, "CarePlan", "r")
    _, rows, _total = screening.eligible_list(session, principal, campaign_id, offset, limit)
    return [ScreeningEligibleOut(**r) for r in rows]


@router.post(f"{SCREENING}/campaigns/{{campaign_id}}/invite", response_model=ScreeningInviteOut)
def screening_invite(campaign_id: str, session: DB, principal: CurrentPrincipal) -> ScreeningInviteOut:
    """Invite the eligible women not invited yet through notifications (nothing is sent twice)."""
    require_scope(principal, "CarePlan", "c")
    return ScreeningInviteOut(**screening.invite(session, principal, campaign_id))


@router.post(f"{SCREENING}/campaigns/{{campaign_id}}/results", response_model=ScreeningOut)
def screening_result(campaign_id: str, body: ScreeningResultIn, session: DB,
                     principal: CurrentPrincipal) -> ScreeningOut:
    """Record a woman's cervical and/or breast result; a positive opens the follow-up with its deadlines."""
    require_scope(principal, "Observation", "c")
    s = screening.record_result(session, principal, campaign_id, body)
    return ScreeningOut(**screening.out(session, s))


@router.get(f"{SCREENING}/campaigns/{{campaign_id}}/worklist", response_model=list[ScreeningOut])
def screening_worklist(campaign_id: str, session: DB, principal: CurrentPrincipal,
                       list_: Annotated[Literal["positives-overdue", "positives-open"], Query(alias="list")] = (
                           "positives-open"),
                       date: OnDay = None) -> list[ScreeningOut]:
    """Positives to follow on ``date`` (default today): ``list=positives-overdue`` (past a deadline) or
    ``positives-open`` (every positive still to follow). Audited."""
    require_scope(principal, "CarePlan", "r")
    _, rows = screening.worklist(session, principal, campaign_id, list_, date)
    return [ScreeningOut(**r) for r in rows]


@router.post(f"{SCREENING}/records/{{screening_id}}/followup", response_model=ScreeningOut)
def screening_followup(screening_id: str, body: ScreeningFollowupIn, session: DB,
                       principal: CurrentPrincipal) -> ScreeningOut:
    """A positive's diagnosis (date and result), treatment date, or lost to follow-up."""
    require_scope(principal, "CarePlan", "u")
    s = screening.followup(session, principal, screening_id, body)
    return ScreeningOut(**screening.out(session, s))


@router.post(f"{SCREENING}/records/{{screening_id}}/decline", response_model=ScreeningOut)
def screening_decline(screening_id: str, session: DB, principal: CurrentPrincipal) -> ScreeningOut:
    """The woman declines the screening."""
    require_scope(principal, "CarePlan", "u")
    s = screening.decline(session, principal, screening_id)
    return ScreeningOut(**screening.out(session, s))
