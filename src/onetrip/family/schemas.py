"""API shapes for /api/family and /api/devices (the FHIR shapes are in fhir.py / readings.py)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

from onetrip.kit.clock import ServiceDate


class TeamIn(BaseModel):
    organization_id: str
    code: str = Field(min_length=1, max_length=32)
    name: str = Field(min_length=1, max_length=128)
    doctor_id: str
    nurse_id: str
    public_health_id: str
    specialist_id: str | None = None


class TeamOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    organization_id: str
    code: str
    name: str
    doctor_id: str
    nurse_id: str
    public_health_id: str
    specialist_id: str | None


class ContractIn(BaseModel):
    person_id: str
    team_id: str
    package: str = "basic"
    channel: str = "clinic"
    start_date: ServiceDate | None = None
    years: int | None = Field(default=None, ge=1, le=10)
    end_date: ServiceDate | None = None
    addons: list[str] = Field(default_factory=list, max_length=50)
    declared_groups: list[str] = Field(default_factory=list, max_length=10)


class RenewIn(BaseModel):
    years: int | None = Field(default=None, ge=1, le=10)
    package: str | None = None
    channel: str = "clinic"


class SwitchIn(BaseModel):
    team_id: str
    package: str = "basic"
    channel: str = "clinic"
    years: int | None = Field(default=None, ge=1, le=10)


class ContractOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    person_id: str
    organization_id: str
    team_id: str
    doctor_id: str
    package: str
    addons: list[str]
    start_date: dt.date
    end_date: dt.date
    status: str
    channel: str
    key_groups: list[str]
    declared_groups: list[str]
    end_reason: str | None
    previous_id: str | None


class EnrolIn(BaseModel):
    person_id: str
    programme: str
    organization_id: str | None = None
    team_id: str | None = None
    enrolled_on: ServiceDate | None = None
    diagnosis_code: str | None = Field(default=None, max_length=16)


class RegistryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    person_id: str
    programme: str
    organization_id: str
    team_id: str | None
    doctor_id: str | None
    enrolled_on: dt.date
    status: str
    last_visit_date: dt.date | None
    next_due_date: dt.date | None
    last_classification: str | None
    controlled: bool | None
    consecutive_uncontrolled: int


class FollowupIn(BaseModel):
    visit_date: ServiceDate | None = None
    method: str = "clinic"
    sbp: float | None = None
    dbp: float | None = None
    heart_rate: float | None = None
    fasting_glucose: float | None = None
    random_glucose: float | None = None
    weight_kg: float | None = None
    symptoms: list[str] = Field(default_factory=list, max_length=30)
    adverse_reaction: bool = False
    complication: bool = False
    pregnant_or_lactating: bool = False
    medication: list[dict] = Field(default_factory=list, max_length=30)
    adherence: str | None = None
    lifestyle: dict = Field(default_factory=dict)
    note: str | None = Field(default=None, max_length=2000)


class FollowupOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    registry_id: str
    person_id: str
    programme: str
    visit_date: dt.date
    sbp: float | None
    dbp: float | None
    fasting_glucose: float | None
    classification: str
    controlled: bool
    action: str
    on_schedule: bool
    next_due_date: dt.date
    urgent_reasons: list[str]
    referral_id: str | None


class RxItemIn(BaseModel):
    drug: str = Field(min_length=1, max_length=100)
    drug_class: str | None = Field(default=None, max_length=32)
    dose: str | None = Field(default=None, max_length=100)
    quantity: str | None = Field(default=None, max_length=50)
    indication: str | None = Field(default=None, max_length=50)


class LongRxIn(BaseModel):
    person_id: str
    items: list[RxItemIn] = Field(min_length=1, max_length=20)
    weeks: int = Field(ge=1, le=52)
    assessment: str | None = Field(default=None, max_length=4000)
    patient_confirmed: bool = False
    organization_id: str | None = None


class CollectIn(BaseModel):
    by_proxy: bool = False
    patient_id_number: str = Field(max_length=18)
    collector_name: str | None = Field(default=None, max_length=64)
    collector_id_number: str | None = Field(default=None, max_length=18)


class DeliveryIn(BaseModel):
    address: str = Field(min_length=1, max_length=255)
    carrier: str | None = Field(default=None, max_length=64)


class DeliveryStepIn(BaseModel):
    status: str
    tracking_no: str | None = Field(default=None, max_length=64)


class DeviceIn(BaseModel):
    kind: str
    serial: str = Field(min_length=1, max_length=64)
    person_id: str | None = None
    organization_id: str | None = None


class DeviceReadingIn(BaseModel):
    reading_id: str | None = Field(default=None, max_length=100, description="the device's own id (idempotency)")
    measured_at: dt.datetime | None = None
    sbp: float | None = None
    dbp: float | None = None
    pulse: float | None = None
    glucose: float | None = None
    glucose_context: str | None = None
    id_number: str | None = Field(default=None, max_length=18, description="kiosks: the patient's ID card")


class CheckInIn(BaseModel):
    person_id: str | None = None
    id_number: str | None = Field(default=None, max_length=18)
