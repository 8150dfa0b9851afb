"""Referral tables: the referral itself (FHIR ServiceRequest category referral + its Task) and the
follow-up tasks a downward referral creates at the branch (RULES R2.5).

The lifecycle lives in ``states.py`` as pure code; the timestamps here record when each transition
happened, so figures (time to acceptance, completion rate) read straight from the row. Every table that
concerns a patient carries ``person_id`` (DESIGN: Scale).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from onetrip.db.base import Base, IdMixin, JSONVariant, TimestampMixin, VersionedMixin


class Referral(IdMixin, TimestampMixin, VersionedMixin, Base):
    """One referral, upward (branch → lead hospital) or downward (lead hospital → branch)."""

    __tablename__ = "referral"
    __table_args__ = (
        Index("ix_referral_to_status", "to_organization_id", "status"),
        Index("ix_referral_from_status", "from_organization_id", "status"),
        Index("ix_referral_person", "person_id", "created_at"),
        Index("ix_referral_status_due", "status", "due_at"),
        Index("ix_referral_submitted", "submitted_at"),
    )
    person_id: Mapped[str] = mapped_column(ForeignKey("person.id"))
    patient_record_id: Mapped[str | None] = mapped_column(ForeignKey("patient_record.id"),
                                                          doc="the sender's record of the patient")
    direction: Mapped[str] = mapped_column(String(4), doc="up | down")
    status: Mapped[str] = mapped_column(String(12), doc="states.Status")
    urgent: Mapped[bool] = mapped_column(default=False)
    source: Mapped[str] = mapped_column(String(32), doc="web | fhir | chronic-followup | demo ...")
    from_organization_id: Mapped[str] = mapped_column(ForeignKey("organization.id"))
    from_department_id: Mapped[str | None] = mapped_column(ForeignKey("department.id"))
    requester_user_id: Mapped[str | None] = mapped_column(ForeignKey("app_user.id"))
    requester_name: Mapped[str | None] = mapped_column(String(64))
    to_organization_id: Mapped[str | None] = mapped_column(ForeignKey("organization.id"))
    to_department_id: Mapped[str | None] = mapped_column(ForeignKey("department.id"))
    receiver_user_id: Mapped[str | None] = mapped_column(ForeignKey("app_user.id"))
    receiver_name: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    criteria_codes: Mapped[list[str]] = mapped_column(JSONVariant, default=list, doc="R2.1 / R2.2 pick-list")
    diagnoses: Mapped[list[dict]] = mapped_column(JSONVariant, default=list,
                                                  doc="[{code, display}] ICD-10 国家临床版")
    history_summary: Mapped[str | None] = mapped_column(Text)
    treatment_summary: Mapped[str | None] = mapped_column(Text)
    medications: Mapped[list[dict]] = mapped_column(JSONVariant, default=list,
                                                    doc="[{name, dose, code?}] current medication")
    discharge_summary: Mapped[str | None] = mapped_column(Text, doc="downward (R2.3)")
    rehab_plan: Mapped[str | None] = mapped_column(Text, doc="downward (R2.3)")
    note: Mapped[str | None] = mapped_column(Text)
    reject_reason: Mapped[str | None] = mapped_column(String(500))
    cancel_reason: Mapped[str | None] = mapped_column(String(500))
    submitted_at: Mapped[dt.datetime | None]
    due_at: Mapped[dt.datetime | None] = mapped_column(doc="the receiving side must act before this (SLA)")
    escalate_at: Mapped[dt.datetime | None] = mapped_column(doc="when the department head is alerted")
    escalated_at: Mapped[dt.datetime | None]
    accepted_at: Mapped[dt.datetime | None]
    rejected_at: Mapped[dt.datetime | None]
    scheduled_at: Mapped[dt.datetime | None]
    arrived_at: Mapped[dt.datetime | None]
    completed_at: Mapped[dt.datetime | None]
    cancelled_at: Mapped[dt.datetime | None]
    expired_at: Mapped[dt.datetime | None]
    appointment_id: Mapped[str | None] = mapped_column(ForeignKey("sched_appointment.id"))
    reserved_slot: Mapped[bool] = mapped_column(default=False, doc="booked one of the slots held for referrals")
    access_until: Mapped[dt.datetime | None] = mapped_column(doc="end of the receiver's read access")


class ReferralFollowUp(IdMixin, TimestampMixin, Base):
    """A follow-up at the branch after a referral (RULES R2.5: within 2 weeks)."""

    __tablename__ = "referral_followup"
    __table_args__ = (
        Index("ix_referral_followup_org_status", "organization_id", "status", "due_on"),
        Index("ix_referral_followup_person", "person_id"),
    )
    referral_id: Mapped[str] = mapped_column(ForeignKey("referral.id"), index=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("person.id"))
    organization_id: Mapped[str] = mapped_column(ForeignKey("organization.id"), doc="the branch that follows up")
    kind: Mapped[str] = mapped_column(String(16), doc="visit | phone")
    due_on: Mapped[dt.date]
    status: Mapped[str] = mapped_column(String(12), default="open", doc="open | done | cancelled")
    done_at: Mapped[dt.datetime | None]
    done_by: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(String(500))
