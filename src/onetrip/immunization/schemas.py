"""Request and response shapes of /api/immunization (issue 20 points 2 and 3)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

VaccineCode = Literal["HepB", "BCG", "IPV", "bOPV", "DTaP", "DT", "MPSV-A", "MPSV-AC", "MMR", "JE-L", "JE-I",
                      "HepA-L", "HepA-I", "HPV2"]  # = codes.VACCINES (test_desk_api checks they agree)
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
    product_id: str
    holder: str
    trace_code: str
    lot_number: str
    expiry: dt.date
    occurred_at: str
    vaccinator_name: str
    site: str
    route: str
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
