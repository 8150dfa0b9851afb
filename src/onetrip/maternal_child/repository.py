"""Every SELECT of maternal and child health's own tables."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from onetrip.maternal_child.models import (
    ChildCheck,
    Pregnancy,
    PregnancyVisit,
    RiskGrade,
    Screening,
    ScreeningCampaign,
)

# --- pregnancy care: booking, visit plan, five-colour risk, case management (issue 21 point 1) ---

def open_pregnancy_of(session: Session, person_id: str) -> Pregnancy | None:
    """The person's pregnancy still active (one at a time)."""
    return session.scalars(select(Pregnancy).where(Pregnancy.person_id == person_id, Pregnancy.status == "active")
                           .limit(1)).first()


def pregnancy_visits(session: Session, pregnancy_id: str) -> list[PregnancyVisit]:
    return list(session.scalars(select(PregnancyVisit).where(PregnancyVisit.pregnancy_id == pregnancy_id)
                                .order_by(PregnancyVisit.visit_date, PregnancyVisit.created_at)))


def risk_grades(session: Session, pregnancy_id: str) -> list[RiskGrade]:
    return list(session.scalars(select(RiskGrade).where(RiskGrade.pregnancy_id == pregnancy_id)
                                .order_by(RiskGrade.graded_on, RiskGrade.created_at)))


def pregnancies_of(session: Session, organization_id: str | None, statuses: tuple[str, ...]) -> list[Pregnancy]:
    """The institution's pregnancies in these states (None: every institution's), due soonest first."""
    q = select(Pregnancy).where(Pregnancy.status.in_(statuses)).order_by(Pregnancy.edd, Pregnancy.id)
    if organization_id is not None:
        q = q.where(Pregnancy.organization_id == organization_id)
    return list(session.scalars(q))


def visits_of(session: Session, pregnancy_ids: list[str]) -> dict[str, list[PregnancyVisit]]:
    out: dict[str, list[PregnancyVisit]] = {i: [] for i in pregnancy_ids}
    if pregnancy_ids:
        for v in session.scalars(select(PregnancyVisit).where(PregnancyVisit.pregnancy_id.in_(pregnancy_ids))):
            out[v.pregnancy_id].append(v)
    return out


# --- child health 0-6: check plan, WHO growth z-scores, screening reminders (issue 21 point 2) ---

def child_checks(session: Session, person_id: str) -> list[ChildCheck]:
    """A child's checks, oldest first."""
    return list(session.scalars(select(ChildCheck).where(ChildCheck.person_id == person_id)
                                .order_by(ChildCheck.check_date, ChildCheck.created_at)))


def child_checks_of(session: Session, person_ids: list[str]) -> list[ChildCheck]:
    if not person_ids:
        return []
    return list(session.scalars(select(ChildCheck).where(ChildCheck.person_id.in_(person_ids))))


def children_registered(session: Session, organization_id: str, born_from: dt.date, limit: int) -> list:
    """The children (birth on or after ``born_from``) with a live record at the institution."""
    from onetrip.persons.models import PatientRecord

    return list(session.scalars(
        select(PatientRecord).where(PatientRecord.organization_id == organization_id,
                                    PatientRecord.birth_date >= born_from, PatientRecord.deleted_at.is_(None),
                                    PatientRecord.active.is_(True))
        .order_by(PatientRecord.birth_date, PatientRecord.id).limit(limit)))


# --- 两癌 screening campaign (issue 21 point 5) ---

def screening_campaign_by_code(session: Session, code: str) -> ScreeningCampaign | None:
    return session.scalar(select(ScreeningCampaign).where(ScreeningCampaign.code == code))


def screening_campaigns(session: Session, organization_id: str | None) -> list[ScreeningCampaign]:
    """The campaigns of one institution (None: every institution's), newest first."""
    q = select(ScreeningCampaign).order_by(ScreeningCampaign.start_date.desc(), ScreeningCampaign.code)
    if organization_id is not None:
        q = q.where(ScreeningCampaign.organization_id == organization_id)
    return list(session.scalars(q))


def screenings(session: Session, campaign_id: str) -> dict[str, Screening]:
    """The campaign's rows by person id."""
    return {s.person_id: s for s in session.scalars(select(Screening).where(Screening.campaign_id == campaign_id))}


def screening_positives(session: Session, campaign_id: str) -> list[Screening]:
    """The campaign's positive rows, oldest positive first."""
    return list(session.scalars(select(Screening).where(Screening.campaign_id == campaign_id,
                                                        Screening.positive.is_(True))
                                .order_by(Screening.positive_on, Screening.id)))


# --- cockpit figures (issue 21 point 6) ---

def figure_pregnancy_rows(session: Session, organization_id: str | None, start: dt.date, end: dt.date) -> list:
    """One query: the pregnancies booked or delivered between ``start`` and ``end`` (of one institution, or all)
    with their antenatal-check count (the booking check included) and their first postpartum visit's day."""
    from sqlalchemy import case, func, or_

    v = (select(PregnancyVisit.pregnancy_id.label("pid"),
                func.sum(case((PregnancyVisit.kind == "antenatal", 1), else_=0)).label("antenatal"),
                func.min(case((PregnancyVisit.kind == "postpartum", PregnancyVisit.visit_date), else_=None))
                .label("postpartum"))
         .group_by(PregnancyVisit.pregnancy_id).subquery())
    q = (select(Pregnancy.booked_on, Pregnancy.edd, Pregnancy.delivery_date, Pregnancy.discharge_date,
                Pregnancy.delivery_outcome, v.c.antenatal, v.c.postpartum)
         .outerjoin(v, v.c.pid == Pregnancy.id)
         .where(or_(Pregnancy.booked_on.between(start, end), Pregnancy.delivery_date.between(start, end))))
    if organization_id is not None:
        q = q.where(Pregnancy.organization_id == organization_id)
    return list(session.execute(q).all())


def figure_child_rows(session: Session, organization_id: str | None, born_after: dt.date, end: dt.date) -> list:
    """One query: (person id, birth date, check key) of every child check recorded up to ``end`` (at one
    institution, or anywhere) of a child born after ``born_after`` and by ``end``."""
    from onetrip.persons.models import PatientRecord

    q = (select(ChildCheck.person_id, PatientRecord.birth_date, ChildCheck.check_key)
         .join(PatientRecord, PatientRecord.id == ChildCheck.patient_record_id)
         .where(ChildCheck.check_date <= end, PatientRecord.birth_date > born_after, PatientRecord.birth_date <= end))
    if organization_id is not None:
        q = q.where(ChildCheck.organization_id == organization_id)
    return list(session.execute(q).all())
