"""Shared results (互认 — mutual recognition), FHIR-aligned: orders (ServiceRequest), reports
(DiagnosticReport) with their observations, and imaging studies.

Every table carries ``person_id`` (the resident) and ``patient_record_id`` (the registration at the
issuing institution). The sender's identifier (system + value) is unique per issuing organization, so
a re-sent message or bundle finds the stored row instead of creating a second one. ``resource`` keeps the
validated FHIR JSON as received (ids rewritten to ours), so reads return what the sender said.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from onetrip.db.base import Base, IdMixin, JSONVariant, TimestampMixin


class _ResultColumns(IdMixin, TimestampMixin):
    person_id: Mapped[str] = mapped_column(ForeignKey("person.id"), doc="the resident")
    patient_record_id: Mapped[str] = mapped_column(ForeignKey("patient_record.id"))
    organization_id: Mapped[str] = mapped_column(ForeignKey("organization.id"), doc="issuing institution")
    identifier_system: Mapped[str] = mapped_column(String(200), doc="sender's identifier system")
    identifier_value: Mapped[str] = mapped_column(String(100), doc="sender's identifier value")
    status: Mapped[str] = mapped_column(String(24))
    code_local: Mapped[str | None] = mapped_column(String(64), doc="the institution's own item code")
    code_system: Mapped[str | None] = mapped_column(String(100), doc="standard code system, e.g. LOINC")
    code: Mapped[str | None] = mapped_column(String(64), doc="standard code, e.g. a LOINC code")
    display: Mapped[str | None] = mapped_column(String(200))
    resource: Mapped[dict] = mapped_column(JSONVariant, doc="validated FHIR JSON as stored")


class ServiceRequest(_ResultColumns, Base):
    """An order (检查/检验申请)."""

    __tablename__ = "rec_service_request"
    __table_args__ = (
        UniqueConstraint("organization_id", "identifier_system", "identifier_value"),
        Index("ix_rec_service_request_person", "person_id", "authored_at"),
    )
    intent: Mapped[str] = mapped_column(String(24))
    authored_at: Mapped[dt.datetime | None]


class DiagnosticReport(_ResultColumns, Base):
    """A report (检验/检查报告). ``category`` is lab / imaging / ultrasound / other; ``section`` the finer
    kind the validity window depends on (chemistry, haematology, CT, MR, XR, US)."""

    __tablename__ = "rec_diagnostic_report"
    __table_args__ = (
        UniqueConstraint("organization_id", "identifier_system", "identifier_value"),
        Index("ix_rec_diagnostic_report_person", "person_id", "effective_at"),
    )
    category: Mapped[str] = mapped_column(String(16))
    section: Mapped[str | None] = mapped_column(String(16))
    effective_at: Mapped[dt.datetime] = mapped_column(doc="when the specimen was taken / the exam done")
    issued: Mapped[dt.datetime | None] = mapped_column(doc="when the report was released")
    conclusion: Mapped[str | None] = mapped_column(Text)
    recognition_mark: Mapped[str | None] = mapped_column(String(16), doc='互认标识, e.g. "HR" or "浙HR"')
    service_request_id: Mapped[str | None] = mapped_column(ForeignKey("rec_service_request.id"))


class Observation(_ResultColumns, Base):
    """One result value (检验项目结果)."""

    __tablename__ = "rec_observation"
    __table_args__ = (
        UniqueConstraint("organization_id", "identifier_system", "identifier_value"),
        Index("ix_rec_observation_person_code", "person_id", "code", "effective_at"),
        Index("ix_rec_observation_report", "report_id"),
    )
    report_id: Mapped[str | None] = mapped_column(ForeignKey("rec_diagnostic_report.id"))
    effective_at: Mapped[dt.datetime]
    value_quantity: Mapped[float | None] = mapped_column(Float)
    value_string: Mapped[str | None] = mapped_column(String(500))
    unit: Mapped[str | None] = mapped_column(String(32))
    reference_low: Mapped[float | None] = mapped_column(Float)
    reference_high: Mapped[float | None] = mapped_column(Float)
    reference_text: Mapped[str | None] = mapped_column(String(100))
    interpretation: Mapped[str | None] = mapped_column(String(8), doc="v3 ObservationInterpretation: H, L, N, A...")


class ImagingStudy(_ResultColumns, Base):
    """An imaging study (影像检查) as held by the institution's PACS."""

    __tablename__ = "rec_imaging_study"
    __table_args__ = (
        UniqueConstraint("organization_id", "identifier_system", "identifier_value"),
        Index("ix_rec_imaging_study_person", "person_id", "started_at"),
    )
    modality: Mapped[str | None] = mapped_column(String(8), doc="DICOM modality: CT, MR, DX, CR, US...")
    series_count: Mapped[int | None] = mapped_column(Integer)
    instance_count: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[dt.datetime]
    accession: Mapped[str | None] = mapped_column(String(64), doc="accession number (检查号)")
    report_id: Mapped[str | None] = mapped_column(ForeignKey("rec_diagnostic_report.id"))


class ReportVersion(IdMixin, TimestampMixin, Base):
    """A superseded version of a report: when a corrected / amended report arrives under the same sender
    identifier, the stored report is updated in place (its id stays, so references hold) and what it said
    before — the report's columns and its observations — is kept here."""

    __tablename__ = "rec_report_version"
    __table_args__ = (UniqueConstraint("report_id", "version"),)
    report_id: Mapped[str] = mapped_column(ForeignKey("rec_diagnostic_report.id"), index=True)
    version: Mapped[int] = mapped_column(Integer, doc="1 = as first received, 2 = after the first correction ...")
    status: Mapped[str] = mapped_column(String(24), doc="the status the superseded version had")
    replaced_at: Mapped[dt.datetime]
    replaced_by: Mapped[str | None] = mapped_column(String(64), doc="who sent the correction")
    snapshot: Mapped[dict] = mapped_column(JSONVariant, doc="the report's columns and observations as they were")
