"""Request and response shapes of /api/immunization (issue 20 points 2 and 3)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

VaccineCode = Literal["HepB", "BCG", "IPV", "bOPV", "DTaP", "DT", "MPSV-A", "MPSV-AC", "MMR", "JE-L", "JE-I",
                      "HepA-L", "HepA-I", "HPV2", "IIV"]  # = codes.VACCINES (test_desk_api checks they agree)
# R6.6: the trace code has 20 characters (stated in the document so a client knows; the service checks the rule
# value trace_code_length, which holds the same 20).
TraceCode = Annotated[str, Field(pattern=r"^[0-9A-Za-z]{20}$")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FridgeIn(_In):
    name: str = Field(min_length=1, max_length=64)
    frozen: bool = False


class FridgeOut(BaseModel):
    id: str
    organization_id: str
    name: str
    frozen: bool


class InboundIn(_In):
    """A delivery from the county CDC: one lot of one product, the trace codes of its smallest packages."""

    organization_id: str = Field(min_length=1, max_length=32, description="the receiving clinic")
    fridge_id: str | None = Field(default=None, max_length=32)
    vaccine_code: VaccineCode = Field(description="CodeSystem nip-vaccine (docs/immunization.md)")
    product_name: str = Field(min_length=1, max_length=128)
    holder: str = Field(min_length=1, max_length=128, description="marketing-authorisation holder")
    specification: str = Field(min_length=1, max_length=64)
    doses_per_package: int = Field(ge=1, le=20)
    lot_number: str = Field(min_length=1, max_length=64)
    expiry: dt.date
    trace_codes: list[TraceCode] = Field(min_length=1, max_length=5000,
                                         description="the 20-character codes of the smallest packages (R6.6)")
    inbound_ref: str | None = Field(default=None, max_length=64, description="the CDC's delivery number")


class InboundOut(BaseModel):
    lot_id: str
    product_id: str
    packages: int
    doses: int


class StockRow(BaseModel):
    fridge_id: str | None
    fridge_name: str | None
    vaccine_code: str
    product_name: str
    holder: str
    lot_number: str
    expiry: dt.date
    lot_status: str
    packages: int
    doses_left: int


class Question(BaseModel):
    key: str
    zh: str
    en: str


class DueDose(BaseModel):
    series: str
    vaccine_code: str
    vaccine_name: str
    dose_number: int
    status: str
    earliest: dt.date | None
    due: dt.date | None
    latest: dt.date | None
    alternatives: list[str] = Field(default_factory=list, description="other products of the group the first "
                                                                      "dose may be given with (JE-I, HepA-I)")


class ChildOut(BaseModel):
    """The identified child: due doses today (the forecast over the recorded doses) and the questions."""

    patient_id: str
    name: str
    birth_date: dt.date
    sex: str
    due: list[DueDose]
    given_today: list[str]
    questions: list[Question]


class CheckIn(_In):
    patient_id: str = Field(min_length=1, max_length=200, description="Patient id, or the certificate QR text")
    certificate: str | None = Field(default=None, max_length=200,
                                    description="the certificate QR scanned again for the patient check")
    trace_code: str = Field(max_length=64)
    answers: dict[str, bool] = Field(default_factory=dict, description="contraindication question → yes/no")


class RecordIn(CheckIn):
    site: str = Field(min_length=1, max_length=32)
    route: str = Field(pattern=r"^(IM|SC|ID|PO)$")


class DeskCheckOut(BaseModel):
    key: str
    ok: bool
    reason: str


class VerdictOut(BaseModel):
    ok: bool
    dose_number: int | None
    vaccine_code: str | None
    checks: list[DeskCheckOut]


class VaccinationOut(BaseModel):
    id: str
    patient_id: str
    vaccine_code: str
    dose_number: int
    # None for a dose given elsewhere (FHIR create, HL7 v2 VXU: issue 20 point 7) — only the desk fills them
    product_id: str | None
    holder: str | None
    trace_code: str | None
    lot_number: str | None
    expiry: dt.date | None
    occurred_at: str
    vaccinator_name: str | None
    site: str | None
    route: str | None
    status: str


class ObservationRow(BaseModel):
    vaccination_id: str
    patient_id: str
    name: str
    vaccine_code: str
    dose_number: int
    occurred_at: str
    minutes_left: int


class ErrorIn(_In):
    reason: str = Field(min_length=2, max_length=500)


class FridgeCreated(FridgeOut):
    sensor_key: str = Field(description="the sensor's key for X-Device-Token: shown once, only its hash is kept")


class ReadingIn(_In):
    fridge_id: str = Field(min_length=1, max_length=32)
    celsius: float = Field(ge=-90, le=60)
    measured_at: dt.datetime | None = Field(default=None, description="default: now")


class ReadingOut(BaseModel):
    id: str
    fridge_id: str
    celsius: float
    measured_at: str
    source: str
    excursion: bool
    alarm_id: str | None = None


class AlarmOut(BaseModel):
    id: str
    fridge_id: str
    celsius: float
    status: str
    lot_ids: list[str]
    created_at: str
    released_at: str | None
    released_by: str | None
    release_note: str | None


class ReleaseIn(_In):
    note: str = Field(min_length=2, max_length=1000, description="why the lots may be used again")


# --- AEFI reports (issue 20 point 5) ---

AefiSeverity = Literal["general", "serious", "death"]  # = rules.AEFI_SEVERITIES
AefiSymptom = Literal["fever", "local-reaction", "rash", "allergic", "convulsion", "other"]  # = rules.AEFI_SYMPTOMS


class AefiIn(_In):
    """A suspected adverse event following immunization: from the suspected dose (``vaccination_id``: the
    person and vaccine come from it) or from a patient record and a vaccine code. Times without a zone are
    China Standard Time."""

    vaccination_id: str | None = Field(default=None, max_length=32, description="the suspected dose")
    patient_id: str | None = Field(default=None, max_length=32, description="Patient id (without vaccination_id)")
    vaccine_code: VaccineCode | None = Field(default=None, description="needed without vaccination_id")
    onset_at: dt.datetime = Field(description="when the reaction began (after the dose)")
    discovered_at: dt.datetime = Field(description="when the clinic learnt of it: the deadline counts from here")
    severity: AefiSeverity = "general"
    cluster: bool = Field(default=False, description="a cluster (群体性) event")
    symptoms: list[AefiSymptom] = Field(default_factory=list, max_length=6)
    description: str | None = Field(default=None, max_length=2000)


class AefiCloseIn(_In):
    note: str = Field(min_length=2, max_length=2000, description="the outcome: why the report is closed")


class AefiOut(BaseModel):
    id: str
    patient_id: str
    name: str = Field(description="masked")
    organization_id: str
    vaccination_id: str | None
    vaccine_code: str
    onset_at: str
    discovered_at: str
    severity: str
    cluster: bool
    symptoms: list[str]
    description: str | None
    deadline_at: str
    status: str = Field(description="draft | reported | closed")
    state: str = Field(description="overdue | open | reported | closed")
    minutes_left: int | None = Field(description="to the deadline while a draft; negative: minutes past it")
    reported_at: str | None
    reported_by: str | None
    late: bool
    closed_at: str | None
    outcome: str | None


# --- programmes and coverage (issue 20 point 6) ---

class ProgrammeIn(_In):
    """A programme: a campaign by age on the reference date (defaults: rule value influenza_campaign) or a cohort
    reaching an age within the period (defaults: rule value hpv2_cohort)."""

    code: str = Field(min_length=1, max_length=32, pattern=r"^[0-9A-Za-z_.-]+$")
    name_zh: str = Field(min_length=1, max_length=128)
    name_en: str = Field(min_length=1, max_length=128)
    kind: Literal["campaign", "cohort"]
    vaccine_code: VaccineCode | None = Field(default=None, description="default: from the rule value")
    min_age_years: int | None = Field(default=None, ge=0, le=130, description="cohort: the age reached")
    max_age_years: int | None = Field(default=None, ge=0, le=130)
    reference_date: dt.date | None = Field(default=None, description="campaign ages are counted on this day "
                                                                     "(default: start_date)")
    sex: Literal["female", "male"] | None = None
    organization_id: str | None = Field(default=None, max_length=32, description="default: your institution")
    township: str | None = Field(default=None, max_length=64, description="乡镇/街道 of the person index")
    start_date: dt.date
    end_date: dt.date
    free: bool | None = None


class CoverageOut(BaseModel):
    eligible: int
    invited: int = Field(description="invitations not marked ineligible")
    notified: int = Field(description="invitations sent through notifications")
    no_contact: int = Field(description="invited but no phone to send to")
    vaccinated: int
    declined: int
    percent: float | None = Field(description="vaccinated / eligible × 100, one decimal; none without eligibles")


class ProgrammeOut(BaseModel):
    id: str
    code: str
    name_zh: str
    name_en: str
    kind: str
    vaccine_code: str
    min_age_years: int | None
    max_age_years: int | None
    reference_date: dt.date
    sex: str | None
    organization_id: str
    township: str | None
    start_date: dt.date
    end_date: dt.date
    free: bool
    status: str
    coverage: CoverageOut | None = None


class EligibleOut(BaseModel):
    person_id: str
    patient_id: str | None
    name: str = Field(description="masked")
    id_number: str = Field(description="masked")
    phone: str = Field(description="masked")
    birth_date: dt.date
    age: int = Field(description="whole years on the reference date (cohort: the age reached in the period)")
    township: str | None
    invitation: str | None = Field(description="invited | vaccinated | declined | ineligible; none: not yet")
    forecast_dose: int | None = Field(default=None, description="cohort: the forecaster's next dose of the vaccine")
    forecast_status: str | None = Field(default=None, description="complete | due | overdue | notdue")
    forecast_earliest: dt.date | None = None


class InviteOut(BaseModel):
    sent: int = Field(description="notifications queued now")
    already: int = Field(description="invited before: nothing sent again")
    no_contact: int = Field(description="no phone of their own or of a guardian: nothing sent")
    ineligible: int = Field(description="earlier invitations whose person is no longer eligible")


class RemindOut(BaseModel):
    children: int
    sent: int
    already: int
    no_contact: int


# --- cold chain pages and the manual-record check; desk lookup by ID; alternatives (issue 20 point 4) ---

class ManualCheckOut(BaseModel):
    """A fridge's manual temperature record of one day (R6.7: morning and afternoon, >= 6 h apart)."""

    fridge_id: str
    fridge_name: str
    organization_id: str
    date: dt.date
    status: str = Field(description="complete | missing-both | missing-morning | missing-afternoon | too-close | "
                                    "too-few")
    morning: str | None = Field(description="local time HH:MM of the first morning record")
    afternoon: str | None = Field(description="local time HH:MM of the last afternoon record")
    records: int
