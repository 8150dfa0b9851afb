"""One declarative base with a constraint naming convention and types that work on both databases
(STYLE 5): timezone-aware UTC datetimes, JSON that becomes JSONB on PostgreSQL, string ids."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import JSON, DateTime, MetaData, String, TypeDecorator
from sqlalchemy.dialects import postgresql as _pg  # only here, never in a domain model
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

from onetrip.kit.clock import utcnow

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Stores UTC; always returns an aware datetime (SQLite returns naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: use onetrip.kit.clock.utcnow()")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


JSONVariant = JSON().with_variant(_pg.JSONB(), "postgresql")

# Text compared byte-wise on both databases so that prefix searches are index range scans:
# SQLite's default BINARY collation already is; PostgreSQL needs COLLATE "C".
def SearchKey(length: int) -> String:  # noqa: N802 — reads like a type
    return String(length).with_variant(String(length, collation="C"), "postgresql")


def new_id() -> str:
    return uuid.uuid4().hex


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dt.datetime: UTCDateTime()}


class IdMixin:
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)


class TimestampMixin:
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class VersionedMixin:
    """Optimistic locking: FHIR ``meta.versionId`` and ``If-Match`` map onto this counter."""

    version_id: Mapped[int] = mapped_column(nullable=False)

    @declared_attr.directive
    def __mapper_args__(cls) -> dict:  # noqa: N805
        # SQLAlchemy bumps the counter on every UPDATE and raises StaleDataError when a concurrent
        # writer got there first, so no update is silently lost.
        return {"version_id_col": cls.version_id}
