"""Plain REST for HIS systems without CDS Hooks: check an order, then record recognised / repeated."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response

from onetrip.api.deps import DB, CurrentPrincipal, require_scope
from onetrip.kit.clock import MAX_SERVICE_DATE, MIN_SERVICE_DATE
from onetrip.recognition import service
from onetrip.recognition.schemas import CheckIn, CheckOut, DecisionIn, DecisionOut

router = APIRouter(prefix="/api/recognition", tags=["recognition"])


@router.post("/check", response_model=CheckOut)
def check(body: CheckIn, session: DB, principal: CurrentPrincipal) -> Response:
    """Recognisable prior results for an order (RULES R1.1–R1.6); the check is logged."""
    require_scope(principal, "DiagnosticReport", "r")
    row, priors = service.run_check(session, principal, body.person_id, body.item_code, body.ordering_org_id,
                                    department_id=body.department_id)
    out = CheckOut(check_id=row.id, priors=priors)
    # Serialized here (the same JSON FastAPI would write for response_model): a sync endpoint's returned
    # model is validated again in another thread-pool hop before it is serialized — per check, on the
    # benchmarked path (issue 4: order check p95 ≤ 20 ms).
    return Response(out.model_dump_json(), media_type="application/json")


@router.post("/decisions", response_model=DecisionOut, status_code=201)
def decide(body: DecisionIn, session: DB, principal: CurrentPrincipal) -> DecisionOut:
    """Record recognised, or repeated with a reason code (R1.3; 99 needs ``disease``). 400 without one.
    A write on the order: needs ``ServiceRequest.c`` besides reading the prior results."""
    require_scope(principal, "DiagnosticReport", "r")
    require_scope(principal, "ServiceRequest", "c")
    row = service.record_decision(session, principal, body.check_id, body.decision, body.reason_code, body.remark,
                                  disease=body.disease)
    return DecisionOut.model_validate(row)


@router.get("/figures")
def figures(session: DB, principal: CurrentPrincipal,
            group_by: Annotated[Literal["organization", "department", "item", "month"],
                                Query(description="organization | department | item | month")] = "organization",
            from_: Annotated[dt.date | None, Query(alias="from", ge=MIN_SERVICE_DATE, le=MAX_SERVICE_DATE,
                                                   description="first day (China time), inclusive")] = None,
            to: Annotated[dt.date | None, Query(ge=MIN_SERVICE_DATE, le=MAX_SERVICE_DATE,
                                                description="last day (China time), inclusive")] = None,
            ) -> dict[str, Any]:
    """调阅 look-ups, 互认率 (RULES R1.7), reminder acceptance and money saved, per institution, department,
    item or month. Aggregates only; bureau managers, admins and system clients."""
    from onetrip.recognition import figures as fig

    return fig.figures(session, principal, group_by=group_by, start=from_, end=to)
