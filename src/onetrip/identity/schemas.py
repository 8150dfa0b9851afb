"""The shape of a patient registration as services accept it (the FHIR and web layers map onto it)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field


class PatientInput(BaseModel):
    organization_id: str
    mrn: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=64)
    sex: str | None = None  # GB/T 2261.1 code, 男/女, or FHIR gender
    birth_date: dt.date | None = None
    id_number: str | None = None
    phone: str | None = None
    province: str | None = None
    city: str | None = None
    district: str | None = None
    street: str | None = None
    address_line: str | None = None
    active: bool = True


class SearchParams(BaseModel):
    identifier: str | None = None  # resident ID, or MRN
    name: str | None = None  # Chinese (prefix) or pinyin (prefix)
    birth_date: dt.date | None = None
    birth_date_from: dt.date | None = None
    birth_date_to: dt.date | None = None
    sex: str | None = None
    phone: str | None = None
    organization_id: str | None = None
    count: int = 20
    offset: int = 0
