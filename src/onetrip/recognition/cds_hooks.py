"""CDS Hooks 2.0 service for the order-time recognition check (互认), mounted without the /fhir prefix.

- ``GET /cds-services``: discovery (one service for ``order-select``, one for ``order-sign``).
- ``POST /cds-services/{id}``: the request's ``context.draftOrders`` Bundle of ServiceRequests is checked
  order by order; each order with recognisable priors yields a card whose ``uuid`` is the logged check id,
  with a suggestion to delete the draft order and ``overrideReasons`` = the reason codes (RULES R1.3).
- ``POST /cds-services/{id}/feedback``: ``accepted`` → recognised; ``overridden`` → repeated with the
  override reason's code (a 99 takes the disease name from ``userComment``).
The caller authenticates with our bearer token; the ordering institution is the caller's institution.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body

from onetrip.api.deps import DB, CurrentPrincipal, require_scope
from onetrip.kit.errors import BadRequest, NotFound
from onetrip.persons.models import PatientRecord
from onetrip.recognition import service

router = APIRouter(tags=["cds-hooks"])

REASON_SYSTEM = "urn:onetrip:cs:recognition-reason"
SERVICES = {
    "onetrip-recognition-select": "order-select",
    "onetrip-recognition-sign": "order-sign",
}
TITLE = "检查检验结果互认 / Result recognition"
DESCRIPTION = ("Lists prior exam and test results from member institutions that can be recognised instead of "
               "repeating the drafted order (RULES §1), with reason codes for overriding.")


@router.get("/cds-services")
def discovery() -> dict[str, Any]:
    return {"services": [{"id": sid, "hook": hook, "title": TITLE, "description": DESCRIPTION,
                          "usageRequirements": "Bearer token of the ordering clinician's OneTrip account"}
                         for sid, hook in SERVICES.items()]}


def _need(cond: bool, what: str, path: str) -> None:
    if not cond:
        raise BadRequest(f"CDS Hooks 请求缺少或错误的 {what} / missing or invalid {what}", code="required",
                         expression=[path])


def _service(service_id: str) -> str:
    if service_id not in SERVICES:
        raise NotFound(f"CDS 服务不存在 / unknown CDS service {service_id!r}")
    return SERVICES[service_id]


def _codes(sr: dict) -> list[str]:
    code = sr.get("code") if isinstance(sr.get("code"), dict) else {}
    return [c["code"] for c in code.get("coding", []) if isinstance(c, dict) and isinstance(c.get("code"), str)]


@router.post("/cds-services/{service_id}")
def call(service_id: str, session: DB, principal: CurrentPrincipal,
         body: dict[str, Any] = Body(...)) -> dict[str, Any]:  # noqa: B008
    hook = _service(service_id)
    require_scope(principal, "DiagnosticReport", "r")
    _need(body.get("hook") == hook, "hook", "hook")
    _need(isinstance(body.get("hookInstance"), str) and bool(body["hookInstance"]), "hookInstance", "hookInstance")
    ctx = body.get("context")
    _need(isinstance(ctx, dict), "context", "context")
    _need(isinstance(ctx.get("patientId"), str) and bool(ctx["patientId"]), "context.patientId", "context.patientId")
    bundle = ctx.get("draftOrders")
    _need(isinstance(bundle, dict) and bundle.get("resourceType") == "Bundle" and isinstance(bundle.get("entry", []), list),
          "context.draftOrders", "context.draftOrders")
    _need(bool(principal.organization_id), "ordering institution (the caller has none)", "context.userId")
    rec = session.get(PatientRecord, ctx["patientId"])
    if rec is None or rec.deleted_at is not None:
        raise BadRequest("患者不存在 / unknown patientId", code="not-found", expression=["context.patientId"])
    reason_codings = [{"system": REASON_SYSTEM, "code": r.code, "display": r.name_zh}
                      for r in service.reasons(session)]
    cards = []
    for i, entry in enumerate(bundle.get("entry", [])):
        sr = entry.get("resource") if isinstance(entry, dict) else None
        _need(isinstance(sr, dict) and sr.get("resourceType") == "ServiceRequest" and isinstance(sr.get("id"), str),
              "ServiceRequest with an id", f"context.draftOrders.entry[{i}].resource")
        item = next((c for c in _codes(sr) if service.find_item(session, c) is not None), None)
        if item is None:
            continue
        check, priors = service.run_check(session, principal, rec.person_id, item, principal.organization_id,
                                          channel="cds-hooks", hook_instance=body["hookInstance"])
        if not priors:
            continue
        name = priors[0].display or item
        lines = [f"- {p.effective_at:%Y-%m-%d} {p.organization_name}: {p.display or p.code or p.code_local} "
                 f"({p.recognition_mark}, {p.validity_days} 天有效)" for p in priors]
        cards.append({
            "uuid": check.id,
            "summary": f"{name}: {len(priors)} 项外院结果可互认，建议不重复开单 / recognisable prior result(s)"[:140],
            "indicator": "warning",
            "source": {"label": "OneTrip 检查检验结果互认", "topic": {"system": REASON_SYSTEM, "code": "recognition"}},
            "detail": "可互认的既往结果 / recognisable prior results:\n" + "\n".join(lines),
            "selectionBehavior": "at-most-one",
            "suggestions": [{"label": "互认既往结果，删除本申请 / recognise and drop this order", "uuid": check.id + "-s",
                             "isRecommended": True,
                             "actions": [{"type": "delete", "description": "删除草稿申请 / delete the draft order",
                                          "resourceId": [f"ServiceRequest/{sr['id']}"]}]}],
            "overrideReasons": reason_codings,
        })
    return {"cards": cards}


@router.post("/cds-services/{service_id}/feedback")
def feedback(service_id: str, session: DB, principal: CurrentPrincipal,
             body: dict[str, Any] = Body(...)) -> dict[str, Any]:  # noqa: B008
    _service(service_id)
    require_scope(principal, "DiagnosticReport", "r")
    items = body.get("feedback")
    _need(isinstance(items, list) and bool(items), "feedback", "feedback")
    for i, fb in enumerate(items):
        _need(isinstance(fb, dict) and isinstance(fb.get("card"), str), "card", f"feedback[{i}].card")
        outcome = fb.get("outcome")
        _need(outcome in ("accepted", "overridden"), "outcome", f"feedback[{i}].outcome")
        if outcome == "accepted":
            service.record_decision(session, principal, fb["card"], "recognised", channel="cds-hooks")
            continue
        over = fb.get("overrideReason") if isinstance(fb.get("overrideReason"), dict) else {}
        reason = over.get("reason") if isinstance(over.get("reason"), dict) else {}
        comment = over.get("userComment") if isinstance(over.get("userComment"), str) else None
        service.record_decision(session, principal, fb["card"], "repeated", reason.get("code"), comment,
                                disease=comment, channel="cds-hooks")
    return {}
