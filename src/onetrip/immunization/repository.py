"""Queries of the immunisation domain's own tables."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from onetrip.immunization.models import ScheduleDose


def schedule_doses(session: Session) -> list[ScheduleDose]:
    """Every row of every edition (a few dozen per edition), in a stable order."""
    return list(session.scalars(select(ScheduleDose).order_by(ScheduleDose.effective_from, ScheduleDose.edition,
                                                              ScheduleDose.id)))


def schedule_keys(session: Session) -> set[tuple[str, str, int]]:
    rows = session.execute(select(ScheduleDose.edition, ScheduleDose.series, ScheduleDose.dose_number))
    return {(e, s, n) for e, s, n in rows}
