"""Request and response shapes of /api/maternal-child."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field

# --- pregnancy care: booking, visit plan, five-colour risk, case management (issue 21 point 1) ---

class DatingScanIn(BaseModel):
    """An early (dating) ultrasound: the gestational age it measured on its day."""

    date: dt.date
    weeks: int = Field(ge=4, le=42)
    days: int = Field(default=0, ge=0, le=6)


class RiskFactsIn(BaseModel):
    """The grading facts (RULES R11.2). At a visit only the facts given change; the others stay as they were."""

    bmi: float | None = Field(default=None, ge=10, le=80)
    scarred_uterus: bool = False
    gdm: bool = False
    twins: bool = False
    serious_complication: bool = False
    life_threatening: bool = False
    hepatitis: bool = False
    syphilis: bool = False
    hiv: bool = False
    tb: bool = False


class FindingsIn(BaseModel):
    weight_kg: float | None = Field(default=None, ge=25, le=250)
    height_cm: float | None = Field(default=None, ge=100, le=220)
    bp_systolic: int | None = Field(default=None, ge=50, le=260)
    bp_diastolic: int | None = Field(default=None, ge=30, le=160)
    fundal_height_cm: float | None = Field(default=None, ge=0, le=60)
    fetal_heart_rate: int | None = Field(default=None, ge=50, le=240)
    note: str | None = Field(default=None, max_length=1000)


class PregnancyBookingIn(BaseModel):
    """建册: the mother's Patient record, the last menstrual period, optionally a dating ultrasound, the facts."""

    patient_id: str = Field(min_length=1, max_length=64)
    lmp: dt.date
    booked_on: dt.date | None = None
    scan: DatingScanIn | None = None
    facts: RiskFactsIn = Field(default_factory=RiskFactsIn)
    findings: FindingsIn = Field(default_factory=FindingsIn)


class VisitIn(BaseModel):
    kind: str = Field(default="antenatal", pattern="^(antenatal|postpartum|day42)$")
    visit_date: dt.date
    findings: FindingsIn = Field(default_factory=FindingsIn)
    facts: RiskFactsIn | None = None


class CaseManagerIn(BaseModel):
    """专案管理: the manager (a user of the pregnancy's institution; default the caller) and the plan."""

    manager_id: str | None = Field(default=None, max_length=32)
    plan: str = Field(min_length=1, max_length=4000)


class EscalationIn(BaseModel):
    """Escalate an orange or red case to the lead hospital (an upward referral drafted through referral)."""

    reason: str = Field(min_length=1, max_length=1500)


class DeliveryIn(BaseModel):
    delivery_date: dt.date
    discharge_date: dt.date
    outcome: str = Field(default="live_birth", pattern="^(live_birth|stillbirth|miscarriage)$")
    mode: str | None = Field(default=None, pattern="^(vaginal|caesarean)$")


class PlanWindowOut(BaseModel):
    key: str
    kind: str
    start: dt.date | None
    end: dt.date | None
    state: str
    visit_date: dt.date | None = None


class GradeOut(BaseModel):
    colour: str
    purple: bool
    reasons: list[str]
    graded_on: dt.date
    visit_id: str | None = None


class PregnancyVisitOut(BaseModel):
    id: str
    kind: str
    visit_date: dt.date
    gestational_age: str | None
    findings: dict
    facts: dict


class PregnancyOut(BaseModel):
    id: str
    patient_id: str
    person_id: str
    organization_id: str
    lmp: dt.date
    edd: dt.date
    edd_source: str
    booked_on: dt.date
    gestational_age: str | None = Field(description="weeks+days today (while active)")
    status: str
    risk_colour: str
    purple: bool
    risk_reasons: list[str]
    case_management: bool
    case_manager_id: str | None
    case_manager_name: str | None
    case_plan: str | None
    referral_id: str | None = None
    delivery_date: dt.date | None
    discharge_date: dt.date | None
    delivery_outcome: str | None
    facts: dict
    antenatal_checks: int
    plan: list[PlanWindowOut] = []
    grades: list[GradeOut] = []
    visits: list[PregnancyVisitOut] = []


class PregnancyRow(BaseModel):
    id: str
    patient_id: str
    name: str = Field(description="masked")
    phone: str = Field(description="masked")
    edd: dt.date
    gestational_age: str | None
    status: str
    risk_colour: str
    purple: bool
    risk_reasons: list[str]
    case_manager_name: str | None
    overdue: list[str] = Field(description="keys of the plan windows overdue today")
    due: list[str]


# --- child health 0-6: check plan, WHO growth z-scores, screening reminders (issue 21 point 2) ---

class ChildCheckIn(BaseModel):
    """One child health check (R11.3): the check of the plan, its date and what was measured."""

    check_key: str = Field(min_length=1, max_length=16, description="newborn | m1 | m3 … m36 | y4 | y5 | y6")
    check_date: dt.date
    weight_kg: float | None = Field(default=None, gt=0, le=200)
    length_cm: float | None = Field(default=None, gt=0, le=250, description="length (lying) or height (standing)")
    position: str | None = Field(default=None, pattern="^(recumbent|standing)$")
    head_cm: float | None = Field(default=None, gt=0, le=100)
    hb_g_l: float | None = Field(default=None, gt=0, le=300, description="haemoglobin, g/L")
    hearing: str | None = Field(default=None, pattern="^(pass|refer)$")
    milestones: dict[str, bool] | None = Field(default=None, max_length=40)


class GrowthZ(BaseModel):
    waz: float | None = None
    lhaz: float | None = None
    whz: float | None = None
    bmiz: float | None = None
    hcz: float | None = None
    length_used_cm: float | None = None
    bmi: float | None = None
    wh_table: str | None = None


