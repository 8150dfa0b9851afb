"""Analytics tables.

* ``encounter``: a visit (就诊) — nobody else records visits yet, and 基层就诊率 / 县域就诊率 need them.
* ``analytics_fact``: daily facts (one count per day × measure × institution × department × bucket),
  maintained incrementally from the outbox and the audit log (``analytics_cursor``), never computed
  when a page opens.
* ``analytics_contract`` / ``analytics_enrolment`` / ``analytics_followup``: small projections of the
  family-doctor events (contract.*, registry.enrolled, followup.recorded) for stock indicators
  (签约率, 管理率, 规范管理率, 控制率) that are states on a date rather than daily counts.
* ``analytics_catchment``: the denominators (resident population, estimated patients) per institution.
* ``analytics_report``: the archive of generated report forms.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from onetrip.db.base import Base, IdMixin, TimestampMixin

# FHIR Encounter.class (v3 ActCode) values we record; AMB + EMER are 门急诊, IMP is 住院.
ENCOUNTER_CLASSES = ("AMB", "EMER", "IMP")
ORG_LEVELS = ("primary", "county", "outside")


class Encounter(IdMixin, TimestampMixin, Base):
    """One visit of a resident. ``organization_level`` is fixed when recorded (primary = 基层: branch
    centres and stations; county = county/district hospitals; outside = 县域外, then the institution is
    named in ``outside_institution`` and ``organization_id`` is empty)."""

    __tablename__ = "encounter"
    __table_args__ = (Index("ix_encounter_visit_date_org", "visit_date", "organization_id"),)
    person_id: Mapped[str] = mapped_column(ForeignKey("person.id"), index=True)
    patient_record_id: Mapped[str | None] = mapped_column(ForeignKey("patient_record.id"))
    organization_id: Mapped[str | None] = mapped_column(ForeignKey("organization.id"))
    department_id: Mapped[str | None] = mapped_column(ForeignKey("department.id"))
    community_id: Mapped[str | None] = mapped_column(ForeignKey("medical_community.id"),
                                                     doc="the institution's (or, outside, the resident's) 医共体")
    organization_level: Mapped[str] = mapped_column(String(8), doc="primary | county | outside")
    in_county: Mapped[bool] = mapped_column(doc="县域内: the visit happened inside the county/district")
    encounter_class: Mapped[str] = mapped_column(String(8), doc="AMB 门诊 | EMER 急诊 | IMP 住院")
    visit_date: Mapped[dt.date] = mapped_column(doc="local (Asia/Shanghai) date of the visit")
    status: Mapped[str] = mapped_column(String(16), default="finished")
    outside_institution: Mapped[str | None] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(String(16), default="api", doc="api | fhir | his | demo")


class AnalyticsFact(Base):
    """A daily count. ``organization_id``/``department_id`` are '' when not applicable (a primary key
    cannot hold NULL); ``bucket`` splits a measure into a histogram (exam wait in days), else 0."""

    __tablename__ = "analytics_fact"
    __table_args__ = (Index("ix_analytics_fact_day", "day"),)
    measure: Mapped[str] = mapped_column(String(32), primary_key=True)
    day: Mapped[dt.date] = mapped_column(primary_key=True)
    community_id: Mapped[str] = mapped_column(String(32), primary_key=True, doc="医共体 of the institution (or resident)")
    organization_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    department_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    bucket: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


class AnalyticsFactMonth(Base):
    """The daily facts summed per calendar month (``month`` = its first day), kept in step with
    ``analytics_fact`` for the days each update touches: the cockpit's month ranges read ~30× fewer rows."""

    __tablename__ = "analytics_fact_month"
    measure: Mapped[str] = mapped_column(String(32), primary_key=True)
    month: Mapped[dt.date] = mapped_column(primary_key=True)
    community_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    organization_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    department_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    bucket: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


class AnalyticsCursor(Base):
    """How far this consumer has read a log (``outbox`` by OutboxEvent.id, ``audit`` by AuditEvent.seq).
    The outbox's ``published_at`` belongs to notifications and is never touched here."""

    __tablename__ = "analytics_cursor"
    consumer: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_id: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[dt.datetime]


class AnalyticsReferral(Base):
    """Projection of referral.* events (双向转诊): the direction, the sender and the day it was submitted."""

    __tablename__ = "analytics_referral"
    referral_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    direction: Mapped[str] = mapped_column(String(4), doc="up | down")
    from_organization_id: Mapped[str] = mapped_column(String(32))
    to_department_id: Mapped[str | None] = mapped_column(String(32))
    submitted_on: Mapped[dt.date | None] = mapped_column(index=True, doc="local date of submission")


class AnalyticsContract(Base):
    """Projection of contract.signed / contract.ended (签约)."""

    __tablename__ = "analytics_contract"
    contract_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    person_id: Mapped[str | None] = mapped_column(String(32))
    organization_id: Mapped[str] = mapped_column(String(32), index=True)
    start_date: Mapped[dt.date]
    end_date: Mapped[dt.date | None]
    key_group: Mapped[bool] = mapped_column(default=False, doc="belongs to at least one key group (重点人群)")


class AnalyticsEnrolment(Base):
    """Projection of registry.enrolled / registry.closed: a managed chronic patient (管理)."""

    __tablename__ = "analytics_enrolment"
    programme: Mapped[str] = mapped_column(String(16), primary_key=True, doc="hypertension | diabetes")
    person_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    organization_id: Mapped[str] = mapped_column(String(32), index=True)
    enrolled_on: Mapped[dt.date]
    closed_on: Mapped[dt.date | None] = mapped_column(doc="registry.closed: no longer managed from this day")


class AnalyticsFollowup(Base):
    """Projection of followup.recorded (随访)."""

    __tablename__ = "analytics_followup"
    __table_args__ = (Index("ix_analytics_followup_person", "programme", "person_id", "visit_date"),)
    followup_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    programme: Mapped[str] = mapped_column(String(16))
    person_id: Mapped[str | None] = mapped_column(String(32))
    organization_id: Mapped[str] = mapped_column(String(32))
    visit_date: Mapped[dt.date]
    controlled: Mapped[bool]
    on_schedule: Mapped[bool]


class AnalyticsCatchment(TimestampMixin, Base):
    """Denominators per institution (服务人口): residents, estimated hypertension and diabetes patients.
    Set by an operator (``onetrip analytics catchment``); the demo fills them."""

    __tablename__ = "analytics_catchment"
    organization_id: Mapped[str] = mapped_column(ForeignKey("organization.id"), primary_key=True)
    residents: Mapped[int] = mapped_column(BigInteger)
    hypertension_estimated: Mapped[int | None] = mapped_column(BigInteger)
    diabetes_estimated: Mapped[int | None] = mapped_column(BigInteger)


class AnalyticsReport(IdMixin, Base):
    """A generated report form (monthly or quarterly, one institution or the whole district)."""

    __tablename__ = "analytics_report"
    __table_args__ = (UniqueConstraint("kind", "period", "scope", "fmt"),)
    kind: Mapped[str] = mapped_column(String(12), doc="monthly | quarterly")
    period: Mapped[str] = mapped_column(String(8), doc="2026-10 or 2026-Q4")
    scope: Mapped[str] = mapped_column(String(32), doc="an organization id, or 'district'")
    fmt: Mapped[str] = mapped_column(String(4), doc="xlsx | csv")
    filename: Mapped[str] = mapped_column(String(200))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    generated_at: Mapped[dt.datetime]
    generated_by: Mapped[str] = mapped_column(String(64), doc="a username, or 'schedule'")
