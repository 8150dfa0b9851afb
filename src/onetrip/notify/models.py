"""Notification state, kept in our own tables (the outbox itself is never written to by this module).

``notify_subscription`` — a receiver: an endpoint URL, which events it wants, the HMAC secret.
``notify_feed``         — one row: how far the fan-out has read the outbox (``floor_id``) and the outbox ids
                          below it that were missing when it passed (``gaps``, see dispatcher.fan_out).
``notify_delivery``     — one row per (subscription, outbox event): pending → delivered | dead | cancelled.
``notify_attempt``      — the delivery log: one row per HTTP attempt, never updated.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from onetrip.db.base import Base, IdMixin, JSONVariant, TimestampMixin, VersionedMixin
from onetrip.kit.clock import utcnow

# pending    waiting for its next attempt (``next_attempt_at``), or being sent (``locked_until`` in the future)
# delivered  the receiver answered 2xx
# dead       ``max_attempts`` failed attempts (dead letter); an administrator can redeliver it
# cancelled  its subscription was deleted before it was delivered
DELIVERY_STATUSES = ("pending", "delivered", "dead", "cancelled")
KINDS = ("webhook", "fhir")  # how the receiver was registered: admin API / web, or FHIR Subscription


class Subscription(IdMixin, TimestampMixin, VersionedMixin, Base):
    """A receiver of events: a webhook, or a FHIR R4 Subscription with a rest-hook channel."""

    __tablename__ = "notify_subscription"
    kind: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(200), doc="who receives and why (FHIR Subscription.reason)")
    endpoint: Mapped[str] = mapped_column(String(2000), doc="http(s) URL the events are POSTed to")
    event_types: Mapped[list] = mapped_column(JSONVariant, doc='patterns: "*", "referral.*", "appointment.booked"')
    aggregate_type: Mapped[str | None] = mapped_column(String(32), doc="only events of this aggregate (FHIR criteria)")
    criteria: Mapped[str | None] = mapped_column(String(500), doc="FHIR Subscription.criteria as given")
    payload: Mapped[str] = mapped_column(String(8), doc="full: the JSON event; empty: an R4 ping without body")
    headers: Mapped[list] = mapped_column(JSONVariant, doc='extra "Name: value" headers (FHIR channel.header)')
    secret: Mapped[str] = mapped_column(String(128), doc="HMAC-SHA256 key of the X-OneTrip-Signature header")
    active: Mapped[bool] = mapped_column(default=True)
    ends_at: Mapped[dt.datetime | None] = mapped_column(doc="FHIR Subscription.end: no events after this")
    deleted_at: Mapped[dt.datetime | None]
    created_by: Mapped[str] = mapped_column(String(64))


class Feed(Base):
    """The fan-out's position in the outbox (a single row, id 1)."""

    __tablename__ = "notify_feed"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    floor_id: Mapped[int] = mapped_column(BigInteger, doc="every outbox id ≤ this was fanned out or given up")
    gaps: Mapped[dict] = mapped_column(JSONVariant, doc="outbox id → when first missed; awaited until grace ends")
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Delivery(IdMixin, TimestampMixin, Base):
    """One event owed to one subscription."""

    __tablename__ = "notify_delivery"
    __table_args__ = (
        UniqueConstraint("subscription_id", "outbox_id"),
        Index("ix_notify_delivery_due", "status", "next_attempt_at"),
        Index("ix_notify_delivery_event", "event_id"),
    )
    subscription_id: Mapped[str] = mapped_column(ForeignKey("notify_subscription.id"))
    outbox_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"),
                                           ForeignKey("outbox_event.id"))
    event_id: Mapped[str] = mapped_column(String(32), doc="X-OneTrip-Event-Id: receivers de-duplicate on it")
    event_type: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(12), default="pending")
    attempts: Mapped[int] = mapped_column(default=0, doc="failed attempts since created or last redelivered")
    next_attempt_at: Mapped[dt.datetime]
    locked_until: Mapped[dt.datetime | None] = mapped_column(doc="a dispatcher's lease while it sends")
    locked_by: Mapped[str | None] = mapped_column(String(80))
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[dt.datetime | None]


class Attempt(IdMixin, Base):
    """The delivery log: one HTTP attempt (append-only)."""

    __tablename__ = "notify_attempt"
    __table_args__ = (Index("ix_notify_attempt_delivery", "delivery_id", "started_at"),)
    delivery_id: Mapped[str] = mapped_column(ForeignKey("notify_delivery.id"))
    attempt_no: Mapped[int]
    started_at: Mapped[dt.datetime]
    duration_ms: Mapped[int]
    status_code: Mapped[int | None] = mapped_column(doc="the receiver's HTTP status; none when unreachable")
    ok: Mapped[bool]
    error: Mapped[str | None] = mapped_column(String(500))
    worker: Mapped[str] = mapped_column(String(80))
