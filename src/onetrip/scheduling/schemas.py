"""API shapes for /api/scheduling (the FHIR shapes are in fhir.py)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

from onetrip.kit.clock import ServiceDate


class ExamTypeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    code: str
    name: str
    name_en: str
    modality: str
    duration_minutes: int
    tags: list[str]
    prep_zh: str | None
    prep_en: str | None
    active: bool


class ExamTypeChange(BaseModel):
    name: str | None = None
    name_en: str | None = None
    modality: str | None = None
    duration_minutes: int | None = Field(default=None, gt=0, le=600)
    tags: list[str] | None = None
    prep_zh: str | None = Field(default=None, max_length=1000)
    prep_en: str | None = Field(default=None, max_length=1000)
    active: bool | None = None


class ResourceIn(BaseModel):
    organization_id: str
    code: str = Field(min_length=1, max_length=32)
    name: str = Field(min_length=1, max_length=128)
    kind: str
    modality: str = Field(max_length=16)
    exam_codes: list[str]
    practitioner_id: str | None = None
    department_id: str | None = None


class ResourceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    organization_id: str
    code: str
    name: str
    kind: str
    modality: str
    exam_codes: list[str]
    active: bool


class TemplateIn(BaseModel):
    weekday: int = Field(ge=0, le=6, description="0 = Monday")
    start_time: str = Field(pattern=r"^\d\d:\d\d$")
    end_time: str = Field(pattern=r"^\d\d:\d\d$")
    slot_minutes: int = Field(gt=0, le=480)
    capacity: int = Field(default=1, gt=0, le=500)
    reserved_share: float | None = Field(default=None, ge=0, le=1)
    reserved_purpose: str | None = None
    valid_from: ServiceDate | None = None
    valid_to: ServiceDate | None = None


class ClosureIn(BaseModel):
    organization_id: str
    resource_id: str | None = None
    starts_on: ServiceDate
    ends_on: dt.date
    reason: str | None = Field(default=None, max_length=255)


class GenerateIn(BaseModel):
    start: ServiceDate
    days: int = Field(default=14, gt=0, le=92)
    organization_id: str | None = None


class SlotOut(BaseModel):
    id: str
    resource_id: str
    organization_id: str
    start: str
    end: str
    capacity: int
    booked: int
    reserved: int
    free: int


class BookingIn(BaseModel):
    slot_id: str
    patient_record_id: str
    exam_code: str
    channel: str = Field(description="phone | clinic | kiosk | web | app")
    purpose: str | None = Field(default=None, description="e.g. primary_care: may use reserved places")
    hold: bool = Field(default=False, description="true: a hold (pending) to confirm later")
    order_id: str | None = None
    precise: bool = True


class AppointmentOut(BaseModel):
    id: str
    status: str
    person_id: str
    patient_record_id: str
    organization_id: str
    slot_id: str
    resource_id: str
    exam_code: str
    start: str
    end: str
    channel: str
    precise: bool
    hold_expires_at: str | None
    rescheduled_from_id: str | None
    order_id: str | None


class RescheduleIn(BaseModel):
    slot_id: str
    channel: str | None = None


class CancelIn(BaseModel):
    reason: str = "patient-request"


class OrderIn(BaseModel):
    patient_record_id: str
    exam_code: str


class ItineraryIn(BaseModel):
    patient_record_id: str
    exam_codes: list[str] | None = Field(default=None, description="default: the patient's pending orders")
    from_date: ServiceDate | None = None
    organization_ids: list[str] | None = Field(default=None, description="older spelling of `sites`")
    purpose: str | None = None
    sites: list[str] | None = Field(default=None, description="only these sites: organization ids, or "
                                    "`org:campus` for one campus. Default: the ordering institution, the "
                                    "patient's own and the lead hospital, and any site for an exam they lack")
    restrict_to_own: bool = Field(default=False, description="only the caller's own institution")
    sites_per_day: int | None = Field(default=None, ge=1, le=5, description="S1: how many sites the patient "
                                      "accepts on one day (default from the rule table: 1)")


class TripOut(BaseModel):
    """One trip: one visit to one site on one day (issue 17)."""

    date: str
    site: str
    site_name: str
    address: str | None
    items: list[str] = Field(description="the keys of the exams done on this trip, in order")


class ReasonOut(BaseModel):
    """Why nothing is feasible: the blocking rule (I1–I6, S1, S2) or ``capacity``."""

    rule: str
    exam: str | None = None
    zh: str
    en: str
    earliest: str | None = Field(default=None, description="first date the rule allows (rule vs a booked exam)")


class ItineraryItem(BaseModel):
    key: str
    order_id: str | None
    exam_code: str
    exam_name: str
    exam_name_en: str
    slot_id: str
    resource_id: str
    organization_id: str
    site: str = Field(description="site key: organization id, or `org:campus`")
    site_name: str
    address: str | None
    start: str
    end: str
    prep_zh: str | None
    prep_en: str | None


class ItineraryOut(BaseModel):
    solver: str
    status: str = Field(description="optimal | feasible | fallback | infeasible")
    trips: int = Field(description="distinct (day, site) pairs")
    onsite_minutes: int
    solve_ms: float
    items: list[ItineraryItem]
    trip_list: list[TripOut]
    explanation: list[dict[str, str]]
    unplaced: list[str]
    reasons: list[ReasonOut] = Field(default_factory=list, description="why nothing is feasible (status infeasible)")
    alternative: ItineraryOut | None = Field(default=None, description="when nothing is feasible as asked: the "
                                             "nearest itinerary a wider search finds (other sites, or two sites a day)")


class ItineraryBookIn(BaseModel):
    patient_record_id: str
    channel: str
    items: list[dict[str, str | None]] = Field(description="[{slot_id, exam_code, order_id?}]")
    sites_per_day: int | None = Field(default=None, ge=1, le=5, description="S1, as in the proposal")
