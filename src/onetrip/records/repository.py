"""All queries of the records domain."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from onetrip.identity.models import Person
from onetrip.records.models import DiagnosticReport, ImagingStudy, Observation
from onetrip.registry.models import Organization

PersonIds = str | list[str]


def _ids(person_id: PersonIds) -> list[str]:
    return [person_id] if isinstance(person_id, str) else list(person_id)


def merged_person_ids(session: Session, person_id: str) -> list[str]:
    """The person and every person merged into it (directly or through a chain): results stay on the person
    they were stored for, so a survivor's results are the union. An unmerge clears ``merged_into_id``."""
    out, frontier = [person_id], [person_id]
    while frontier and len(out) < 1000:
        frontier = [p for p in session.scalars(select(Person.id).where(Person.merged_into_id.in_(frontier)))
                    if p not in out]
        out.extend(frontier)
    return out


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


def reports_of_person(session: Session, person_id: PersonIds, *, categories: list[str] | None,
                      since: dt.datetime | None) -> list[DiagnosticReport]:
    q = select(DiagnosticReport).where(DiagnosticReport.person_id.in_(_ids(person_id)))
    if categories:
        q = q.where(DiagnosticReport.category.in_(categories))
    if since is not None:
        q = q.where(DiagnosticReport.effective_at >= since)
    return list(session.scalars(q.order_by(DiagnosticReport.effective_at.desc())))


def unreported_studies_of_person(session: Session, person_id: PersonIds, *,
                                 since: dt.datetime | None) -> list[ImagingStudy]:
    """Imaging studies without a report (a reported study appears through its report)."""
    q = select(ImagingStudy).where(ImagingStudy.person_id.in_(_ids(person_id)), ImagingStudy.report_id.is_(None))
    if since is not None:
        q = q.where(ImagingStudy.started_at >= since)
    return list(session.scalars(q.order_by(ImagingStudy.started_at.desc())))


def observation_counts(session: Session, report_ids: list[str]) -> dict[str, int]:
    if not report_ids:
        return {}
    return dict(session.execute(select(Observation.report_id, func.count()).where(
        Observation.report_id.in_(report_ids)).group_by(Observation.report_id)).all())


def repeated_numeric_codes(session: Session, person_id: PersonIds, min_points: int = 2) -> list[tuple[str, str | None, int]]:
    """(code, a display, count) of the numeric lab items a person has at least ``min_points`` values of —
    the ones worth a trend chart. The code is the standard code, else the local code."""
    key = func.coalesce(Observation.code, Observation.code_local)
    rows = session.execute(select(key, func.max(Observation.display), func.count()).where(
        Observation.person_id.in_(_ids(person_id)), Observation.value_quantity.is_not(None), key.is_not(None))
        .group_by(key).having(func.count() >= min_points).order_by(func.count().desc(), key)).all()
    return [(c, d, n) for c, d, n in rows]


def observations_of_report(session: Session, report_id: str) -> list[Observation]:
    return list(session.scalars(select(Observation).where(Observation.report_id == report_id)
                                .order_by(Observation.created_at, Observation.id)))


def numeric_series(session: Session, person_id: PersonIds, code: str) -> list[Observation]:
    """A person's numeric values of one item (standard or local code), oldest first."""
    return list(session.scalars(select(Observation).where(
        Observation.person_id.in_(_ids(person_id)), Observation.value_quantity.is_not(None),
        Observation.status.not_in(("cancelled", "entered-in-error")),
        (Observation.code == code) | (Observation.code_local == code),
    ).order_by(Observation.effective_at, Observation.id)))
