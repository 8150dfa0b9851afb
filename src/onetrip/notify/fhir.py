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
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Body, Request, Response
from fastapi.responses import JSONResponse

from onetrip.api.deps import DB, CurrentPrincipal, require_scope
from onetrip.interop.fhir import mappers
from onetrip.interop.fhir.router import _params, base_url, fhir_response
from onetrip.interop.fhir.search import bundle, check_params, count_offset
from onetrip.kit.errors import BadRequest, Unprocessable
from onetrip.notify import service
from onetrip.notify.models import Subscription

router = APIRouter(prefix="/fhir/R4", tags=["FHIR R4 Subscription"])
Resource_ = Annotated[dict[str, Any], Body(media_type="application/fhir+json")]
SECRET_EXT = "urn:onetrip:sd:notify-secret"
EVENT_TYPES_EXT = "urn:onetrip:sd:notify-event-types"
_CRITERIA = re.compile(r"^([A-Z][A-Za-z]{1,31})\??(.*)$")
SEARCH = {"status", "type", "url", "criteria", "payload"}


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
        "meta": {"versionId": str(sub.version_id), "lastUpdated": mappers.instant(sub.updated_at)},
        "status": "active" if sub.active else "off", "reason": sub.name,
        "criteria": sub.criteria or f"{sub.aggregate_type or 'Resource'}?event={','.join(sub.event_types)}",
        "channel": {"type": "rest-hook", "endpoint": sub.endpoint,
                    # Header values may be credentials: their names only.
                    **({"header": [h.split(":", 1)[0] + ": ***" for h in sub.headers]} if sub.headers else {}),
                    **({"payload": "application/json"} if sub.payload == "full" else {})},
        "extension": [{"url": EVENT_TYPES_EXT, "valueString": ",".join(sub.event_types)}],
    }
    if sub.ends_at:
        body["end"] = mappers.instant(sub.ends_at)
    if with_secret:
        body["extension"].append({"url": SECRET_EXT, "valueString": sub.secret})
    mappers.validate("Subscription", body)
    return body


def from_fhir(body: dict) -> service.SubscriptionInput:
    mappers.validate("Subscription", body)
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


@router.post("/Subscription", status_code=201)
def create_subscription(request: Request, session: DB, principal: CurrentPrincipal, body: Resource_) -> JSONResponse:
    """Register a rest-hook Subscription; the answer's ``urn:onetrip:sd:notify-secret`` extension carries
    the HMAC signing secret (shown only here)."""
    _admin(principal, "c")
    sub = service.create_subscription(session, principal, from_fhir(body))
    return fhir_response(to_fhir(sub, with_secret=True), 201,
                         location=f"{base_url(request)}/Subscription/{sub.id}/_history/{sub.version_id}")


@router.get("/Subscription")
def search_subscriptions(request: Request, session: DB, principal: CurrentPrincipal) -> JSONResponse:
    """Search by ``status`` (active | off), ``type`` (rest-hook), ``url`` (the endpoint), ``criteria``,
    ``payload``."""
    _admin(principal, "s")
    p = check_params(_params(request), SEARCH, "Subscription")
    count, offset = count_offset(p)
    if p.get("status") and p["status"] not in ("active", "off", "requested", "error"):
        raise BadRequest("status 应为 active 或 off / status must be active or off")
    if p.get("type") and p["type"] != "rest-hook":
        subs: list[Subscription] = []
    else:
        active = {"active": True, "off": False}.get(p.get("status", ""))
        subs = service.list_subscriptions(session, active=active, limit=10_000)
        if p.get("status") in ("requested", "error"):
            subs = []
        if p.get("url"):
            subs = [s for s in subs if s.endpoint == p["url"]]
        if p.get("criteria"):
            subs = [s for s in subs if (s.criteria or "") == p["criteria"]]
        if "payload" in p:
            subs = [s for s in subs if (s.payload == "full") == (p["payload"] == "application/json")]
    page = subs[offset:offset + count]
    return fhir_response(bundle([to_fhir(s) for s in page], base_url(request), "Subscription", p, count, offset,
                                offset + count < len(subs), total=len(subs)))


@router.get("/Subscription/{sub_id}")
def read_subscription(sub_id: str, session: DB, principal: CurrentPrincipal) -> JSONResponse:
    _admin(principal, "r")
    return fhir_response(to_fhir(service.get_subscription(session, sub_id)))


@router.delete("/Subscription/{sub_id}", status_code=204)
def delete_subscription(sub_id: str, session: DB, principal: CurrentPrincipal) -> Response:
    """Stop the Subscription; a later read answers 410 Gone. Its delivery log is kept."""
    _admin(principal, "d")
    service.delete_subscription(session, principal, sub_id)
    return Response(status_code=204)


@router.api_route("/Subscription/{sub_id}", methods=["PUT", "PATCH"], include_in_schema=False)
def update_not_supported(sub_id: str) -> JSONResponse:
    raise BadRequest("不支持修改订阅，请删除后重建，或用 PATCH /api/notify/subscriptions/{id} / updating a "
                     "Subscription is not supported: delete and create it again, or use PATCH "
                     "/api/notify/subscriptions/{id}", status=405, code="not-supported")
