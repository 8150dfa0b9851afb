"""Scheduling tables: what can be booked (resources, weekly templates, closures, the exam catalogue),
the bookable places (slots) and the bookings (appointments), plus the exam orders an itinerary plans.

Capacity is enforced by the database: a slot's ``booked`` only moves through conditional UPDATEs
(``repository.take_reserved``, ``repository.general_place``) and CHECK constraints refuse
``booked > capacity`` whatever the code does.
Every table that concerns a patient carries ``person_id`` (DESIGN: Scale).
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import CheckConstraint, Float, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from onetrip.db.base import Base, IdMixin, JSONVariant, TimestampMixin, VersionedMixin


class ResourceKind(StrEnum):
    device = "device"  # CT, MRI, DR, ultrasound machine
    room = "room"  # endoscopy room, procedure room
    clinic_session = "clinic_session"  # a doctor's outpatient session (门诊出诊)


class Channel(StrEnum):
    """The five booking channels (issue 5): 电话 / 诊间 / 自助机 / 网站 / 手机App."""

    phone = "phone"
    clinic = "clinic"
    kiosk = "kiosk"
    web = "web"
    app = "app"


class AppointmentStatus(StrEnum):
    """FHIR Appointment.status values we use. ``pending`` is a hold (占号) that expires."""

    pending = "pending"
    booked = "booked"
    checked_in = "checked-in"
    fulfilled = "fulfilled"
    cancelled = "cancelled"
    noshow = "noshow"


ACTIVE_STATUSES = (AppointmentStatus.pending, AppointmentStatus.booked, AppointmentStatus.checked_in,
                   AppointmentStatus.fulfilled)


class ExamType(IdMixin, TimestampMixin, Base):
    """The exam catalogue (检查项目): what an exam takes and how the patient prepares. Admin-editable;
    seeded from ``db/seeds/exam_catalogue.json``. ``tags`` drive the itinerary rules (rules.py):
    fasting, breaks_fast, abdominal_us, gi_endoscopy, barium, abdominal_ct, iodinated_contrast."""

    __tablename__ = "exam_type"
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(64), doc="Chinese name")
    name_en: Mapped[str] = mapped_column(String(128))
    modality: Mapped[str] = mapped_column(String(16), doc="DICOM-ish: CT, MR, DX, US, ES (endoscopy), RF, CLINIC")
    duration_minutes: Mapped[int]
    tags: Mapped[list[str]] = mapped_column(JSONVariant, default=list)
    prep_zh: Mapped[str | None] = mapped_column(String(1000), doc="检查前准备 (shown and printed)")
    prep_en: Mapped[str | None] = mapped_column(String(1000))
    active: Mapped[bool] = mapped_column(default=True)


class Resource(IdMixin, TimestampMixin, VersionedMixin, Base):
    """A bookable device, room or clinic session of one institution (FHIR Schedule.actor)."""

    __tablename__ = "sched_resource"
    __table_args__ = (UniqueConstraint("organization_id", "code"),)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organization.id"), index=True)
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16), doc="ResourceKind")
    modality: Mapped[str] = mapped_column(String(16))
    exam_codes: Mapped[list[str]] = mapped_column(JSONVariant, default=list, doc="exams performed here")
    practitioner_id: Mapped[str | None] = mapped_column(ForeignKey("practitioner.id"))
    campus: Mapped[str | None] = mapped_column(String(32), doc="院区 code within the organization (a Site); "
                                               "none = the organization's main site")
    department_id: Mapped[str | None] = mapped_column(ForeignKey("department.id"))
    active: Mapped[bool] = mapped_column(default=True)


class Site(IdMixin, TimestampMixin, Base):
    """A place a patient travels to (院区): an organization, or one campus of it, with its address and
    coordinates where known. A resource without ``campus`` is at the organization's main site (a row here
    is optional: without one the organization's own name and address serve). Itinerary trips are counted
    per (day, site) — issue 17."""

    __tablename__ = "sched_site"
    __table_args__ = (UniqueConstraint("organization_id", "campus"),)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organization.id"), index=True)
    campus: Mapped[str] = mapped_column(String(32), default="", doc="'' = the main site")
    name: Mapped[str] = mapped_column(String(128))
    address: Mapped[str | None] = mapped_column(String(255))
    latitude: Mapped[float | None] = mapped_column(Float, doc="WGS-84 degrees, where known")
    longitude: Mapped[float | None] = mapped_column(Float)


class WeeklyTemplate(IdMixin, TimestampMixin, Base):
    """One working block of a resource on a weekday (breaks are the gaps between blocks). Local time
    (Asia/Shanghai). ``reserved_share`` of each slot's places is held for ``reserved_purpose`` (R2.4)."""

    __tablename__ = "sched_template"
    __table_args__ = (
        Index("ix_sched_template_resource_weekday", "resource_id", "weekday"),
        CheckConstraint("weekday >= 0 AND weekday <= 6", name="weekday_range"),
        CheckConstraint("slot_minutes > 0 AND capacity > 0", name="positive"),
    )
    resource_id: Mapped[str] = mapped_column(ForeignKey("sched_resource.id"))
    weekday: Mapped[int] = mapped_column(doc="0 = Monday (ISO weekday - 1)")
    start_time: Mapped[str] = mapped_column(String(5), doc="HH:MM local")
    end_time: Mapped[str] = mapped_column(String(5), doc="HH:MM local")
    slot_minutes: Mapped[int]
    capacity: Mapped[int] = mapped_column(default=1, doc="places per slot")
    reserved_share: Mapped[float | None] = mapped_column(doc="null → scheduling.reserved_share rule")
    reserved_purpose: Mapped[str | None] = mapped_column(String(32), doc="e.g. primary_care (号源下沉)")
    valid_from: Mapped[dt.date | None]
    valid_to: Mapped[dt.date | None]


