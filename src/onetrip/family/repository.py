"""Every family-doctor query: worklists, the active contract, follow-up history and the counts the
figures are computed from (R3.6, R5.3)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from onetrip.family.models import Alert, Contract, Followup, LongPrescription, Reading, Registry, Team
from onetrip.identity.models import Person


def active_contract(session: Session, person_id: str, *, lock: bool = False) -> Contract | None:
    q = select(Contract).where(Contract.person_id == person_id, Contract.status == "active")
    if lock:
        q = q.with_for_update()
    return session.scalars(q).first()


def contracts_of(session: Session, person_id: str) -> list[Contract]:
    return list(session.scalars(select(Contract).where(Contract.person_id == person_id)
                                .order_by(Contract.start_date.desc(), Contract.signed_at.desc())))


def teams(session: Session, organization_id: str | None = None) -> list[Team]:
    q = select(Team).where(Team.active.is_(True)).order_by(Team.code)
    if organization_id:
        q = q.where(Team.organization_id == organization_id)
    return list(session.scalars(q))


def registries_of(session: Session, person_id: str) -> list[Registry]:
    return list(session.scalars(select(Registry).where(Registry.person_id == person_id).order_by(Registry.programme)))


def registry_for(session: Session, person_id: str, programme: str) -> Registry | None:
    return session.scalars(select(Registry).where(Registry.person_id == person_id,
                                                  Registry.programme == programme)).first()


def followups(session: Session, *, registry_id: str | None = None, person_id: str | None = None,
              limit: int = 50) -> list[Followup]:
    q = select(Followup).order_by(Followup.visit_date.desc(), Followup.created_at.desc()).limit(limit)
    if registry_id:
        q = q.where(Followup.registry_id == registry_id)
    if person_id:
        q = q.where(Followup.person_id == person_id)
    return list(session.scalars(q))


def readings(session: Session, person_id: str, since: dt.datetime, limit: int = 500) -> list[Reading]:
    return list(session.scalars(select(Reading).where(Reading.person_id == person_id, Reading.measured_at >= since)
                                .order_by(Reading.measured_at.desc()).limit(limit)))


def open_alerts(session: Session, *, person_id: str | None = None, team_id: str | None = None,
                limit: int = 200) -> list[Alert]:
    q = select(Alert).where(Alert.acknowledged_at.is_(None)).order_by(Alert.created_at.desc()).limit(limit)
    if person_id:
        q = q.where(Alert.person_id == person_id)
    if team_id:
        q = q.where(Alert.team_id == team_id)
    return list(session.scalars(q))


def prescriptions_of(session: Session, person_id: str, limit: int = 20) -> list[LongPrescription]:
    return list(session.scalars(select(LongPrescription).where(LongPrescription.person_id == person_id)
                                .order_by(LongPrescription.issued_at.desc()).limit(limit)))


# --- worklists ----------------------------------------------------------------------------------------

def _active_in_scope(team_id: str | None, doctor_id: str | None, organization_id: str | None) -> list:
    """Active registry rows of a team, a doctor and/or an institution (the worklist's scope)."""
    conds = [Registry.status == "active"]
    if team_id:
        conds.append(Registry.team_id == team_id)
    if doctor_id:
        conds.append(Registry.doctor_id == doctor_id)
    if organization_id:
        conds.append(Registry.organization_id == organization_id)
    return conds


def worklist_rows(session: Session, *, team_id: str | None, doctor_id: str | None, organization_id: str | None,
                  due_by: dt.date, lost_before: dt.date | None, only: str | None, limit: int, offset: int):
    """Active registry rows due on or before ``due_by``, most overdue first, with the
    person. ``only``: "lost" (due before ``lost_before``), "overdue", or None for all due ones. One
    index range scan on (team_id | doctor_id, status, next_due_date)."""
    conds = _active_in_scope(team_id, doctor_id, organization_id)
    if only == "lost" and lost_before is not None:
        conds.append(Registry.next_due_date < lost_before)
    elif only == "overdue":
        conds.append(Registry.next_due_date < due_by)
    else:
        conds.append(Registry.next_due_date <= due_by)  # enrolment sets it (due at once), never null
    cols = (Registry.id, Registry.person_id, Registry.programme, Registry.last_visit_date, Registry.next_due_date,
            Registry.last_classification, Registry.controlled, Person.name, Person.id_number, Person.phone,
            Person.birth_date)  # plain rows, not entities: a worklist page reads these and nothing else
    q = (select(*cols).join(Person, Person.id == Registry.person_id).where(*conds)
         .order_by(Registry.next_due_date, Registry.id).limit(limit + 1).offset(offset))
    rows = session.execute(q).all()
    return rows[:limit], len(rows) > limit


def worklist_counts(session: Session, *, team_id: str | None, doctor_id: str | None, organization_id: str | None,
                    today: dt.date, due_by: dt.date, lost_before: dt.date) -> dict[str, int]:
    conds = _active_in_scope(team_id, doctor_id, organization_id)
    d = Registry.next_due_date
    row = session.execute(select(
        func.count(),
        func.count().filter(d < lost_before),
        func.count().filter(and_(d < today, d >= lost_before)),
        func.count().filter(or_(d.is_(None), and_(d >= today, d <= due_by))),
        func.count().filter(Registry.controlled.is_(True)),
    ).where(*conds)).one()
    return {"managed": row[0], "lost": row[1], "overdue": row[2], "due": row[3], "controlled": row[4]}


def alert_counts(session: Session, person_ids: list[str]) -> dict[str, int]:
    if not person_ids:
        return {}
    return dict(session.execute(select(Alert.person_id, func.count()).where(
        Alert.person_id.in_(person_ids), Alert.acknowledged_at.is_(None)).group_by(Alert.person_id)).all())


def alert_patients(session: Session, team_id: str | None, organization_id: str | None, limit: int = 200):
    q = (select(Alert, Person).join(Person, Person.id == Alert.person_id).where(Alert.acknowledged_at.is_(None))
         .order_by(Alert.created_at.desc()).limit(limit))
    if team_id:
        q = q.where(Alert.team_id == team_id)
    if organization_id:
        q = q.join(Team, Team.id == Alert.team_id).where(Team.organization_id == organization_id)
    return session.execute(q).all()


# --- figures ------------------------------------------------------------------------------------------

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
    from onetrip.identity.models import PatientRecord

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
    from onetrip.identity.models import PatientRecord

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
