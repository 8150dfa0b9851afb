"""The worklist's queries: active registry rows in a scope (team, doctor, institution) due by a day,
their counts per bucket, and open alerts."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from onetrip.family.models import Alert, Registry, Team
from onetrip.persons.models import Person


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


def rows(session: Session, *, team_id: str | None, doctor_id: str | None, organization_id: str | None,
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


def counts(session: Session, *, team_id: str | None, doctor_id: str | None, organization_id: str | None,
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
