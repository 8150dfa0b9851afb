"""Shapes of the referral REST API."""

from __future__ import annotations

from pydantic import BaseModel, Field

from onetrip.kit.clock import local_iso


class Diagnosis(BaseModel):
    code: str = Field(max_length=16, description="ICD-10 国家临床版 code from the seeded list")
    display: str | None = Field(default=None, max_length=200)


class Medication(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    dose: str | None = Field(default=None, max_length=100)
    code: str | None = Field(default=None, max_length=64)


class ReferralIn(BaseModel):
    person_id: str | None = Field(default=None, description="the resident (or give patient_record_id)")
    patient_record_id: str | None = Field(default=None, description="the sender's record of the patient")
    direction: str = Field(pattern="^(up|down)$")
    to_organization_id: str | None = None
    department_id: str | None = Field(default=None, description="receiving department (default 基层科 upward)")
    reason: str = Field(default="", max_length=2000)
    criteria_codes: list[str] = Field(default_factory=list, max_length=12)
    urgent: bool = False
    diagnoses: list[Diagnosis] = Field(default_factory=list, max_length=20)
    history_summary: str | None = Field(default=None, max_length=4000)
    treatment_summary: str | None = Field(default=None, max_length=4000)
    medications: list[Medication] = Field(default_factory=list, max_length=50)
    discharge_summary: str | None = Field(default=None, max_length=8000)
    rehab_plan: str | None = Field(default=None, max_length=4000)
    note: str | None = Field(default=None, max_length=2000)
    submit: bool = Field(default=False, description="send at once (draft + submit in one transaction)")
    slot_id: str | None = Field(default=None, description="with submit: book this reserved slot (号源下沉)")
    exam_code: str | None = Field(default=None, max_length=32)


class ReferralChange(BaseModel):
    to_organization_id: str | None = None
    to_department_id: str | None = None
    reason: str | None = Field(default=None, max_length=2000)
    criteria_codes: list[str] | None = Field(default=None, max_length=12)
    urgent: bool | None = None
    diagnoses: list[Diagnosis] | None = Field(default=None, max_length=20)
    history_summary: str | None = Field(default=None, max_length=4000)
    treatment_summary: str | None = Field(default=None, max_length=4000)
    medications: list[Medication] | None = Field(default=None, max_length=50)
    discharge_summary: str | None = Field(default=None, max_length=8000)
    rehab_plan: str | None = Field(default=None, max_length=4000)
    note: str | None = Field(default=None, max_length=2000)


class ActionIn(BaseModel):
    reason: str | None = Field(default=None, max_length=500, description="reject (required) / cancel")
    note: str | None = Field(default=None, max_length=500)
    slot_id: str | None = None
    exam_code: str | None = Field(default=None, max_length=32)
    appointment_id: str | None = None


class ReferralOut(BaseModel):
    id: str
    status: str
    direction: str
    urgent: bool
    source: str
    person_id: str
    patient_record_id: str | None
    from_organization_id: str
    to_organization_id: str | None
    to_department_id: str | None
    requester_name: str | None
    receiver_name: str | None
    reason: str
    criteria_codes: list[str]
    diagnoses: list[dict]
    medications: list[dict]
    history_summary: str | None
    treatment_summary: str | None
    discharge_summary: str | None
    rehab_plan: str | None
    note: str | None
    reject_reason: str | None
    cancel_reason: str | None
    appointment_id: str | None
    reserved_slot: bool
    created_at: str
    submitted_at: str | None
    due_at: str | None
    escalate_at: str | None
    escalated_at: str | None
    accepted_at: str | None
    rejected_at: str | None
    scheduled_at: str | None
    arrived_at: str | None
    completed_at: str | None
    cancelled_at: str | None
    expired_at: str | None
    access_until: str | None
    sla: str | None = None
    allowed_actions: list[str] = Field(default_factory=list)
    ui_url: str


class WorklistRow(BaseModel):
    id: str
    status: str
    direction: str
    urgent: bool
    patient_name: str
    id_number_masked: str
    from_organization_id: str
    to_organization_id: str | None
    submitted_at: str | None
    due_at: str | None
    sla: str
    minutes_left: int | None


class Worklist(BaseModel):
    total: int
    items: list[WorklistRow]


class FollowUpOut(BaseModel):
    id: str
    referral_id: str
    person_id: str
    patient_name: str
    organization_id: str
    kind: str
    due_on: str
    status: str


def iso(t) -> str | None:
    return local_iso(t) if t else None
