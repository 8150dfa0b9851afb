"""Facts the access policy decides on. Later domains (referrals, contracts, appointments, encounters)
record a care relationship through ``access.service`` when they create one."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from onetrip.db.base import Base, IdMixin


class CareRelationship(IdMixin, Base):
    __tablename__ = "care_relationship"
    __table_args__ = (Index("ix_care_relationship_person_org", "person_id", "organization_id"),)
    person_id: Mapped[str] = mapped_column(ForeignKey("person.id"))
    organization_id: Mapped[str] = mapped_column(ForeignKey("organization.id"))
    kind: Mapped[str] = mapped_column(String(16), doc="encounter | referral | contract | appointment")
    source_ref: Mapped[str | None] = mapped_column(String(128), doc="e.g. ServiceRequest/abc")
    starts_at: Mapped[dt.datetime]
    ends_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime]


class Consent(IdMixin, Base):
    """A resident's decision about sharing with an institution (or, with no grantee, with all)."""

    __tablename__ = "consent"
    __table_args__ = (Index("ix_consent_person", "person_id"),)
    person_id: Mapped[str] = mapped_column(ForeignKey("person.id"))
    grantee_organization_id: Mapped[str | None] = mapped_column(ForeignKey("organization.id"))
    decision: Mapped[str] = mapped_column(String(8), doc="permit | deny")
    starts_at: Mapped[dt.datetime]
    ends_at: Mapped[dt.datetime | None]
    recorded_by: Mapped[str | None] = mapped_column(ForeignKey("app_user.id"))
    created_at: Mapped[dt.datetime]
    withdrawn_at: Mapped[dt.datetime | None]


class BreakGlass(IdMixin, Base):
    """紧急访问: time-limited access with a stated reason; reviewed afterwards by an admin."""

    __tablename__ = "break_glass"
    __table_args__ = (Index("ix_break_glass_user_person", "user_id", "person_id"),)
    user_id: Mapped[str] = mapped_column(ForeignKey("app_user.id"))
    organization_id: Mapped[str | None] = mapped_column(ForeignKey("organization.id"))
    person_id: Mapped[str] = mapped_column(ForeignKey("person.id"))
    reason_code: Mapped[str] = mapped_column(String(16), doc="v3 PurposeOfUse, ETREAT for emergency treatment")
    reason_text: Mapped[str] = mapped_column(String(500))
    started_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
    ended_at: Mapped[dt.datetime | None]
    reviewed_by: Mapped[str | None] = mapped_column(ForeignKey("app_user.id"))
    reviewed_at: Mapped[dt.datetime | None]
    review_outcome: Mapped[str | None] = mapped_column(String(16), doc="justified | unjustified")
    review_note: Mapped[str | None] = mapped_column(String(500))