class Closure(IdMixin, TimestampMixin, Base):
    """A resource (or, with no resource, the whole institution) closed on some dates: maintenance,
    training, a local event. Public holidays come from the calendar, not from this table."""

    __tablename__ = "sched_closure"
    organization_id: Mapped[str] = mapped_column(ForeignKey("organization.id"), index=True)
    resource_id: Mapped[str | None] = mapped_column(ForeignKey("sched_resource.id"), index=True)
    starts_on: Mapped[dt.date]
    ends_on: Mapped[dt.date]
    reason: Mapped[str | None] = mapped_column(String(255))


class Slot(IdMixin, TimestampMixin, Base):
    """A bookable time with ``capacity`` places (号源). ``booked`` counts holds and bookings; of the
    ``reserved`` places, ``reserved_booked`` are taken by bookings for ``reserved_purpose``. Unused
    reserved places are released (``reserved`` lowered to ``reserved_booked``) at ``release_at``."""

    __tablename__ = "sched_slot"
    __table_args__ = (
        UniqueConstraint("resource_id", "start"),
        Index("ix_sched_slot_org_start", "organization_id", "start"),
        Index("ix_sched_slot_release", "release_at"),
        CheckConstraint("booked >= 0 AND booked <= capacity", name="booked_within_capacity"),
        CheckConstraint("reserved >= 0 AND reserved <= capacity", name="reserved_within_capacity"),
        CheckConstraint("reserved_booked >= 0 AND reserved_booked <= reserved AND reserved_booked <= booked",
                        name="reserved_booked_within"),
    )
    resource_id: Mapped[str] = mapped_column(ForeignKey("sched_resource.id"))
    organization_id: Mapped[str] = mapped_column(ForeignKey("organization.id"))
    start: Mapped[dt.datetime]
    end: Mapped[dt.datetime]
    capacity: Mapped[int]
    booked: Mapped[int] = mapped_column(default=0)
    reserved: Mapped[int] = mapped_column(default=0)
    reserved_booked: Mapped[int] = mapped_column(default=0)
    reserved_purpose: Mapped[str | None] = mapped_column(String(32))
    release_at: Mapped[dt.datetime | None] = mapped_column(doc="when unused reserved places become general")
    blocked: Mapped[bool] = mapped_column(default=False, doc="closed after generation (closure added later)")


class ExamOrder(IdMixin, TimestampMixin, Base):
    """A pending exam order (FHIR ServiceRequest) waiting to be scheduled; the itinerary plans these."""

    __tablename__ = "sched_exam_order"
    __table_args__ = (Index("ix_sched_exam_order_person_status", "person_id", "status"),)
    person_id: Mapped[str] = mapped_column(ForeignKey("person.id"))
    patient_record_id: Mapped[str] = mapped_column(ForeignKey("patient_record.id"))
    organization_id: Mapped[str] = mapped_column(ForeignKey("organization.id"), doc="ordering institution")
    exam_code: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="pending", doc="pending | scheduled | cancelled")
    appointment_id: Mapped[str | None] = mapped_column(String(32))


class Appointment(IdMixin, TimestampMixin, VersionedMixin, Base):
    """A booking of one place in one slot for one patient (real-name: the record has a validated
    resident ID). ``precise`` marks a booking to an exact time slot (分时段预约, for 智慧预约率)."""

    __tablename__ = "sched_appointment"
    __table_args__ = (
        Index("ix_sched_appointment_person", "person_id", "start"),
        Index("ix_sched_appointment_slot", "slot_id"),
        Index("ix_sched_appointment_org_start", "organization_id", "start"),
    )
    person_id: Mapped[str] = mapped_column(ForeignKey("person.id"))
    patient_record_id: Mapped[str] = mapped_column(ForeignKey("patient_record.id"))
    organization_id: Mapped[str] = mapped_column(ForeignKey("organization.id"), doc="where the exam happens")
    booking_organization_id: Mapped[str | None] = mapped_column(ForeignKey("organization.id"),
                                                                doc="who booked (a branch for a referral)")
    slot_id: Mapped[str] = mapped_column(ForeignKey("sched_slot.id"))
    resource_id: Mapped[str] = mapped_column(ForeignKey("sched_resource.id"))
    exam_code: Mapped[str] = mapped_column(String(32))
    start: Mapped[dt.datetime]
    end: Mapped[dt.datetime]
    status: Mapped[str] = mapped_column(String(16), doc="AppointmentStatus")
    channel: Mapped[str] = mapped_column(String(8), doc="Channel")
    precise: Mapped[bool] = mapped_column(default=True)
    used_reserved: Mapped[bool] = mapped_column(default=False, doc="took one of the slot's reserved places")
    purpose: Mapped[str | None] = mapped_column(String(32))
    hold_expires_at: Mapped[dt.datetime | None]
    booked_at: Mapped[dt.datetime | None]
    checked_in_at: Mapped[dt.datetime | None]
    cancelled_at: Mapped[dt.datetime | None]
    cancel_reason: Mapped[str | None] = mapped_column(String(64))
    rescheduled_from_id: Mapped[str | None] = mapped_column(String(32))
    order_id: Mapped[str | None] = mapped_column(String(32))
    booked_by: Mapped[str | None] = mapped_column(String(64))
