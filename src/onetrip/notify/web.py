"""The notifications admin page at /ui/notify: receivers (register, turn on/off), the delivery log with
filters, one delivery's attempts, and "redeliver". Same services as /api/notify; UI strings are English
``_()`` in templates/notify/, translated in locale/zh_CN/LC_MESSAGES/notify.po."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from onetrip.api.deps import DB, CurrentPrincipal, require_scope
from onetrip.api.web import check_origin, html_errors, page
from onetrip.kit.errors import BadRequest
from onetrip.notify import service
from onetrip.notify.models import DELIVERY_STATUSES

router = APIRouter(prefix="/ui/notify", include_in_schema=False)
PAGE_SIZE = 50


def _admin(principal, permission: str) -> None:
    require_scope(principal, "Subscription", permission)
    service.require_operator(principal)


@router.get("")
@html_errors
def overview(request: Request, session: DB, principal: CurrentPrincipal, subscription: str = "", status: str = "",
             event_type: str = "", event_id: str = "", page_no: int = 1, created: str = "") -> Response:
    """Receivers and the delivery log (filters: receiver, status, event type or prefix.*, event id)."""
    _admin(principal, "s")
    page_no = min(max(1, page_no), 100_000)
    filters = {"subscription": subscription.strip(), "status": status.strip(), "event_type": event_type.strip(),
               "event_id": event_id.strip()}
    rows, total = service.list_deliveries(session, service.DeliveryFilter(
        subscription_id=filters["subscription"] or None, status=filters["status"] or None,
        event_type=filters["event_type"] or None, event_id=filters["event_id"] or None),
        limit=PAGE_SIZE, offset=(page_no - 1) * PAGE_SIZE)
    subs = service.list_subscriptions(session)
    new_secret = None
    if created:  # the page right after registering shows the secret once
        just = next((s for s in subs if s.id == created), None)
        new_secret = (just, just.secret) if just is not None and request.cookies.get("notify_new") == created else None
    query = urlencode({k: v for k, v in filters.items() if v})
    resp = page(request, "notify/overview.html", session=session, principal=principal, subs=subs,
                names={s.id: s.name for s in subs}, counts=service.delivery_counts(session), rows=rows,
                total=total, filters=filters, statuses=DELIVERY_STATUSES, page_no=page_no,
                pages=max(1, -(-total // PAGE_SIZE)), query=query, new_secret=new_secret)
    if new_secret:
        resp.delete_cookie("notify_new", path="/ui/notify")
    return resp


@router.post("/subscriptions")
@html_errors
def create(request: Request, session: DB, principal: CurrentPrincipal, name: Annotated[str, Form()] = "",
           endpoint: Annotated[str, Form()] = "", event_types: Annotated[str, Form()] = "") -> Response:
    check_origin(request)
    _admin(principal, "c")
    sub = service.create_subscription(session, principal, service.SubscriptionInput(
        name=name, endpoint=endpoint, event_types=[p for p in event_types.replace("，", ",").split(",")]))
    resp = RedirectResponse(f"/ui/notify?created={sub.id}", status_code=303)
    resp.set_cookie("notify_new", sub.id, max_age=300, httponly=True, samesite="strict", path="/ui/notify")
    return resp


@router.post("/subscriptions/{sub_id}/active")
@html_errors
def set_active(request: Request, sub_id: str, session: DB, principal: CurrentPrincipal,
               active: Annotated[str, Form()]) -> Response:
    check_origin(request)
    _admin(principal, "u")
    if active not in ("on", "off"):
        raise BadRequest("active 应为 on 或 off / active must be on or off")
    service.update_subscription(session, principal, sub_id, active=active == "on")
    return RedirectResponse("/ui/notify", status_code=303)


@router.post("/subscriptions/{sub_id}/redeliver-dead")
@html_errors
def redeliver_dead(request: Request, sub_id: str, session: DB, principal: CurrentPrincipal) -> Response:
    check_origin(request)
    _admin(principal, "u")
    service.redeliver_dead(session, principal, sub_id)
    return RedirectResponse(f"/ui/notify?subscription={sub_id}&status=pending", status_code=303)


@router.get("/deliveries/{delivery_id}")
@html_errors
def delivery(request: Request, delivery_id: str, session: DB, principal: CurrentPrincipal) -> Response:
    """One delivery: its event, status and every attempt."""
    _admin(principal, "r")
    d = service.get_delivery(session, delivery_id)
    sub = service.get_subscription(session, d.subscription_id) if d.status != "cancelled" else None
    return page(request, "notify/delivery.html", session=session, principal=principal, d=d, sub=sub,
                attempts=service.attempts_of(session, d.id))


@router.post("/deliveries/{delivery_id}/redeliver")
@html_errors
def redeliver(request: Request, delivery_id: str, session: DB, principal: CurrentPrincipal,
              back: Annotated[str, Form()] = "") -> Response:
    """The "redeliver" button: the event goes out again on the dispatcher's next pass."""
    check_origin(request)
    _admin(principal, "u")
    service.redeliver(session, principal, delivery_id)
    target = f"/ui/notify?{back}" if back and not back.startswith(("/", "\\")) and "//" not in back else \
        f"/ui/notify/deliveries/{delivery_id}"
    return RedirectResponse(target, status_code=303)
