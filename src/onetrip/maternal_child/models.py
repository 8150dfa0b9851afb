"""Tables of maternal and child health (RULES §11). Every clinical table carries a ``person_id``."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Float,
    ForeignKey,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from onetrip.db.base import Base, IdMixin, JSONVariant, TimestampMixin

# --- pregnancy care: booking, visit plan, five-colour risk, case management (issue 21 point 1) ---

class Pregnancy(IdMixin, TimestampMixin, Base):
    """One pregnancy's record (孕产妇保健手册, 建册 at booking): dating, the current five-colour grade (R11.2), case
    management, delivery. The visit plan (R11.1) is computed from edd, the visits and the delivery dates."""

    __tablename__ = "mch_pregnancy"
    person_id: Mapped[str] = mapped_column(ForeignKey("person.id"), index=True, doc="the mother")
    patient_record_id: Mapped[str] = mapped_column(ForeignKey("patient_record.id"), index=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organization.id"), index=True,
                                                 doc="the institution that booked and manages the pregnancy")
    lmp: Mapped[dt.date] = mapped_column(doc="last menstrual period (末次月经)")
    edd: Mapped[dt.date] = mapped_column(doc="estimated due date (预产期) in use")
    edd_source: Mapped[str] = mapped_column(String(12), doc="lmp (Naegele) | ultrasound (early dating scan)")
    scan_date: Mapped[dt.date | None] = mapped_column(doc="the dating ultrasound's day")
    scan_ga_days: Mapped[int | None] = mapped_column(doc="the gestational age the dating scan measured, days")
    booked_on: Mapped[dt.date] = mapped_column(doc="建册 day")
    status: Mapped[str] = mapped_column(String(12), default="active", index=True,
                                        doc="active | delivered | closed")
    facts: Mapped[dict] = mapped_column(JSONVariant, doc="the grading facts in force (RiskFacts without age)")
    risk_colour: Mapped[str] = mapped_column(String(8), doc="green | yellow | orange | red (R11.2)")
    purple: Mapped[bool] = mapped_column(default=False, doc="infectious disease (R11.2 purple), combinable")
    risk_reasons: Mapped[list] = mapped_column(JSONVariant, doc="reason codes of the current grade")
    case_manager_id: Mapped[str | None] = mapped_column(String(32), doc="the user managing an orange/red case")
    case_manager_name: Mapped[str | None] = mapped_column(String(64))
    case_plan: Mapped[str | None] = mapped_column(Text, doc="the case-management plan (专案管理)")
    referral_id: Mapped[str | None] = mapped_column(String(32), doc="the upward referral drafted when the case was "
                                                                   "escalated to the lead hospital (referral domain)")
    delivery_date: Mapped[dt.date | None] = mapped_column()
    discharge_date: Mapped[dt.date | None] = mapped_column()
    delivery_outcome: Mapped[str | None] = mapped_column(String(16), doc="live_birth | stillbirth | miscarriage")
    delivery_mode: Mapped[str | None] = mapped_column(String(16), doc="vaginal | caesarean")
    created_by: Mapped[str] = mapped_column(String(64))


class PregnancyVisit(IdMixin, TimestampMixin, Base):
    """One check of a pregnancy: antenatal (the booking check is the first), the postpartum home visit, the
    42-day check."""

    __tablename__ = "mch_pregnancy_visit"
    pregnancy_id: Mapped[str] = mapped_column(ForeignKey("mch_pregnancy.id"), index=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("person.id"), index=True)
    kind: Mapped[str] = mapped_column(String(12), doc="antenatal | postpartum | day42")
    visit_date: Mapped[dt.date] = mapped_column()
    ga_days: Mapped[int | None] = mapped_column(doc="gestational age on the visit day (antenatal), days")
    findings: Mapped[dict] = mapped_column(JSONVariant, doc="weight_kg, bp_systolic, bp_diastolic, "
                                                            "fundal_height_cm, fetal_heart_rate, note")
    facts: Mapped[dict] = mapped_column(JSONVariant, doc="the grading facts given at this visit")
    recorded_by: Mapped[str | None] = mapped_column(String(64))


class RiskGrade(IdMixin, TimestampMixin, Base):
    """The grade history: one row per (re-)grading, at booking or at a visit."""

    __tablename__ = "mch_risk_grade"
    pregnancy_id: Mapped[str] = mapped_column(ForeignKey("mch_pregnancy.id"), index=True)
    visit_id: Mapped[str | None] = mapped_column(ForeignKey("mch_pregnancy_visit.id"))
    graded_on: Mapped[dt.date] = mapped_column()
    colour: Mapped[str] = mapped_column(String(8))
    purple: Mapped[bool] = mapped_column(default=False)
    reasons: Mapped[list] = mapped_column(JSONVariant)
    graded_by: Mapped[str | None] = mapped_column(String(64))


# --- child health 0-6: check plan, WHO growth z-scores, screening reminders (issue 21 point 2) ---

class ChildCheck(IdMixin, TimestampMixin, Base):
    """One child health check (R11.3) with its measurements and the WHO z-scores and flags computed then."""

    __tablename__ = "mch_child_check"
    person_id: Mapped[str] = mapped_column(ForeignKey("person.id"), index=True, doc="the child")
    patient_record_id: Mapped[str] = mapped_column(ForeignKey("patient_record.id"), index=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organization.id"), index=True)
    check_key: Mapped[str] = mapped_column(String(16), doc="newborn | m1 | m3 … m36 | y4 | y5 | y6 (child_checks)")
    check_date: Mapped[dt.date] = mapped_column(index=True)
    age_days: Mapped[int] = mapped_column()
    weight_kg: Mapped[float | None] = mapped_column(Float)
    length_cm: Mapped[float | None] = mapped_column(Float, doc="as measured")
    position: Mapped[str | None] = mapped_column(String(12), doc="recumbent | standing")
    head_cm: Mapped[float | None] = mapped_column(Float)
    hb_g_l: Mapped[float | None] = mapped_column(Float, doc="haemoglobin, g/L")
    hearing: Mapped[str | None] = mapped_column(String(12), doc="pass | refer")
    milestones: Mapped[dict | None] = mapped_column(JSONVariant, doc="development milestones {name: true|false}")
    zscores: Mapped[dict] = mapped_column(JSONVariant, doc="waz, lhaz, whz, bmiz, hcz, length_used_cm, bmi")
    flags: Mapped[list] = mapped_column(JSONVariant, doc="growth_flags raised")
    recorded_by: Mapped[str | None] = mapped_column(String(64))


# --- 两癌 screening campaign (issue 21 point 5) ---

class ScreeningCampaign(IdMixin, TimestampMixin, Base):
    """A 两癌 (cervical and breast cancer) screening campaign of one institution: the women of its age range
    registered there (optionally one township), their invitations, results and the positives' follow-up."""

    __tablename__ = "mch_screening_campaign"
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    organization_id: Mapped[str] = mapped_column(ForeignKey("organization.id"), index=True,
                                                 doc="women registered at this institution")
    township: Mapped[str | None] = mapped_column(String(64), doc="乡镇/街道 (the person index's street)")
    start_date: Mapped[dt.date] = mapped_column()
    end_date: Mapped[dt.date] = mapped_column()
    reference_date: Mapped[dt.date] = mapped_column(doc="ages are counted on this day")
    min_age: Mapped[int] = mapped_column()
    max_age: Mapped[int] = mapped_column()
    sex: Mapped[str] = mapped_column(String(8), default="female")
    interval_years: Mapped[int | None] = mapped_column(doc="a woman screened (in another campaign) less than this "
                                                           "many years before the reference date is not due again")
    status: Mapped[str] = mapped_column(String(16), default="active", doc="active | closed")
    created_by: Mapped[str] = mapped_column(String(64))


