"""All queries of the records domain."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from onetrip.records.models import DiagnosticReport, ImagingStudy, Observation
from onetrip.registry.models import Organization


def by_identifier(session: Session, model, organization_id: str, system: str, value: str):
    return session.scalar(select(model).where(
        model.organization_id == organization_id, model.identifier_system == system,
        model.identifier_value == value))


def by_identifier_anywhere(session: Session, model, system: str, value: str, limit: int = 2) -> list:
    return list(session.scalars(select(model).where(
        model.identifier_system == system, model.identifier_value == value).limit(limit)))


def org_names(session: Session, ids: set[str]) -> dict[str, str]:
    if not ids:
        return {}
    return dict(session.execute(select(Organization.id, Organization.name).where(Organization.id.in_(ids))).all())


def reports_of_person(session: Session, person_id: str, *, categories: list[str] | None,
                      since: dt.datetime | None) -> list[DiagnosticReport]:
    q = select(DiagnosticReport).where(DiagnosticReport.person_id == person_id)
    if categories:
        q = q.where(DiagnosticReport.category.in_(categories))
    if since is not None:
        q = q.where(DiagnosticReport.effective_at >= since)
    return list(session.scalars(q.order_by(DiagnosticReport.effective_at.desc())))


def unreported_studies_of_person(session: Session, person_id: str, *, since: dt.datetime | None) -> list[ImagingStudy]:
    """Imaging studies without a report (a reported study appears through its report)."""
    q = select(ImagingStudy).where(ImagingStudy.person_id == person_id, ImagingStudy.report_id.is_(None))
    if since is not None:
        q = q.where(ImagingStudy.started_at >= since)
    return list(session.scalars(q.order_by(ImagingStudy.started_at.desc())))


def observation_counts(session: Session, report_ids: list[str]) -> dict[str, int]:
    if not report_ids:
        return {}
    return dict(session.execute(select(Observation.report_id, func.count()).where(
        Observation.report_id.in_(report_ids)).group_by(Observation.report_id)).all())


def observations_of_report(session: Session, report_id: str) -> list[Observation]:
    return list(session.scalars(select(Observation).where(Observation.report_id == report_id)
                                .order_by(Observation.created_at, Observation.id)))


def numeric_series(session: Session, person_id: str, code: str) -> list[Observation]:
    """A person's numeric values of one item (standard or local code), oldest first."""
    return list(session.scalars(select(Observation).where(
        Observation.person_id == person_id, Observation.value_quantity.is_not(None),
        (Observation.code == code) | (Observation.code_local == code),
    ).order_by(Observation.effective_at, Observation.id)))
