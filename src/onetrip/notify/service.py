"""Subscriptions (webhooks and FHIR Subscriptions) and the delivery log: register, change, delete, list,
redeliver. Services flush and never commit (STYLE 2); every change is audited and written to the outbox."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from onetrip.audit import service as audit
from onetrip.kit.clock import utcnow
from onetrip.kit.errors import BadRequest, Conflict, Forbidden, Gone, NotFound
from onetrip.kit.principal import Principal
from onetrip.notify import rules
from onetrip.notify.models import DELIVERY_STATUSES, Attempt, Delivery, Subscription
from onetrip.notify.signing import new_secret
from onetrip.outbox.service import record_event
from onetrip.rules.service import rule_values

PAYLOADS = ("full", "empty")
MAX_HEADERS = 10


def notify_rules(session: Session) -> rules.NotifyRules:
    return rules.NotifyRules.from_values(rule_values(session, "notify"))


def require_operator(principal: Principal) -> None:
    """Subscriptions see events of every institution: only the deployment's administrators, system
    clients and the local CLI may manage them."""
    if not principal.is_operator:
        raise Forbidden("只有管理员或系统客户端可管理通知订阅 / only administrators and system clients may "
                        "manage notification subscriptions")


def check_endpoint(url: str) -> str:
    url = (url or "").strip()
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises on a port that is not a number in range
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 2000 \
            or not url.isascii() or any(c.isspace() or ord(c) < 32 for c in url):
        raise BadRequest("接收地址须为 http(s) 网址 / the endpoint must be an http(s) URL, e.g. "
                         "https://his.example/onetrip/webhook", expression=["endpoint"])
    if parts.username or parts.password:
        raise BadRequest("接收地址不能包含用户名密码，请用 headers / no credentials in the endpoint URL; send "
                         "them as a header instead", expression=["endpoint"])
    return url


def check_event_types(patterns: list[str]) -> list[str]:
    cleaned = [p.strip() for p in patterns if p and p.strip()]
    if not cleaned:
        raise BadRequest("至少需要一个事件类型（* 表示全部）/ give at least one event type (* for all)",
                         expression=["event_types"])
    bad = [p for p in cleaned if not rules.valid_pattern(p)]
    if bad:
        raise BadRequest(f"事件类型格式错误 / invalid event type pattern(s) {bad}: use e.g. referral.* or "
                         "appointment.booked", expression=["event_types"])
    return sorted(set(cleaned))


def check_headers(headers: list[str]) -> list[str]:
    out = []
    for h in headers:
        name, sep, value = h.partition(":")
        name = name.strip()
        if not sep or not name or not name.isascii() or not name.isprintable() or " " in name \
                or not value.isascii() or not value.isprintable():
            raise BadRequest(f"请求头格式应为 'Name: value' / a header must read 'Name: value': {h!r}",
                             expression=["headers"])
        if name.lower() in ("content-type", "content-length", "host") or name.lower().startswith("x-onetrip-"):
            raise BadRequest(f"不能覆盖此请求头 / header {name!r} is set by OneTrip", expression=["headers"])
        out.append(f"{name}: {value.strip()}")
    if len(out) > MAX_HEADERS:
        raise BadRequest(f"最多 {MAX_HEADERS} 个请求头 / at most {MAX_HEADERS} headers")
    return out


@dataclass(frozen=True)
class SubscriptionInput:
    name: str
    endpoint: str
    event_types: list[str]
    kind: str = "webhook"
    aggregate_type: str | None = None
    criteria: str | None = None
    payload: str = "full"
    headers: tuple[str, ...] = ()
    secret: str | None = None
    active: bool = True
    ends_at: dt.datetime | None = None


def create_subscription(session: Session, principal: Principal, data: SubscriptionInput) -> Subscription:
    """Register a receiver. Only events that occur from now on are delivered to it."""
    require_operator(principal)
    name = data.name.strip()
    if not name or len(name) > 200:
        raise BadRequest("名称必填（最多 200 字）/ a name (reason) of at most 200 characters is required",
                         expression=["name"])
    if data.payload not in PAYLOADS:
        raise BadRequest(f"payload 应为 {PAYLOADS} / payload must be one of {PAYLOADS}")
    secret = data.secret or new_secret()
    if len(secret) < 16 or len(secret) > 128:
        raise BadRequest("签名密钥长度应为 16–128 / the signing secret must have 16 to 128 characters",
                         expression=["secret"])
    sub = Subscription(
        kind=data.kind, name=name, endpoint=check_endpoint(data.endpoint),
        event_types=check_event_types(data.event_types), aggregate_type=data.aggregate_type,
        criteria=data.criteria, payload=data.payload, headers=check_headers(list(data.headers)), secret=secret,
        active=data.active, ends_at=data.ends_at, created_by=principal.name[:64], version_id=1,
    )
    session.add(sub)
    session.flush()
    _changed(session, principal, sub, "create", "subscription.created")
    return sub


def _changed(session: Session, principal: Principal, sub: Subscription, action: str, event: str) -> None:
    audit.record(session, principal, action, what=[f"Subscription/{sub.id}"])
    record_event(session, event, "Subscription", sub.id,
                 {"subscription_id": sub.id, "kind": sub.kind, "active": sub.active,
                  "event_types": list(sub.event_types)})


def get_subscription(session: Session, sub_id: str, *, for_update: bool = False) -> Subscription:
    sub = session.get(Subscription, sub_id, with_for_update=for_update)
    if sub is None:
        raise NotFound(f"没有此订阅 / no subscription {sub_id!r}")
    if sub.deleted_at is not None:
        raise Gone(f"此订阅已删除 / subscription {sub_id!r} was deleted")
    return sub


def update_subscription(session: Session, principal: Principal, sub_id: str, *, name: str | None = None,
                        endpoint: str | None = None, event_types: list[str] | None = None,
                        active: bool | None = None, headers: list[str] | None = None,
                        rotate_secret: bool = False, expected_version: int | None = None) -> Subscription:
    """Change a receiver. Turning it off stops new events reaching it; what is already pending stays
    pending until it is turned on again."""
    require_operator(principal)
    sub = get_subscription(session, sub_id, for_update=True)
    if expected_version is not None and expected_version != sub.version_id:
        raise Conflict(f"订阅已被他人修改（版本 {sub.version_id}）/ the subscription changed meanwhile "
                       f"(version {sub.version_id}); reload and retry")
    if name is not None:
        if not name.strip() or len(name) > 200:
            raise BadRequest("名称必填（最多 200 字）/ a name of at most 200 characters is required")
        sub.name = name.strip()
    if endpoint is not None:
        sub.endpoint = check_endpoint(endpoint)
    if event_types is not None:
        sub.event_types = check_event_types(event_types)
    if headers is not None:
        sub.headers = check_headers(headers)
    if active is not None:
        sub.active = active
    if rotate_secret:
        sub.secret = new_secret()
    session.flush()
    _changed(session, principal, sub, "update", "subscription.updated")
    return sub


def delete_subscription(session: Session, principal: Principal, sub_id: str) -> Subscription:
    """Stop a receiver for good. Its delivery log is kept; deliveries still owed are cancelled."""
    require_operator(principal)
    sub = get_subscription(session, sub_id, for_update=True)
    sub.deleted_at, sub.active = utcnow(), False
    session.execute(update(Delivery).where(Delivery.subscription_id == sub.id, Delivery.status == "pending")
                    .values(status="cancelled", updated_at=utcnow()))
    session.flush()
    _changed(session, principal, sub, "delete", "subscription.deleted")
    return sub


def list_subscriptions(session: Session, *, kind: str | None = None, active: bool | None = None,
                       include_deleted: bool = False, limit: int = 200, offset: int = 0) -> list[Subscription]:
    q = select(Subscription).order_by(Subscription.created_at, Subscription.id).limit(limit).offset(offset)
    if kind:
        q = q.where(Subscription.kind == kind)
    if active is not None:
        q = q.where(Subscription.active.is_(active))
    if not include_deleted:
        q = q.where(Subscription.deleted_at.is_(None))
    return list(session.scalars(q))


def delivery_counts(session: Session) -> dict[tuple[str, str], int]:
    """(subscription id, status) → number of deliveries, for the admin page."""
    rows = session.execute(select(Delivery.subscription_id, Delivery.status, func.count())
                           .group_by(Delivery.subscription_id, Delivery.status))
    return {(sid, status): n for sid, status, n in rows}


@dataclass(frozen=True)
class DeliveryFilter:
    subscription_id: str | None = None
    status: str | None = None
    event_type: str | None = None  # exact, or a prefix pattern such as referral.*
    event_id: str | None = None


def _filtered(q, f: DeliveryFilter):
    if f.status:
        if f.status not in DELIVERY_STATUSES:
            raise BadRequest(f"status 应为 {', '.join(DELIVERY_STATUSES)} / status must be one of "
                             f"{', '.join(DELIVERY_STATUSES)}", expression=["status"])
        q = q.where(Delivery.status == f.status)
    if f.subscription_id:
        q = q.where(Delivery.subscription_id == f.subscription_id)
    if f.event_type:
        if f.event_type.endswith("*"):
            q = q.where(Delivery.event_type.startswith(f.event_type[:-1], autoescape=True))
        else:
            q = q.where(Delivery.event_type == f.event_type)
    if f.event_id:
        q = q.where(Delivery.event_id == f.event_id.strip())
    return q


def list_deliveries(session: Session, f: DeliveryFilter, *, limit: int = 50,
                    offset: int = 0) -> tuple[list[Delivery], int]:
    """The delivery log, newest event first, with the total matching the filter."""
    total = session.scalar(_filtered(select(func.count()).select_from(Delivery), f)) or 0
    rows = session.scalars(_filtered(select(Delivery), f).order_by(Delivery.outbox_id.desc(), Delivery.id)
                           .limit(limit).offset(offset))
    return list(rows), total


def get_delivery(session: Session, delivery_id: str, *, for_update: bool = False) -> Delivery:
    d = session.get(Delivery, delivery_id, with_for_update=for_update)
    if d is None:
        raise NotFound(f"没有此投递记录 / no delivery {delivery_id!r}")
    return d


def attempts_of(session: Session, delivery_id: str) -> list[Attempt]:
    return list(session.scalars(select(Attempt).where(Attempt.delivery_id == delivery_id)
                                .order_by(Attempt.started_at, Attempt.attempt_no)))


def redeliver(session: Session, principal: Principal, delivery_id: str) -> Delivery:
    """Send an event again: a dead letter, or one already delivered (the receiver de-duplicates on the
    event id). It goes out on the dispatcher's next pass with a fresh count of attempts."""
    require_operator(principal)
    d = get_delivery(session, delivery_id, for_update=True)
    sub = session.get(Subscription, d.subscription_id)
    if sub is None or sub.deleted_at is not None:
        raise Gone("订阅已删除，不能重发 / the subscription was deleted; nothing to redeliver to")
    # A lease held by a dispatcher that is sending it right now is kept: it is not sent twice at once.
    d.status, d.attempts, d.next_attempt_at, d.delivered_at = "pending", 0, utcnow(), None
    session.flush()
    audit.record(session, principal, "update", what=[f"Subscription/{sub.id}"],
                 detail={"action": "redeliver", "delivery_id": d.id, "event_id": d.event_id})
    return d


