"""Family-doctor tables (家庭医生签约服务) and chronic-disease management (两慢病: hypertension and type 2
diabetes): teams, contracts, registries, follow-ups, self-check readings from kiosks and home devices,
alerts, long prescriptions (长期处方) and their delivery orders.

One active family doctor per resident (RULES R5.1) is enforced by the database: a partial unique index on
``fam_contract.person_id`` where ``status = 'active'`` (both SQLite and PostgreSQL support it), so two
concurrent signings cannot both succeed. Every table that concerns a patient carries ``person_id``.
``fam_registry`` keeps the patient's current state (last visit, next due date, control) so that worklists
are one indexed range scan over a team's or a doctor's registry rows.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import Float, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from onetrip.db.base import Base, IdMixin, JSONVariant, TimestampMixin, VersionedMixin


class Package(StrEnum):
    """R5.2: basic (basic medical care + public health) and personalised add-ons."""

    basic = "basic"
    personalised = "personalised"


class SigningChannel(StrEnum):
    clinic = "clinic"  # 门诊/上门 at the practice
    app = "app"  # 手机App / 小程序


class ContractStatus(StrEnum):
    active = "active"
    ended = "ended"  # renewed, switched or cancelled (see end_reason)
    expired = "expired"  # the term ran out without renewal


class Team(IdMixin, TimestampMixin, VersionedMixin, Base):
    """A family-doctor team (家庭医生团队): a doctor (the resident's 家庭医生), a nurse, a public-health
    physician and optionally a specialist from the lead hospital. Members are registry practitioners."""

    __tablename__ = "fam_team"
    __table_args__ = (UniqueConstraint("organization_id", "code"),)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organization.id"), index=True)
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(128))
    doctor_id: Mapped[str] = mapped_column(ForeignKey("practitioner.id"), index=True, doc="team lead, 家庭医生")
    nurse_id: Mapped[str] = mapped_column(ForeignKey("practitioner.id"))
    public_health_id: Mapped[str] = mapped_column(ForeignKey("practitioner.id"), doc="公卫医师")
    specialist_id: Mapped[str | None] = mapped_column(ForeignKey("practitioner.id"), doc="专科医生 (optional)")
    active: Mapped[bool] = mapped_column(default=True)


class Contract(IdMixin, TimestampMixin, VersionedMixin, Base):
    """A signed family-doctor contract (签约). ``end_date`` is the last day covered. A renewal or a switch
    ends this row (``status = ended``, ``end_reason``) and creates the next one (``previous_id``)."""

    __tablename__ = "fam_contract"
    __table_args__ = (
        Index("uq_fam_contract_active_person", "person_id", unique=True,
              sqlite_where=text("status = 'active'"), postgresql_where=text("status = 'active'")),
        Index("ix_fam_contract_team_status", "team_id", "status"),
        Index("ix_fam_contract_doctor_status", "doctor_id", "status"),
        Index("ix_fam_contract_org_status", "organization_id", "status"),
        Index("ix_fam_contract_person", "person_id", "start_date"),
    )
    person_id: Mapped[str] = mapped_column(ForeignKey("person.id"))
    organization_id: Mapped[str] = mapped_column(ForeignKey("organization.id"))
    team_id: Mapped[str] = mapped_column(ForeignKey("fam_team.id"))
    doctor_id: Mapped[str] = mapped_column(ForeignKey("practitioner.id"))
    package: Mapped[str] = mapped_column(String(16), doc="Package")
    addons: Mapped[list[str]] = mapped_column(JSONVariant, default=list, doc="personalised add-on items")
    start_date: Mapped[dt.date]
    end_date: Mapped[dt.date]
    status: Mapped[str] = mapped_column(String(16), doc="ContractStatus")
    channel: Mapped[str] = mapped_column(String(8), doc="SigningChannel")
    declared_groups: Mapped[list[str]] = mapped_column(JSONVariant, default=list,
                                                       doc="key groups declared at signing (pregnant, disabled...)")
    key_groups: Mapped[list[str]] = mapped_column(JSONVariant, default=list, doc="R5.3 groups at signing")
    signed_at: Mapped[dt.datetime]
    signed_by: Mapped[str | None] = mapped_column(String(64))
    ended_at: Mapped[dt.datetime | None]
    end_reason: Mapped[str | None] = mapped_column(String(16), doc="renewed | switched | cancelled | expired")
    previous_id: Mapped[str | None] = mapped_column(String(32), doc="the contract this one renews or replaces")


class Registry(IdMixin, TimestampMixin, VersionedMixin, Base):
    """Enrolment in a chronic-disease programme (高血压/2型糖尿病 专案管理) and the patient's current state,
    updated by every follow-up. One row per person and programme; a closed row is reopened."""

    __tablename__ = "fam_registry"
    __table_args__ = (
        UniqueConstraint("person_id", "programme"),
        Index("ix_fam_registry_team_due", "team_id", "status", "next_due_date"),
        Index("ix_fam_registry_doctor_due", "doctor_id", "status", "next_due_date"),
        Index("ix_fam_registry_org", "organization_id", "programme"),
    )
    person_id: Mapped[str] = mapped_column(ForeignKey("person.id"))
    programme: Mapped[str] = mapped_column(String(16), doc="hypertension | diabetes")
    organization_id: Mapped[str] = mapped_column(ForeignKey("organization.id"))
    team_id: Mapped[str | None] = mapped_column(ForeignKey("fam_team.id"))
    doctor_id: Mapped[str | None] = mapped_column(ForeignKey("practitioner.id"))
    diagnosis_code: Mapped[str | None] = mapped_column(String(16), doc="ICD-10, e.g. I10, E11")
    enrolled_on: Mapped[dt.date]
    status: Mapped[str] = mapped_column(String(8), default="active", doc="active | closed")
    closed_on: Mapped[dt.date | None]
    close_reason: Mapped[str | None] = mapped_column(String(32), doc="moved | deceased | misdiagnosis | ...")
    last_visit_date: Mapped[dt.date | None]
    next_due_date: Mapped[dt.date | None] = mapped_column(doc="R3.3: from the latest classification")
    last_classification: Mapped[str | None] = mapped_column(String(24))
    controlled: Mapped[bool | None] = mapped_column(doc="R3.5 at target at the latest follow-up")
    consecutive_uncontrolled: Mapped[int] = mapped_column(default=0)


class Followup(IdMixin, TimestampMixin, Base):
    """One follow-up (随访) with what was measured, the classification (R3.3) and the next due date."""

    __tablename__ = "fam_followup"
    __table_args__ = (
        Index("ix_fam_followup_registry_date", "registry_id", "visit_date"),
        Index("ix_fam_followup_person_date", "person_id", "visit_date"),
        Index("ix_fam_followup_org_date", "organization_id", "visit_date"),
    )
    registry_id: Mapped[str] = mapped_column(ForeignKey("fam_registry.id"))
    person_id: Mapped[str] = mapped_column(ForeignKey("person.id"))
    programme: Mapped[str] = mapped_column(String(16))
    organization_id: Mapped[str] = mapped_column(ForeignKey("organization.id"))
    team_id: Mapped[str | None] = mapped_column(String(32))
    doctor_id: Mapped[str | None] = mapped_column(String(32))
    visit_date: Mapped[dt.date]
    method: Mapped[str] = mapped_column(String(8), default="clinic", doc="clinic | home | phone")
    sbp: Mapped[float | None] = mapped_column(Float, doc="systolic mmHg")
    dbp: Mapped[float | None] = mapped_column(Float, doc="diastolic mmHg")
    heart_rate: Mapped[float | None] = mapped_column(Float)
    fasting_glucose: Mapped[float | None] = mapped_column(Float, doc="mmol/L")
    random_glucose: Mapped[float | None] = mapped_column(Float, doc="mmol/L")
    weight_kg: Mapped[float | None] = mapped_column(Float)
    symptoms: Mapped[list[str]] = mapped_column(JSONVariant, default=list)
    adverse_reaction: Mapped[bool] = mapped_column(default=False, doc="药物不良反应")
    complication: Mapped[bool] = mapped_column(default=False, doc="new or worse complication")
    medication: Mapped[list[dict]] = mapped_column(JSONVariant, default=list, doc="[{drug, dose, frequency}]")
    adherence: Mapped[str | None] = mapped_column(String(16), doc="regular | intermittent | none")
    lifestyle: Mapped[dict] = mapped_column(JSONVariant, default=dict,
                                            doc="smoking, drinking, exercise, salt, diet, psychology")
    classification: Mapped[str] = mapped_column(String(24))
    controlled: Mapped[bool]
    action: Mapped[str] = mapped_column(String(16), doc="continue | adjust | refer | refer_urgent")
    on_schedule: Mapped[bool] = mapped_column(doc="on or before the due date (R3.2)")
    next_due_date: Mapped[dt.date]
    urgent_reasons: Mapped[list[str]] = mapped_column(JSONVariant, default=list)
    referral_id: Mapped[str | None] = mapped_column(String(32), doc="the referral drafted (R3.3/R3.4)")
    note: Mapped[str | None] = mapped_column(Text)
    recorded_by: Mapped[str | None] = mapped_column(String(64))


class Device(IdMixin, TimestampMixin, Base):
    """A registered BP monitor or glucometer (home or clinic kiosk). The token is shown once; only its
    SHA-256 is stored (a random 256-bit token needs no slow hash)."""

    __tablename__ = "fam_device"
    person_id: Mapped[str | None] = mapped_column(ForeignKey("person.id"), index=True,
                                                  doc="home device: its owner; kiosk: null")
    organization_id: Mapped[str | None] = mapped_column(ForeignKey("organization.id"), doc="kiosk: where")
    kind: Mapped[str] = mapped_column(String(8), doc="bp | glucose | both")
    serial: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    active: Mapped[bool] = mapped_column(default=True)
    last_seen_at: Mapped[dt.datetime | None]
    registered_by: Mapped[str | None] = mapped_column(String(64))


class Reading(IdMixin, Base):
    """A self-check reading (自测): BP (LOINC 85354-9 panel, 8480-6 / 8462-4) or glucose (2339-0,
    1558-6 fasting, ...). The one place these live: FHIR Observations of these codes from kiosks and
    home devices are stored here (see readings.is_self_check); lab results stay in records."""

    __tablename__ = "fam_reading"
    __table_args__ = (
        Index("ix_fam_reading_person_time", "person_id", "measured_at"),
        UniqueConstraint("source_system", "source_id"),
    )
    person_id: Mapped[str] = mapped_column(ForeignKey("person.id"))
    measured_at: Mapped[dt.datetime]
    sbp: Mapped[float | None] = mapped_column(Float)
    dbp: Mapped[float | None] = mapped_column(Float)
    pulse: Mapped[float | None] = mapped_column(Float)
    glucose: Mapped[float | None] = mapped_column(Float, doc="mmol/L")
    glucose_context: Mapped[str | None] = mapped_column(String(12), doc="fasting | random | postprandial")
    source: Mapped[str] = mapped_column(String(8), doc="kiosk | home | fhir")
    device_id: Mapped[str | None] = mapped_column(ForeignKey("fam_device.id"))
    source_system: Mapped[str | None] = mapped_column(String(200), doc="sender identifier (idempotency)")
    source_id: Mapped[str | None] = mapped_column(String(100))
    alerts: Mapped[list[str]] = mapped_column(JSONVariant, default=list)
    resource: Mapped[dict | None] = mapped_column(JSONVariant, doc="the FHIR Observation as received")
    created_at: Mapped[dt.datetime]


class Alert(IdMixin, TimestampMixin, Base):
    """An out-of-range reading for the patient's team to act on."""

    __tablename__ = "fam_alert"
    __table_args__ = (
        Index("ix_fam_alert_team_open", "team_id", "acknowledged_at"),
        Index("ix_fam_alert_person", "person_id", "created_at"),
    )
    person_id: Mapped[str] = mapped_column(ForeignKey("person.id"))
    team_id: Mapped[str | None] = mapped_column(ForeignKey("fam_team.id"))
    reading_id: Mapped[str | None] = mapped_column(ForeignKey("fam_reading.id"))
    codes: Mapped[list[str]] = mapped_column(JSONVariant, default=list)
    summary: Mapped[str] = mapped_column(String(200))
    acknowledged_at: Mapped[dt.datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))