class Screening(IdMixin, TimestampMixin, Base):
    """One woman in a campaign (one row per campaign and person): invitation, cervical and breast results and,
    for a positive, the follow-up to diagnosis and treatment with its deadlines (rule positive_followup_days)."""

    __tablename__ = "mch_screening"
    __table_args__ = (UniqueConstraint("campaign_id", "person_id"),)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("mch_screening_campaign.id"), index=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("person.id"), index=True)
    patient_record_id: Mapped[str | None] = mapped_column(ForeignKey("patient_record.id"))
    status: Mapped[str] = mapped_column(String(16), default="eligible",
                                        doc="eligible (no message yet) | invited | screened | declined")
    invited_at: Mapped[dt.datetime | None] = mapped_column()
    contact: Mapped[str | None] = mapped_column(String(8), doc="own | none")
    notification_ref: Mapped[str | None] = mapped_column(String(32), doc="the notification's event id")
    cervical_method: Mapped[str | None] = mapped_column(String(16), doc="HPV | cytology | VIA")
    cervical_result: Mapped[str | None] = mapped_column(String(16), doc="negative | positive | unsatisfactory")
    cervical_date: Mapped[dt.date | None] = mapped_column()
    breast_method: Mapped[str | None] = mapped_column(String(16), doc="ultrasound | mammography")
    breast_result: Mapped[str | None] = mapped_column(String(16), doc="negative | positive | unsatisfactory")
    breast_birads: Mapped[int | None] = mapped_column(doc="BI-RADS 1–5")
    breast_date: Mapped[dt.date | None] = mapped_column()
    positive: Mapped[bool] = mapped_column(default=False)
    positive_on: Mapped[dt.date | None] = mapped_column(doc="the first positive result's day")
    diagnosis_deadline: Mapped[dt.date | None] = mapped_column()
    treatment_deadline: Mapped[dt.date | None] = mapped_column()
    diagnosis_date: Mapped[dt.date | None] = mapped_column()
    diagnosis_result: Mapped[str | None] = mapped_column(String(16), doc="benign | precancerous | cancer")
    treatment_date: Mapped[dt.date | None] = mapped_column()
    followup_status: Mapped[str] = mapped_column(String(16), default="none",
                                                 doc="none | open | overdue | diagnosed | treated | lost "
                                                     "(as of the last change; lists compute it on the day)")
    followup_note: Mapped[str | None] = mapped_column(Text)
    recorded_by: Mapped[str | None] = mapped_column(String(64))
