"""The schedule table: one row per vaccine dose and edition of the programme (RULES §6).

A new edition is data: rows with a new ``edition`` and ``effective_from``; the forecaster uses the edition in
force on the assessment date. Seeded from ``db/seeds/immunization_schedule.json`` (2021 and 2025 editions) by
``onetrip db upgrade``; a seeded row an operator changed is never overwritten.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from onetrip.db.base import Base, IdMixin, JSONVariant, TimestampMixin


class ScheduleDose(IdMixin, TimestampMixin, Base):
    """One dose of one series in one edition (e.g. 2025 / DTaP / 3 / DTaP at 6 m, complete before 12 m)."""

    __tablename__ = "imm_schedule_dose"
    __table_args__ = (UniqueConstraint("edition", "series", "dose_number"),)
    edition: Mapped[str] = mapped_column(String(16), doc="2021, 2025, ...")
    effective_from: Mapped[dt.date] = mapped_column(doc="the edition is used for assessments from this date")
    series: Mapped[str] = mapped_column(String(16), doc="HepB, BCG, Polio, DTaP, MPSV-A, MMR, JE-L, ...")
    dose_number: Mapped[int] = mapped_column(doc="within the series (polio: IPV 1-2, bOPV 3-4)")
    vaccine_code: Mapped[str] = mapped_column(String(16), doc="CodeSystem nip-vaccine (docs/immunization.md)")
    min_age: Mapped[str] = mapped_column(String(8), doc="R6.1 minimum age: 0d (birth), 1m, 6m, 2y ...")
    complete_before: Mapped[str | None] = mapped_column(String(8), doc="R6.1 complete-before age; none: never "
                                                                       "overdue")
    intervals: Mapped[list[dict]] = mapped_column(JSONVariant, default=list,
                                                  doc="R6.2 [{from_dose, min}] from earlier doses of the series")
    live_injectable: Mapped[bool] = mapped_column(default=False, doc="R6.2: 28 days from other live injectables")
    sex: Mapped[str | None] = mapped_column(String(8), doc="female: girls only (HPV2)")
    alt_group: Mapped[str | None] = mapped_column(String(16), doc="alternative products: JE (JE-L/JE-I), HepA")
    alt_rank: Mapped[int] = mapped_column(default=1, doc="the lowest rank is forecast until a product is chosen")
    citation: Mapped[str | None] = mapped_column(String(255))
    note: Mapped[str | None] = mapped_column(Text)
    updated_by: Mapped[str] = mapped_column(String(64), default="seed")