class LongPrescription(IdMixin, TimestampMixin, VersionedMixin, Base):
    """A long prescription (长期处方, RULES §4): up to 12 weeks for eligible stable patients; more than 4
    weeks carries the recorded assessment and the patient's confirmation. Collection by a proxy records
    both ID numbers (R4.4); display and exports mask them."""

    __tablename__ = "fam_long_rx"
    __table_args__ = (Index("ix_fam_long_rx_person", "person_id", "issued_at"),)
    person_id: Mapped[str] = mapped_column(ForeignKey("person.id"))
    registry_id: Mapped[str | None] = mapped_column(ForeignKey("fam_registry.id"))
    organization_id: Mapped[str] = mapped_column(ForeignKey("organization.id"))
    prescriber: Mapped[str] = mapped_column(String(64))
    items: Mapped[list[dict]] = mapped_column(JSONVariant, doc="[{drug, drug_class, dose, quantity, indication}]")
    weeks: Mapped[int]
    assessment: Mapped[str | None] = mapped_column(Text, doc="documented assessment (R4.2, > 4 weeks)")
    patient_confirmed: Mapped[bool] = mapped_column(default=False)
    confirmed_at: Mapped[dt.datetime | None]
    issued_at: Mapped[dt.datetime]
    status: Mapped[str] = mapped_column(String(12), default="issued", doc="issued | collected | delivering | delivered")
    collected_at: Mapped[dt.datetime | None]
    collected_by_proxy: Mapped[bool | None]
    collector_name: Mapped[str | None] = mapped_column(String(64))
    collector_id_number: Mapped[str | None] = mapped_column(String(18), doc="proxy's ID (R4.4)")
    patient_id_number: Mapped[str | None] = mapped_column(String(18), doc="patient's ID seen at pickup (R4.4)")


class DeliveryOrder(IdMixin, TimestampMixin, VersionedMixin, Base):
    """Home delivery of a long prescription: packed → sent → delivered."""

    __tablename__ = "fam_delivery"
    __table_args__ = (Index("ix_fam_delivery_status", "status", "created_at"),)
    prescription_id: Mapped[str] = mapped_column(ForeignKey("fam_long_rx.id"), index=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("person.id"))
    address: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(12), default="packed")
    packed_at: Mapped[dt.datetime | None]
    sent_at: Mapped[dt.datetime | None]
    delivered_at: Mapped[dt.datetime | None]
    carrier: Mapped[str | None] = mapped_column(String(64))
    tracking_no: Mapped[str | None] = mapped_column(String(64))
