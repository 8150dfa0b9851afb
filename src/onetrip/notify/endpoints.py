"""Admin REST API under /api/notify — webhook subscriptions, the delivery log, redelivery. Thin: check the
scope, call one service function, shape the answer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from onetrip.api.deps import DB, CurrentPrincipal, require_scope
from onetrip.notify import service
from onetrip.notify.schemas import (
    DeliveryOut,
    DeliveryPage,
    RedeliverOut,
    SubscriptionChange,
    SubscriptionIn,
    SubscriptionOut,
)

router = APIRouter(prefix="/api/notify", tags=["notifications"])


def _admin(principal, permission: str) -> None:
    require_scope(principal, "Subscription", permission)
    service.require_operator(principal)


@router.get("/subscriptions", response_model=list[SubscriptionOut])
def list_subscriptions(session: DB, principal: CurrentPrincipal, kind: str | None = None,
                       active: bool | None = None) -> list[SubscriptionOut]:
    """Every registered receiver (webhooks and FHIR Subscriptions). Secrets are never shown here."""
    _admin(principal, "s")
    return [SubscriptionOut.of(s) for s in service.list_subscriptions(session, kind=kind, active=active)]


@router.post("/subscriptions", response_model=SubscriptionOut, status_code=201)
def create_subscription(body: SubscriptionIn, session: DB, principal: CurrentPrincipal) -> SubscriptionOut:
    """Register a webhook. The answer carries the signing secret — the only time it is shown."""
    _admin(principal, "c")
    sub = service.create_subscription(session, principal, service.SubscriptionInput(
        name=body.name, endpoint=body.endpoint, event_types=body.event_types, headers=tuple(body.headers),
        secret=body.secret, active=body.active))
    return SubscriptionOut.of(sub, with_secret=True)


@router.get("/subscriptions/{sub_id}", response_model=SubscriptionOut)
def read_subscription(sub_id: str, session: DB, principal: CurrentPrincipal) -> SubscriptionOut:
    _admin(principal, "r")
    return SubscriptionOut.of(service.get_subscription(session, sub_id))


@router.patch("/subscriptions/{sub_id}", response_model=SubscriptionOut)
def change_subscription(sub_id: str, body: SubscriptionChange, session: DB,
                        principal: CurrentPrincipal) -> SubscriptionOut:
    """Change the URL, event types, headers or active flag; ``rotate_secret`` issues a new secret (shown once)."""
    _admin(principal, "u")
    sub = service.update_subscription(session, principal, sub_id, name=body.name, endpoint=body.endpoint,
                                      event_types=body.event_types, headers=body.headers, active=body.active,
                                      rotate_secret=body.rotate_secret)
    return SubscriptionOut.of(sub, with_secret=body.rotate_secret)


@router.delete("/subscriptions/{sub_id}", status_code=204)
def delete_subscription(sub_id: str, session: DB, principal: CurrentPrincipal) -> Response:
    """Delete a receiver; its delivery log is kept and deliveries still owed are cancelled."""
    _admin(principal, "d")
    service.delete_subscription(session, principal, sub_id)
    return Response(status_code=204)


@router.get("/deliveries", response_model=DeliveryPage)
def list_deliveries(session: DB, principal: CurrentPrincipal, subscription_id: str | None = None,
                    status: str | None = None, event_type: str | None = None, event_id: str | None = None,
                    limit: Annotated[int, Query(ge=1, le=500)] = 50,
                    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> DeliveryPage:
    """The delivery log, newest event first. ``status``: pending | delivered | dead | cancelled;
    ``event_type`` exact or a prefix such as ``referral.*``."""
    _admin(principal, "s")
    rows, total = service.list_deliveries(session, service.DeliveryFilter(
        subscription_id=subscription_id, status=status, event_type=event_type, event_id=event_id),
        limit=limit, offset=offset)
    return DeliveryPage(total=total, items=[DeliveryOut.of(d) for d in rows])


@router.get("/deliveries/{delivery_id}", response_model=DeliveryOut)
def read_delivery(delivery_id: str, session: DB, principal: CurrentPrincipal) -> DeliveryOut:
    """One delivery with every attempt (status code, error, duration, which dispatcher)."""
    _admin(principal, "r")
    d = service.get_delivery(session, delivery_id)
    return DeliveryOut.of(d, service.attempts_of(session, d.id))


@router.post("/deliveries/{delivery_id}/redeliver", response_model=DeliveryOut)
def redeliver(delivery_id: str, session: DB, principal: CurrentPrincipal) -> DeliveryOut:
    """Send it again on the dispatcher's next pass (a dead letter, or a delivered event)."""
    _admin(principal, "u")
    return DeliveryOut.of(service.redeliver(session, principal, delivery_id))


@router.post("/deliveries/redeliver-dead", response_model=RedeliverOut)
def redeliver_dead(session: DB, principal: CurrentPrincipal, subscription_id: str | None = None) -> RedeliverOut:
    """Redeliver every dead letter (optionally of one subscription)."""
    _admin(principal, "u")
    return RedeliverOut(redelivered=service.redeliver_dead(session, principal, subscription_id))
