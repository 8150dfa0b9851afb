"""API shapes for /api/notify (the FHIR Subscription shape is in fhir.py)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

from onetrip.notify.models import Attempt, Delivery, Subscription


class SubscriptionIn(BaseModel):
    name: str = Field(min_length=1, max_length=200, description="who receives and why")
    endpoint: str = Field(max_length=2000, description="http(s) URL the events are POSTed to")
    event_types: list[str] = Field(min_length=1, max_length=50,
                                   description='patterns: "*", "referral.*", "appointment.booked"')
    headers: list[str] = Field(default_factory=list, max_length=10, description='extra "Name: value" headers')
    secret: str | None = Field(default=None, min_length=16, max_length=128,
                               description="HMAC-SHA256 key; generated when absent (shown once)")
    active: bool = True


class SubscriptionChange(BaseModel):
    name: str | None = Field(default=None, max_length=200)
    endpoint: str | None = Field(default=None, max_length=2000)
    event_types: list[str] | None = Field(default=None, min_length=1, max_length=50)
    headers: list[str] | None = Field(default=None, max_length=10)
    active: bool | None = None
    rotate_secret: bool = False


class SubscriptionOut(BaseModel):
    id: str
    kind: str
    name: str
    endpoint: str
    event_types: list[str]
    aggregate_type: str | None
    criteria: str | None
    payload: str
    headers: list[str]
    active: bool
    ends_at: dt.datetime | None
    created_at: dt.datetime
    created_by: str
    version: int
    secret: str | None = Field(default=None, description="only in the answer to create and rotate_secret")

    @classmethod
    def of(cls, s: Subscription, *, with_secret: bool = False) -> SubscriptionOut:
        # Header values may carry credentials: only their names are shown back.
        return cls(id=s.id, kind=s.kind, name=s.name, endpoint=s.endpoint, event_types=list(s.event_types),
                   aggregate_type=s.aggregate_type, criteria=s.criteria, payload=s.payload,
                   headers=[h.split(":", 1)[0] + ": ***" for h in s.headers or []], active=s.active,
                   ends_at=s.ends_at, created_at=s.created_at, created_by=s.created_by, version=s.version_id,
                   secret=s.secret if with_secret else None)


class AttemptOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    attempt_no: int
    started_at: dt.datetime
    duration_ms: int
    status_code: int | None
    ok: bool
    error: str | None
    worker: str

    @classmethod
    def of(cls, a: Attempt) -> AttemptOut:
        return cls.model_validate(a)


class DeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    subscription_id: str
    outbox_id: int
    event_id: str
    event_type: str
    status: str
    attempts: int
    next_attempt_at: dt.datetime
    last_status_code: int | None
    last_error: str | None
    delivered_at: dt.datetime | None
    created_at: dt.datetime
    log: list[AttemptOut] | None = None

    @classmethod
    def of(cls, d: Delivery, attempts: list[Attempt] | None = None) -> DeliveryOut:
        out = cls.model_validate(d)
        if attempts is not None:
            out.log = [AttemptOut.of(a) for a in attempts]
        return out


class DeliveryPage(BaseModel):
    total: int
    items: list[DeliveryOut]


class RedeliverOut(BaseModel):
    redelivered: int
