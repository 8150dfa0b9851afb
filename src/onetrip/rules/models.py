from __future__ import annotations

import datetime as dt

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from onetrip.db.base import Base, IdMixin, JSONVariant


class RuleValue(IdMixin, Base):
    """One value of one rule, effective from a date. The newest row not in the future wins."""

    __tablename__ = "rule_value"
    __table_args__ = (UniqueConstraint("rule_set", "key", "effective_from"),)
    rule_set: Mapped[str] = mapped_column(String(64), doc="e.g. security, access")
    key: Mapped[str] = mapped_column(String(64))
    value: Mapped[object] = mapped_column(JSONVariant)
    effective_from: Mapped[dt.date]
    confidence: Mapped[str] = mapped_column(String(1), doc="V verified, S secondary, U unconfirmed default")
    citation: Mapped[str] = mapped_column(String(255), doc="RULES.md section or standard")
    note: Mapped[str | None] = mapped_column(String(500))
    updated_by: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[dt.datetime]
