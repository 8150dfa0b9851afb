"""API shapes for /api/recognition (the CDS Hooks cards are built in cds_hooks.py)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class CheckIn(BaseModel):
    person_id: str = Field(min_length=1, max_length=32)
    item_code: str = Field(min_length=1, max_length=64)
    ordering_org_id: str = Field(min_length=1, max_length=32)
    department_id: str | None = Field(default=None, max_length=32,
                                      description="ordering department; default: the doctor's own")


class PriorOut(BaseModel):
    """A recognisable prior result as the API shows it (the service's ``RecognisablePrior`` adds its check id)."""

    report_id: str
    code: str | None
    code_local: str | None
    display: str | None
    category: str
    effective_at: dt.datetime
    organization_id: str
    organization_name: str
    recognition_mark: str | None
    validity_days: int
    price: Decimal


class CheckOut(BaseModel):
    check_id: str
    priors: list[PriorOut]


class DecisionIn(BaseModel):
    check_id: str = Field(min_length=1, max_length=32)
    decision: Literal["recognised", "repeated"]
    reason_code: str | None = Field(default=None, max_length=4)
    disease: str | None = Field(default=None, max_length=200)
    remark: str | None = Field(default=None, max_length=2000)


class DecisionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    check_id: str
    decision: str
    reason_code: str | None
    disease: str | None
