"""The shapes the records service accepts and returns (the FHIR, REST and HL7 v2 layers map onto them)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field


class _ResultIn(BaseModel):
    """Common to every stored result. The patient is an existing PatientRecord id, or the MRN of the
    patient's record at the issuing organization."""

    organization_id: str = Field(description="issuing institution")
    patient_record_id: str | None = None
    mrn: str | None = None
    identifier_system: str = Field(min_length=1, max_length=200)
    identifier_value: str = Field(min_length=1, max_length=100)
    status: str = Field(default="final", max_length=24)
    code_local: str | None = Field(default=None, max_length=64)
    code_system: str | None = Field(default=None, max_length=100)
    code: str | None = Field(default=None, max_length=64)
    display: str | None = Field(default=None, max_length=200)
    resource: dict | None = Field(default=None, description="the validated FHIR JSON, when it came as FHIR")


class ObservationIn(_ResultIn):
    organization_id: str = Field(default="", description="issuing institution; inside a report, the report's")
    effective_at: dt.datetime | None = None  # defaults to the report's
    value_quantity: float | None = None
    value_string: str | None = Field(default=None, max_length=500)
    unit: str | None = Field(default=None, max_length=32)
    reference_low: float | None = None
    reference_high: float | None = None
    reference_text: str | None = Field(default=None, max_length=100)
    interpretation: str | None = Field(default=None, max_length=8)
    report_id: str | None = None


class ReportIn(_ResultIn):
    category: str = Field(default="other", max_length=16, description="lab / imaging / ultrasound / other")
    section: str | None = Field(default=None, max_length=16, description="chemistry, haematology, CT, MR, XR, US")
    effective_at: dt.datetime
    issued: dt.datetime | None = None
    conclusion: str | None = None
    recognition_mark: str | None = Field(default=None, max_length=16)
    service_request_id: str | None = None
    observations: list[ObservationIn] = Field(default_factory=list)
    result_ids: list[str] = Field(default_factory=list, description="already stored Observations to attach")


class ImagingStudyIn(_ResultIn):
    status: str = Field(default="available", max_length=24)
    modality: str | None = Field(default=None, max_length=8)
    series_count: int | None = Field(default=None, ge=0)
    instance_count: int | None = Field(default=None, ge=0)
    started_at: dt.datetime
    accession: str | None = Field(default=None, max_length=64)
    report_id: str | None = None


class ServiceRequestIn(_ResultIn):
    status: str = Field(default="active", max_length=24)
    intent: str = Field(default="order", max_length=24)
    authored_at: dt.datetime | None = None


class TimelineItem(BaseModel):
    """One result on a person's timeline."""

    resource_type: str  # DiagnosticReport | ImagingStudy
    id: str
    category: str
    section: str | None
    code: str | None
    code_local: str | None
    display: str | None
    status: str
    effective_at: dt.datetime
    issued: dt.datetime | None = None
    organization_id: str
    organization_name: str
    recognition_mark: str | None = None
    has_recognition_mark: bool = Field(description="RULES R1.4: carries HR or a regional xHR mark")
    validity_days: int | None = Field(description="RULES R1.6 window for this item; None when unknown")
    within_validity: bool
    conclusion: str | None = None
    observation_count: int = 0


class TrendPoint(BaseModel):
    observation_id: str
    report_id: str | None
    effective_at: dt.datetime
    value: float
    unit: str | None
    reference_low: float | None
    reference_high: float | None
    interpretation: str | None
    organization_id: str
    organization_name: str