class ChildCheckOut(BaseModel):
    id: str
    patient_id: str
    organization_id: str
    check_key: str
    check_date: dt.date
    age_days: int
    weight_kg: float | None = None
    length_cm: float | None = None
    position: str | None = None
    head_cm: float | None = None
    hb_g_l: float | None = None
    hearing: str | None = None
    milestones: dict[str, bool] | None = None
    zscores: GrowthZ
    flags: list[str]


class PlanItemOut(BaseModel):
    key: str
    kind: str  # check | hb | hearing
    target: dt.date
    start: dt.date
    end: dt.date
    state: str  # done | due | overdue | upcoming
    done_on: dt.date | None = None


class ChildPlanOut(BaseModel):
    patient_id: str
    birth_date: dt.date
    sex: str
    on: dt.date
    items: list[PlanItemOut]


class OverdueOut(BaseModel):
    patient_id: str
    name: str  # masked
    birth_date: dt.date
    key: str
    kind: str
    end: dt.date
    days_overdue: int


# --- 两癌 screening campaign (issue 21 point 5) ---

class ScreeningCampaignIn(BaseModel):
    """A 两癌 screening campaign; the ages and sex not given come from the rule value two_cancers_campaign."""

    model_config = {"extra": "forbid"}
    code: str = Field(min_length=1, max_length=32, pattern=r"^[0-9A-Za-z_.-]+$")
    name: str = Field(min_length=1, max_length=128)
    organization_id: str | None = Field(default=None, max_length=32, description="default: your institution")
    township: str | None = Field(default=None, max_length=64, description="乡镇/街道 of the person index")
    start_date: dt.date
    end_date: dt.date
    reference_date: dt.date | None = Field(default=None, description="ages are counted on this day "
                                                                     "(default: start_date)")
    min_age: int | None = Field(default=None, ge=0, le=130)
    max_age: int | None = Field(default=None, ge=0, le=130)
    interval_years: int | None = Field(default=None, ge=0, le=20, description="0: no interval; default from the "
                                                                              "rule value")


class ScreeningFiguresOut(BaseModel):
    eligible: int
    invited: int = Field(description="invitations sent (a message queued)")
    no_contact: int = Field(description="eligible women with a row but no phone: nothing sent")
    screened: int
    declined: int
    rate: float | None = Field(description="两癌筛查率 = screened ÷ eligible, percent")
    positives: int
    followed_in_time: int = Field(description="positives diagnosed within the diagnosis deadline")
    followed_percent: float | None = Field(description="followed_in_time ÷ positives, percent")
    overdue: int = Field(description="positives overdue today")


class ScreeningCampaignOut(BaseModel):
    id: str
    code: str
    name: str
    organization_id: str
    township: str | None
    start_date: dt.date
    end_date: dt.date
    reference_date: dt.date
    min_age: int
    max_age: int
    sex: str
    interval_years: int | None
    status: str
    figures: ScreeningFiguresOut | None = None


class ScreeningEligibleOut(BaseModel):
    person_id: str
    patient_id: str | None
    name: str = Field(description="masked")
    id_number: str = Field(description="masked")
    phone: str = Field(description="masked")
    birth_date: dt.date
    age: int = Field(description="whole years on the reference date")
    township: str | None
    screening_id: str | None
    status: str | None = Field(description="eligible | invited | screened | declined; none: no row yet")


class ScreeningInviteOut(BaseModel):
    sent: int = Field(description="notifications queued now")
    already: int = Field(description="invited before: nothing sent again")
    no_contact: int = Field(description="no phone: nothing sent")


class ScreeningResultIn(BaseModel):
    """The results of one woman's screening; at least one part. BI-RADS alone gives the breast result
    (4–5 positive)."""

    model_config = {"extra": "forbid"}
    person_id: str = Field(min_length=1, max_length=32)
    cervical_method: str | None = Field(default=None, pattern=r"^(HPV|cytology|VIA)$")
    cervical_result: str | None = Field(default=None, pattern=r"^(negative|positive|unsatisfactory)$")
    cervical_date: dt.date | None = None
    breast_method: str | None = Field(default=None, pattern=r"^(ultrasound|mammography)$")
    breast_result: str | None = Field(default=None, pattern=r"^(negative|positive|unsatisfactory)$")
    breast_birads: int | None = Field(default=None, ge=1, le=5)
    breast_date: dt.date | None = None


class ScreeningFollowupIn(BaseModel):
    """A positive's follow-up: the diagnosis (date and result), the treatment date, or lost to follow-up."""

    model_config = {"extra": "forbid"}
    diagnosis_date: dt.date | None = None
    diagnosis_result: str | None = Field(default=None, pattern=r"^(benign|precancerous|cancer)$")
    treatment_date: dt.date | None = None
    lost: bool = False
    note: str | None = Field(default=None, max_length=500)


class ScreeningOut(BaseModel):
    id: str
    campaign_id: str
    person_id: str
    patient_id: str | None
    name: str = Field(description="masked")
    status: str
    cervical_method: str | None
    cervical_result: str | None
    cervical_date: dt.date | None
    breast_method: str | None
    breast_result: str | None
    breast_birads: int | None
    breast_date: dt.date | None
    positive: bool
    positive_on: dt.date | None
    diagnosis_deadline: dt.date | None
    treatment_deadline: dt.date | None
    diagnosis_date: dt.date | None
    diagnosis_result: str | None
    treatment_date: dt.date | None
    followup_status: str = Field(description="on the day asked: none | open | overdue | diagnosed | treated | lost")
