"""FHIR R4 ``Subscription`` with the rest-hook channel: create, read, search, delete at /fhir/R4/Subscription.

We implement the R4 (4.0.1) Subscription, not the R4B/R5 topic-based backport. Its ``criteria`` is read as
``<AggregateType>[?event=<pattern>[,<pattern>...]]`` — the resource type whose changes you want (the
outbox aggregate: Patient, Appointment, ServiceRequest for referrals, ...) and optionally which event
types (``appointment.booked``, ``referral.*``). No other search parameters are evaluated: the server does
not re-run searches, it forwards events (refused with a 400 rather than silently ignored).

``channel.payload`` absent → an R4 "empty" notification (a POST without body; the headers carry the event
id and type); ``application/json`` → the OneTrip event JSON (docs/notifications.md). ``application/fhir+json``
(the changed resource itself) is not offered: patient data leaves only through the API, under the access
policy and audit. The signing secret is generated (or taken from the ``urn:onetrip:sd:notify-secret``
extension) and returned once, in the answer to the create.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from urllib.parse import parse_qsl

from onetrip.kit.errors import BadRequest, Unprocessable
from onetrip.kit.fhir import Context, Created, Page, ResourceType, instant, params, require_scope, validate
from onetrip.notify import service
from onetrip.notify.models import Subscription

SECRET_EXT = "urn:onetrip:sd:notify-secret"
EVENT_TYPES_EXT = "urn:onetrip:sd:notify-event-types"
_CRITERIA = re.compile(r"^([A-Z][A-Za-z]{1,31})\??(.*)$")
SEARCH = params(("status", "token"), ("type", "token"), ("url", "uri"), ("criteria", "string"), ("payload", "token"))


def parse_criteria(criteria: str) -> tuple[str, list[str]]:
    """``Appointment?event=appointment.booked`` → ("Appointment", ["appointment.booked"]); a bare type
    means every event of that aggregate type."""
    m = _CRITERIA.match((criteria or "").strip())
    if not m:
        raise BadRequest("criteria 应为 资源类型[?event=事件类型] / criteria must read <ResourceType>"
                         "[?event=<event type>,...], e.g. ServiceRequest?event=referral.*",
                         expression=["Subscription.criteria"])
    rtype, query = m.groups()
    patterns = ["*"]
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key != "event":
            raise BadRequest(f"criteria 只支持 event 参数 / criteria supports only the event parameter, not "
                             f"{key!r}: the server forwards events and does not re-run searches",
                             code="not-supported", expression=["Subscription.criteria"])
        patterns = [p for p in value.split(",") if p]
    return rtype, patterns


def to_fhir(sub: Subscription, *, with_secret: bool = False) -> dict:
    body: dict[str, Any] = {
        "resourceType": "Subscription", "id": sub.id,
        "meta": {"versionId": str(sub.version_id), "lastUpdated": instant(sub.updated_at)},
        "status": "active" if sub.active else "off", "reason": sub.name,
        "criteria": sub.criteria or f"{sub.aggregate_type or 'Resource'}?event={','.join(sub.event_types)}",
        "channel": {"type": "rest-hook", "endpoint": sub.endpoint,
                    # Header values may be credentials: their names only.
                    **({"header": [h.split(":", 1)[0] + ": ***" for h in sub.headers]} if sub.headers else {}),
                    **({"payload": "application/json"} if sub.payload == "full" else {})},
        "extension": [{"url": EVENT_TYPES_EXT, "valueString": ",".join(sub.event_types)}],
    }
    if sub.ends_at:
        body["end"] = instant(sub.ends_at)
    if with_secret:
        body["extension"].append({"url": SECRET_EXT, "valueString": sub.secret})
    validate("Subscription", body)
    return body


def from_fhir(body: dict) -> service.SubscriptionInput:
    validate("Subscription", body)
    status = body.get("status")
    if status not in ("requested", "active", "off"):
        raise BadRequest("status 应为 requested、active 或 off / status must be requested, active or off (error "
                         "is set by the server)", expression=["Subscription.status"])
    channel = body.get("channel") or {}
    if channel.get("type") != "rest-hook":
        raise Unprocessable(f"只支持 rest-hook 通道 / only the rest-hook channel is supported, not "
                            f"{channel.get('type')!r}", code="not-supported", expression=["Subscription.channel.type"])
    if not channel.get("endpoint"):
        raise BadRequest("rest-hook 需要 channel.endpoint / a rest-hook needs channel.endpoint",
                         expression=["Subscription.channel.endpoint"])
    mime = channel.get("payload")
    if mime not in (None, "application/json"):
        raise Unprocessable("channel.payload 只能省略（空通知）或为 application/json / channel.payload must be "
                            "absent (empty notification) or application/json; resources themselves are read "
                            "through the API", code="not-supported", expression=["Subscription.channel.payload"])
    rtype, patterns = parse_criteria(body.get("criteria", ""))
    secret = next((e.get("valueString") for e in body.get("extension") or [] if e.get("url") == SECRET_EXT), None)
    end = body.get("end")
    ends_at = None
    if end:
        try:
            ends_at = dt.datetime.fromisoformat(str(end).replace("Z", "+00:00"))
        except ValueError:
            raise BadRequest("end 应为 FHIR instant / end must be an instant such as 2027-12-31T16:00:00Z",
                             expression=["Subscription.end"]) from None
        if ends_at.tzinfo is None:
            raise BadRequest("end 须带时区 / end must carry a time zone", expression=["Subscription.end"])
    return service.SubscriptionInput(
        kind="fhir", name=body.get("reason") or "", endpoint=channel["endpoint"], event_types=patterns,
        aggregate_type=rtype, criteria=body["criteria"].strip(), payload="full" if mime else "empty",
        headers=tuple(channel.get("header") or ()), secret=secret, active=status != "off", ends_at=ends_at)


def _admin(principal, permission: str) -> None:
    require_scope(principal, "Subscription", permission)
    service.require_operator(principal)


def create_subscription(ctx: Context, body: dict) -> Created:
    """Register a rest-hook Subscription; the answer's ``urn:onetrip:sd:notify-secret`` extension carries
    the HMAC signing secret (shown only here)."""
    sub = service.create_subscription(ctx.session, ctx.principal, from_fhir(body))
    return Created(to_fhir(sub, with_secret=True), 201)


def search_subscriptions(ctx: Context, p: dict[str, str], count: int, offset: int) -> Page:
    """Search by ``status`` (active | off), ``type`` (rest-hook), ``url`` (the endpoint), ``criteria``,
    ``payload``."""
    if p.get("status") and p["status"] not in ("active", "off", "requested", "error"):
        raise BadRequest("status 应为 active 或 off / status must be active or off")
    if p.get("type") and p["type"] != "rest-hook":
        subs: list[Subscription] = []
    else:
        active = {"active": True, "off": False}.get(p.get("status", ""))
        subs = service.list_subscriptions(ctx.session, active=active, limit=10_000)
        if p.get("status") in ("requested", "error"):
            subs = []
        if p.get("url"):
            subs = [s for s in subs if s.endpoint == p["url"]]
        if p.get("criteria"):
            subs = [s for s in subs if (s.criteria or "") == p["criteria"]]
        if "payload" in p:
            subs = [s for s in subs if (s.payload == "full") == (p["payload"] == "application/json")]
    page = subs[offset:offset + count]
    return Page([to_fhir(s) for s in page], offset + count < len(subs), total=len(subs))


def read_subscription(ctx: Context, sub_id: str) -> dict:
    """Read a Subscription (without its secret); 410 once deleted."""
    return to_fhir(service.get_subscription(ctx.session, sub_id))


def delete_subscription(ctx: Context, sub_id: str) -> None:
    """Stop the Subscription; a later read answers 410 Gone. Its delivery log is kept."""
    service.delete_subscription(ctx.session, ctx.principal, sub_id)


NO_UPDATE = ("不支持修改订阅，请删除后重建，或用 PATCH /api/notify/subscriptions/{id} / updating a "
             "Subscription is not supported: delete and create it again, or use PATCH "
             "/api/notify/subscriptions/{id}")

RESOURCES = [
    ResourceType("Subscription", read=read_subscription, search=search_subscriptions, search_params=SEARCH,
                 create=create_subscription, delete=delete_subscription, authorize=_admin,
                 refusals={"PUT": NO_UPDATE, "PATCH": NO_UPDATE},
                 doc="R4 rest-hook Subscription fed from the outbox (criteria: <type>[?event=...])."),
]