def redeliver_dead(session: Session, principal: Principal, subscription_id: str | None = None) -> int:
    """Redeliver every dead letter (of one subscription, or of all)."""
    require_operator(principal)
    q = select(Delivery.id).join(Subscription, Subscription.id == Delivery.subscription_id).where(
        Delivery.status == "dead", Subscription.deleted_at.is_(None))
    if subscription_id:
        q = q.where(Delivery.subscription_id == subscription_id)
    ids = list(session.scalars(q))
    for i in ids:
        redeliver(session, principal, i)
    return len(ids)


def prune(session: Session, principal: Principal, older_than: dt.datetime) -> tuple[int, int]:
    """Remove delivered and cancelled deliveries (and their attempts) last changed before ``older_than``.
    Pending deliveries and dead letters are kept whatever their age. Returns (deliveries, attempts)."""
    from sqlalchemy import delete

    require_operator(principal)
    old = select(Delivery.id).where(Delivery.status.in_(("delivered", "cancelled")),
                                    Delivery.updated_at < older_than)
    attempts = session.execute(delete(Attempt).where(Attempt.delivery_id.in_(old))).rowcount or 0
    deliveries = session.execute(delete(Delivery).where(Delivery.id.in_(old.scalar_subquery()))
                                 .execution_options(synchronize_session=False)).rowcount or 0
    audit.record(session, principal, "delete", what=["Subscription/*"],
                 detail={"action": "prune-delivery-log", "before": older_than.isoformat(),
                         "deliveries": deliveries, "attempts": attempts})
    return deliveries, attempts
