"""The counts the family-doctor figures are computed from (R3.6, R5.3): registrations managed, with enough
follow-ups and at target, per institution, team or doctor; contracted residents; populations."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from onetrip.family.models import Contract, Followup, Registry
from onetrip.persons.models import PatientRecord, Person

GROUP_COLUMNS = {"institution": "organization_id", "team": "team_id", "doctor": "doctor_id"}


def programme_counts(session: Session, programme: str, start: dt.date, end: dt.date, level: str,
                     standard_followups: int, organization_id: str | None = None) -> dict[str | None, list[int]]:
    """R3.6 counts per group for registrations managed at ``end``: [managed, standard, controlled].

    managed: enrolled on or before ``end`` and not closed by then; standard: ≥ ``standard_followups``
    follow-ups in [start, end]; controlled: the latest follow-up in [start, end] was at target (none in
    the period = lost = not at target, R3.5)."""
    col = getattr(Registry, GROUP_COLUMNS[level])
    in_period = and_(Followup.registry_id == Registry.id, Followup.visit_date >= start, Followup.visit_date <= end)
    n_followups = select(func.count()).where(in_period).correlate(Registry).scalar_subquery()
    latest = (select(Followup.controlled).where(in_period)
              .order_by(Followup.visit_date.desc(), Followup.created_at.desc(), Followup.id.desc())
              .limit(1).correlate(Registry).scalar_subquery())
    conds = [Registry.programme == programme, Registry.enrolled_on <= end,
             or_(Registry.closed_on.is_(None), Registry.closed_on > end)]
    if organization_id:
        conds.append(Registry.organization_id == organization_id)
    out: dict[str | None, list[int]] = defaultdict(lambda: [0, 0, 0])
    for key, n, ctrl in session.execute(select(col, n_followups, latest).where(*conds)):
        c = out[key]
        c[0] += 1
        c[1] += int((n or 0) >= standard_followups)
        c[2] += int(bool(ctrl))
    return dict(out)


def adults(session: Session, on: dt.date, min_age: int, organization_id: str | None = None) -> int:
    """Residents aged ≥ ``min_age`` on ``on`` (the base of the estimated patients, R3.6)."""
    born_by = _years_before(on, min_age)
    q = select(func.count()).select_from(Person).where(*_living(), Person.birth_date <= born_by)
    return int(session.scalar(_in_catchment(q, organization_id)) or 0)


def adults_by_organization(session: Session, on: dt.date, min_age: int) -> dict[str, int]:
    """Residents aged ≥ ``min_age`` registered at each institution, in one grouped pass (a resident with
    records at two institutions counts at both — each institution's catchment) [U]."""
    q = (select(PatientRecord.organization_id, func.count(func.distinct(Person.id)))
         .join(Person, Person.id == PatientRecord.person_id)
         .where(*_living(), PatientRecord.deleted_at.is_(None), Person.birth_date <= _years_before(on, min_age))
         .group_by(PatientRecord.organization_id))
    return {org: int(n) for org, n in session.execute(q)}


def population(session: Session, on: dt.date, organization_id: str | None = None,
               min_age: int | None = None, max_age: int | None = None) -> int:
    q = select(func.count()).select_from(Person).where(*_living())
    if min_age is not None:
        q = q.where(Person.birth_date <= _years_before(on, min_age))
    if max_age is not None:  # age ≤ max_age: born after (on − (max_age + 1) years)
        q = q.where(Person.birth_date > _years_before(on, max_age + 1))
    return int(session.scalar(_in_catchment(q, organization_id)) or 0)


def _living():
    return (Person.deceased.is_(False), Person.merged_into_id.is_(None))


def _in_catchment(q, organization_id: str | None):
    """An institution's population: residents registered there (a PatientRecord) [U] — the catchment
    register is not in this platform."""
    if organization_id is None:
        return q
    return q.where(Person.id.in_(select(PatientRecord.person_id).where(
        PatientRecord.organization_id == organization_id, PatientRecord.deleted_at.is_(None))))


def _years_before(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def contracted(session: Session, on: dt.date, level: str, organization_id: str | None = None):
    """Residents covered by a contract on ``on`` (start ≤ on ≤ end; a switch or cancellation cuts
    ``end_date``), per group: [(group key, person, declared groups, birth date, sex)]."""
    col = getattr(Contract, GROUP_COLUMNS[level])
    q = select(col, Contract.person_id, Contract.declared_groups, Person.birth_date, Person.sex).join(
        Person, Person.id == Contract.person_id).where(Contract.start_date <= on, Contract.end_date >= on)
    if organization_id:
        q = q.where(Contract.organization_id == organization_id)
    return session.execute(q).all()


def registered(session: Session, programme: str, on: dt.date, organization_id: str | None = None) -> set[str]:
    q = select(Registry.person_id).where(Registry.programme == programme, Registry.enrolled_on <= on,
                                         or_(Registry.closed_on.is_(None), Registry.closed_on > on))
    if organization_id:
        q = q.where(Registry.organization_id == organization_id)
    return set(session.scalars(q))
