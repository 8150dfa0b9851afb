from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from onetrip.db.base import Base, JSONVariant


class OutboxEvent(Base):
    __tablename__ = "outbox_event"
    __table_args__ = (Index("ix_outbox_event_unpublished", "published_at", "id"),)
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(32), unique=True, doc="receivers de-duplicate on this")
    occurred_at: Mapped[dt.datetime]
    event_type: Mapped[str] = mapped_column(String(64), doc="e.g. patient.created")
    aggregate_type: Mapped[str] = mapped_column(String(32))
    aggregate_id: Mapped[str] = mapped_column(String(32))
    person_id: Mapped[str | None] = mapped_column(String(32))
    payload: Mapped[dict] = mapped_column(JSONVariant)
    published_at: Mapped[dt.datetime | None]
