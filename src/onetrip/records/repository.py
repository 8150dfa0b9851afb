"""All queries of the records domain."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, func, inspect, select, union_all
from sqlalchemy.orm import Session, make_transient_to_detached

from onetrip.outbox.models import OutboxEvent
from onetrip.persons.models import Person
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


def insert_rows(session: Session, model, rows: list[dict[str, Any]]) -> list:
    """INSERT complete rows (every column given, ``id`` and timestamps included) with one executemany of
    one fixed statement, and return them as persistent ORM objects in the session, as a query would have
    loaded them: later changes to them are flushed as UPDATEs. No unit-of-work flush — a report's
    observations or a bundle's are the hot path of ingest (a multi-row ``VALUES`` statement of a
    different length each time was parsed anew by the driver on every call)."""
    missing = set(model.__table__.columns.keys()) - rows[0].keys()
    for row in rows:  # a column left out is NULL, and so it is on the object (not expired: no reload)
        for column in missing:
            row.setdefault(column, None)
    session.connection().execute(model.__table__.insert(), rows)
    manager = inspect(model).class_manager
    out = []
    for row in rows:
        obj = manager.new_instance()  # as loading does: no attribute events for a row already stored
        obj.__dict__.update(row)
        make_transient_to_detached(obj)
        out.append(obj)
    session.add_all(out)
    return out


def insert_outbox_events(session: Session, rows: list[dict[str, Any]]) -> None:
    """Outbox rows (``outbox.service.event_row``) in one executemany, without ORM objects."""
    if rows:
        session.connection().execute(OutboxEvent.__table__.insert(), rows)


def observations_by_identifiers(session: Session, wanted: dict[tuple[str, str], set[str]]
                                ) -> dict[tuple[str, str, str], Observation]:
    """The stored observations among ``{(organization, identifier system): {values}}``, by (organization,
    system, value). One statement of full-key probes of the unique index (UNION ALL) that returns only ids
    — with ``value IN (...)`` PostgreSQL may scan every row of the (organization, system) prefix while its
    statistics have not seen a new sender (measured: 5,000 rows filtered per message on the 10M-row
    benchmark table) — then the rows themselves, only when some were found (a repeat)."""
    keys = [(org, system, value) for (org, system), values in wanted.items() for value in sorted(values)]
    found: list[str] = []
    for start in range(0, len(keys), _PROBES_PER_STATEMENT):
        chunk = keys[start:start + _PROBES_PER_STATEMENT]
        found += session.scalars(_probe_statement(len(chunk)), {
            f"{name}{k}": v for k, key in enumerate(chunk) for name, v in zip("osv", key, strict=True)})
    if not found:
        return {}
    return {(row.organization_id, row.identifier_system, row.identifier_value): row
            for row in session.scalars(select(Observation).where(Observation.id.in_(found)))}


_PROBES_PER_STATEMENT = 50


@lru_cache(maxsize=_PROBES_PER_STATEMENT)
def _probe_statement(n: int):
    """n probes by bound parameters o0, s0, v0, ... — built once per n (building them per call was a fifth
    of an HL7 result message's handler CPU); the short id-only text keeps the driver's parse cached too."""
    t = Observation.__table__
    probes = [select(t.c.id).where(t.c.organization_id == bindparam(f"o{k}"),
                                   t.c.identifier_system == bindparam(f"s{k}"),
                                   t.c.identifier_value == bindparam(f"v{k}")) for k in range(n)]
    return probes[0] if n == 1 else union_all(*probes)
