"""The family-doctor queries every capability uses: teams, the active contract, registries, follow-up
history, readings, open alerts and long prescriptions of a resident. The worklist's and the figures' own
queries are in ``worklist.repository`` and ``figures.repository``."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from onetrip.family.models import Alert, Contract, Followup, LongPrescription, Reading, Registry, Team


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
