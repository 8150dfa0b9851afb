"""A *person* is the resident; a *patient record* is one institution's registration of them (its MRN).

Every clinical table carries ``person_id`` so a city-scale deployment can distribute on it (DESIGN: Scale).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from onetrip.db.base import Base, IdMixin, JSONVariant, TimestampMixin
from onetrip.kit.clock import utcnow


class MatchModel(IdMixin, Base):
    """A versioned Fellegi–Sunter model: Splink's model JSON (m and u per comparison level, λ).
    The newest active row is used online; without one, the packaged ``default_model.json``."""

    __tablename__ = "match_model"
    version: Mapped[int] = mapped_column(Integer, unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(default=True)
    model: Mapped[dict] = mapped_column(JSONVariant, doc="Splink settings JSON with trained m/u")
    training: Mapped[dict] = mapped_column(JSONVariant, doc="records, source, seconds")


class MatchReview(IdMixin, TimestampMixin, Base):
    """A possible duplicate waiting for a person to decide (review queue): ``record_id`` (now belonging to
    ``person_id``) may be the same resident as ``candidate_person_id``."""

    __tablename__ = "match_review"
    __table_args__ = (
        UniqueConstraint("record_id", "candidate_person_id"),
        Index("ix_match_review_status_created", "status", "created_at"),
    )
    person_id: Mapped[str] = mapped_column(ForeignKey("person.id"), index=True)
    record_id: Mapped[str] = mapped_column(ForeignKey("patient_record.id"))
    candidate_person_id: Mapped[str] = mapped_column(ForeignKey("person.id"), index=True)
    candidate_record_id: Mapped[str | None] = mapped_column(ForeignKey("patient_record.id"))
    match_weight: Mapped[float] = mapped_column(Float)
    match_probability: Mapped[float] = mapped_column(Float)
    levels: Mapped[dict] = mapped_column(JSONVariant, doc="comparison → level label")
    source: Mapped[str] = mapped_column(String(16), doc="online | update | relink")
    model_version: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="open", doc="open | linked | merged | not_a_match | closed")
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[dt.datetime | None]
    merge_id: Mapped[str | None] = mapped_column(String(32))


class NotAMatch(IdMixin, Base):
    """A remembered decision that two persons are different residents; the MPI never proposes the pair
    again. Stored with ``person_id`` < ``other_person_id``."""

    __tablename__ = "not_a_match"
    __table_args__ = (UniqueConstraint("person_id", "other_person_id"),)
    person_id: Mapped[str] = mapped_column(ForeignKey("person.id"))
    other_person_id: Mapped[str] = mapped_column(ForeignKey("person.id"), index=True)
    decided_by: Mapped[str] = mapped_column(String(64))
    decided_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    review_id: Mapped[str | None] = mapped_column(String(32))


class PersonMerge(IdMixin, Base):
    """One link (a record moved to another person) or merge (all of a person's records moved), with the
    exact prior state so ``unmerge`` can restore it. ``person_id`` is the surviving person."""

    __tablename__ = "person_merge"
    person_id: Mapped[str] = mapped_column(ForeignKey("person.id"), index=True, doc="survivor")
    merged_person_id: Mapped[str] = mapped_column(ForeignKey("person.id"), index=True)
    kind: Mapped[str] = mapped_column(String(8), doc="link | merge")
    before: Mapped[dict] = mapped_column(JSONVariant, doc="persons' and records' prior values")
    status: Mapped[str] = mapped_column(String(8), default="active", doc="active | undone")
    reason: Mapped[str | None] = mapped_column(String(255))
    merged_by: Mapped[str] = mapped_column(String(64))
    merged_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    unmerged_by: Mapped[str | None] = mapped_column(String(64))
    unmerged_at: Mapped[dt.datetime | None]
