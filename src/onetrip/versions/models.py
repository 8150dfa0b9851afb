"""Resource history for vread and _history: every create/update/delete stores the JSON it produced."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from onetrip.db.base import Base, IdMixin, JSONVariant


class ResourceVersion(IdMixin, Base):
    __tablename__ = "resource_version"
    __table_args__ = (
        Index("ix_resource_version_resource", "resource_type", "resource_id", "version_id", unique=True),
    )
    resource_type: Mapped[str] = mapped_column(String(32))
    resource_id: Mapped[str] = mapped_column(String(32))
    version_id: Mapped[int]
    method: Mapped[str] = mapped_column(String(8), doc="POST PUT DELETE")
    last_updated: Mapped[dt.datetime]
    person_id: Mapped[str | None] = mapped_column(String(32))
    content: Mapped[dict | None] = mapped_column(JSONVariant)
