"""Recognition (互认) tables: the item catalogue, reason codes, institution standing, and the decision log.
Catalogue and reasons are seeded from ``db/seeds/recognition_catalogue.json`` and editable by admins."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Boolean, ForeignKey, Index, Integer, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from onetrip.db.base import Base, IdMixin, JSONVariant, TimestampMixin


class RecognitionItem(IdMixin, TimestampMixin, Base):
    """A catalogue item: local code → standard code (LOINC where one exists), price and window (R1.6)."""

    __tablename__ = "recognition_item"
    local_code: Mapped[str] = mapped_column(String(64), unique=True)
    standard_code: Mapped[str | None] = mapped_column(String(64), index=True)
    code_system: Mapped[str | None] = mapped_column(String(100))
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(16), doc="lab / imaging / ultrasound")
    price: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    window_days: Mapped[int | None] = mapped_column(Integer, doc="None → the records rule table's window")
    scope: Mapped[str] = mapped_column(String(16), doc="community / city / province")
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class RecognitionReason(IdMixin, TimestampMixin, Base):
    """A reason code for repeating (R1.3)."""

    __tablename__ = "recognition_reason"
    code: Mapped[str] = mapped_column(String(4), unique=True)
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    counts_as_non_recognition: Mapped[bool] = mapped_column(Boolean)
    needs_disease: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class RecognitionInstitution(IdMixin, TimestampMixin, Base):
    """An institution's quality-control standing (R1.4). No row → in standing."""

    __tablename__ = "recognition_institution"
    organization_id: Mapped[str] = mapped_column(ForeignKey("organization.id"), unique=True)
    qc_passed: Mapped[bool] = mapped_column(Boolean, default=True)
    note: Mapped[str | None] = mapped_column(String(200))


class RecognitionDecision(IdMixin, TimestampMixin, Base):
    """The log: one ``check`` row per order checked, one ``decision`` row per recognised/repeated choice."""

    __tablename__ = "recognition_decision"
    __table_args__ = (Index("ix_recognition_decision_person", "person_id", "created_at"),)
    kind: Mapped[str] = mapped_column(String(12), doc="check / decision")
    person_id: Mapped[str] = mapped_column(ForeignKey("person.id"))
    check_id: Mapped[str | None] = mapped_column(ForeignKey("recognition_decision.id"), index=True)
    ordering_org_id: Mapped[str] = mapped_column(ForeignKey("organization.id"))
    department_id: Mapped[str | None] = mapped_column(
        ForeignKey("department.id"), doc="ordering department (the ordering doctor's), for the figures")
    item_code: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str | None] = mapped_column(String(64))
    prior_ids: Mapped[list] = mapped_column(JSONVariant, default=list)
    decision: Mapped[str | None] = mapped_column(String(12), doc="recognised / repeated")
    reason_code: Mapped[str | None] = mapped_column(String(4))
    disease: Mapped[str | None] = mapped_column(String(200))
    remark: Mapped[str | None] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(String(12), default="rest", doc="rest / cds-hooks")
    hook_instance: Mapped[str | None] = mapped_column(String(100))
