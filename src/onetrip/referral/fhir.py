"""FHIR R4 for referrals: ServiceRequest (category: patient referral, SNOMED 3457005) and its Task, for
hospital information systems.

- ``POST ServiceRequest`` with the referral category drafts a referral (status ``draft``) or sends it
  (status ``active``); other ServiceRequests (exam orders) are the shared-results store's, as before.
- ``GET ServiceRequest?category=referral`` (or ``…|3457005``) searches referrals; ``GET ServiceRequest/{id}``
  answers a referral, else the shared-results store answers.
- ``GET Task`` / ``GET Task/{id}``: the workflow Task of each referral (owner = receiving institution,
  ``restriction.period.end`` = deadline, ``businessStatus`` = our state).
- ``POST Task`` with ``focus`` = a draft referral's ServiceRequest sends it; ``PUT Task/{id}`` with a new
  ``status`` acts on it: accepted, rejected (``statusReason`` required), in-progress (arrived),
  completed, cancelled. 409 OperationOutcome when the state does not allow it.

Mounted ahead of the shared-results FHIR router, so it sees ServiceRequest first and hands over what is
not a referral.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Body, Header, Request
from fastapi.responses import JSONResponse
from sqlalchemy import or_, select

from onetrip.api.deps import DB, CurrentPrincipal, require_scope
from onetrip.audit import service as audit
from onetrip.identity.models import PatientRecord
from onetrip.interop.fhir import mappers
from onetrip.interop.fhir.router import base_url, fhir_response
from onetrip.interop.fhir.search import bundle, check_params, count_offset
from onetrip.kit.errors import BadRequest, NotFound
from onetrip.kit.principal import Principal
from onetrip.referral import package, service
from onetrip.referral.models import Referral
from onetrip.referral.states import FHIR_STATUS, Status, status_for_fhir_task

router = APIRouter(prefix="/fhir/R4", tags=["FHIR R4 referral"])
Resource_ = Annotated[dict[str, Any], Body(media_type="application/fhir+json")]

SR_PARAMS = {"category", "patient", "subject", "status", "requester", "performer", "priority", "identifier"}
TASK_PARAMS = {"owner", "requester", "status", "patient", "subject", "business-status", "focus", "based-on",
               "priority"}
REFERRAL_CATEGORY_VALUES = {"referral", "3457005", "http://snomed.info/sct|3457005"}


def _records_endpoint(name: str):
    from onetrip.records.fhir import router as records_router

    for route in records_router.routes:
        if getattr(route, "name", None) == name:
            return route.endpoint
    raise NotFound("不支持的资源 / resource not supported")


def _is_referral_category(body: dict) -> bool:
    for cat in body.get("category") or []:
        for c in (cat or {}).get("coding") or []:
            if c.get("code") == package.REFERRAL_CATEGORY["code"]:
                return True
    return False


def _visible(q, principal: Principal):
    if principal.is_operator:
        return q
    org = principal.organization_id
    return q.where(or_(Referral.from_organization_id == org,
                       (Referral.to_organization_id == org) & (Referral.status != Status.draft.value)))


def _sr(session, r: Referral) -> dict:
    from onetrip.registry.models import Organization

    crit = service.criteria(session, r.direction)
    return package.service_request(r, session.get(Organization, r.from_organization_id),
                                   session.get(Organization, r.to_organization_id) if r.to_organization_id else None,
                                   crit)


def _search(session, principal: Principal, raw: dict[str, str], rtype: str, query_text: str):
    count, offset = count_offset(raw)
    q = _visible(select(Referral), principal)
    patient = raw.get("patient") or raw.get("subject")
    if patient:
        rec = session.get(PatientRecord, patient.split("/")[-1])
        if rec is None:
            return [], False
        q = q.where(Referral.person_id == rec.person_id)
    if raw.get("status"):
        wanted = set(raw["status"].split(","))
        idx = 0 if rtype == "ServiceRequest" else 1
        q = q.where(Referral.status.in_([s.value for s, v in FHIR_STATUS.items() if v[idx] in wanted]))
    if raw.get("business-status"):
        q = q.where(Referral.status.in_(raw["business-status"].split("|")[-1].split(",")))
    for key, col in (("requester", Referral.from_organization_id), ("owner", Referral.to_organization_id),
                     ("performer", Referral.to_organization_id)):
        if raw.get(key):
            q = q.where(col == raw[key].split("/")[-1])
    for key in ("focus", "based-on", "identifier"):
        if raw.get(key):
            q = q.where(Referral.id == raw[key].split("/")[-1].split("|")[-1])
    if raw.get("priority"):
        q = q.where(Referral.urgent.is_(raw["priority"] in ("urgent", "asap", "stat")))
    if count == 0:
        return [], False
    rows = list(session.scalars(q.order_by(Referral.created_at.desc(), Referral.id).offset(offset).limit(count + 1)))
    has_more = len(rows) > count
    rows = rows[:count]
    if rows:
        audit.record(session, principal, "search-type", person_ids=[r.person_id for r in rows],
                     what=[f"{rtype}/{r.id}" for r in rows], query=query_text[:1000])
    return rows, has_more


# --- ServiceRequest --------------------------------------------------------------------------------

@router.get("/ServiceRequest")
def search_service_request(request: Request, session: DB, principal: CurrentPrincipal) -> JSONResponse:
    """Referrals with ``category=referral`` (or the SNOMED code 3457005); otherwise exam orders (results store)."""
    pairs = parse_qsl(request.url.query, keep_blank_values=True)
    cats = [v for k, v in pairs if k == "category"]
    if not cats or not any(c in REFERRAL_CATEGORY_VALUES for c in cats):
        return _records_endpoint("search_ServiceRequest")(request=request, session=session, principal=principal)
    require_scope(principal, "ServiceRequest", "s")
    raw = check_params(pairs, SR_PARAMS, "ServiceRequest")
    rows, more = _search(session, principal, raw, "ServiceRequest", request.url.query)
    count, offset = count_offset(raw)
    return fhir_response(bundle([_sr(session, r) for r in rows], base_url(request), "ServiceRequest", raw, count,
                                offset, more))


@router.get("/ServiceRequest/{rid}")
def read_service_request(rid: str, session: DB, principal: CurrentPrincipal) -> JSONResponse:
    """A referral (access: the sending or receiving institution; audited), else an exam order."""
    if session.get(Referral, rid) is None:
        return _records_endpoint("read_ServiceRequest")(rid=rid, session=session, principal=principal)
    require_scope(principal, "ServiceRequest", "r")
    return fhir_response(_sr(session, service.get_referral(session, principal, rid)))


def _referral_fields(session, body: dict, principal: Principal) -> dict[str, Any]:
    subject = mappers.ref_id(body.get("subject"), "Patient")
    rec = session.get(PatientRecord, subject) if subject else None
    if rec is None or rec.deleted_at is not None:
        raise BadRequest("subject 须引用已有的 Patient / subject must reference an existing Patient",
                         expression=["ServiceRequest.subject"])
    direction = next((e.get("valueCode") for e in body.get("extension") or []
                      if e.get("url") == package.DIRECTION_EXT), None)
    performer = next((mappers.ref_id(p, "Organization") for p in body.get("performer") or []), None)
    if direction is None:
        raise BadRequest(f"请用扩展 {package.DIRECTION_EXT} 给出转诊方向 up/down / give the direction (up or down) "
                         f"in extension {package.DIRECTION_EXT}", expression=["ServiceRequest.extension"])
    criteria, diagnoses, texts = [], [], []
    icd = service.icd10_catalogue()["system"]
    for rc in body.get("reasonCode") or []:
        for c in rc.get("coding") or []:
            if c.get("system") == package.CRITERIA_SYSTEM:
                criteria.append(c.get("code"))
            elif c.get("system") == icd:
                diagnoses.append({"code": c.get("code"), "display": c.get("display")})
        if rc.get("text") and not rc.get("coding"):
            texts.append(rc["text"])
    notes = [n.get("text") for n in body.get("note") or [] if n.get("text")]
    return {"person_id": rec.person_id, "direction": direction, "to_organization_id": performer,
            "reason": "；".join(texts), "criteria_codes": criteria, "diagnoses": diagnoses,
            "urgent": body.get("priority") in ("urgent", "asap", "stat"), "note": "\n".join(notes) or None}


@router.post("/ServiceRequest", status_code=201)
def create_service_request(request: Request, session: DB, principal: CurrentPrincipal, body: Resource_,
                           if_none_exist: Annotated[str | None, Header()] = None) -> JSONResponse:
    """A referral (category 3457005): status ``draft`` keeps it a draft, ``active`` sends it. Others: exam orders."""
    if not isinstance(body, dict) or not _is_referral_category(body):
        return _records_endpoint("create_ServiceRequest")(request=request, session=session, principal=principal,
                                                         body=body, if_none_exist=if_none_exist)
    require_scope(principal, "ServiceRequest", "c")
    mappers.validate("ServiceRequest", body)
    if body.get("status") not in ("draft", "active"):
        raise BadRequest("新转诊单的 status 须为 draft 或 active / a new referral's status must be draft or active",
                         expression=["ServiceRequest.status"])
    f = _referral_fields(session, body, principal)
    r = service.draft_referral(session, principal, source="fhir", **f)
    if body["status"] == "active":
        require_scope(principal, "Task", "u")
        r = service.submit(session, principal, r.id)
    out = _sr(session, r)
    return fhir_response(out, 201, location=f"{base_url(request)}/ServiceRequest/{r.id}/_history/{r.version_id}")


# --- Task ------------------------------------------------------------------------------------------

@router.get("/Task")
def search_task(request: Request, session: DB, principal: CurrentPrincipal) -> JSONResponse:
    """Referral Tasks: owner, requester, status, business-status, patient, focus, priority, _count, _offset."""
    require_scope(principal, "Task", "s")
    raw = check_params(parse_qsl(request.url.query, keep_blank_values=True), TASK_PARAMS, "Task")
    rows, more = _search(session, principal, raw, "Task", request.url.query)
    count, offset = count_offset(raw)
    return fhir_response(bundle([package.task(r) for r in rows], base_url(request), "Task", raw, count, offset,
                                more))


@router.get("/Task/{tid}")
def read_task(tid: str, session: DB, principal: CurrentPrincipal) -> JSONResponse:
    require_scope(principal, "Task", "r")
    return fhir_response(package.task(service.get_referral(session, principal, tid)))


@router.post("/Task", status_code=201)
def create_task(request: Request, session: DB, principal: CurrentPrincipal, body: Resource_) -> JSONResponse:
    """Send a draft referral: a Task whose ``focus`` is the referral's ServiceRequest, status ``requested``."""
    require_scope(principal, "Task", "c")
    mappers.validate("Task", body)
    rid = mappers.ref_id(body.get("focus"), "ServiceRequest")
    if not rid or session.get(Referral, rid) is None:
        raise BadRequest("focus 须引用转诊单 ServiceRequest / focus must reference a referral ServiceRequest",
                         expression=["Task.focus"])
    if body.get("status") != "requested":
        raise BadRequest("新任务的 status 须为 requested / a new Task's status must be requested",
                         expression=["Task.status"])
    r = service.submit(session, principal, rid)
    return fhir_response(package.task(r), 201, location=f"{base_url(request)}/Task/{r.id}/_history/{r.version_id}")


@router.put("/Task/{tid}")
def update_task(tid: str, session: DB, principal: CurrentPrincipal, body: Resource_) -> JSONResponse:
    """Act on a referral by setting its Task's status (accepted, rejected + statusReason, in-progress =
    arrived, completed, cancelled)."""
    require_scope(principal, "Task", "u")
    mappers.validate("Task", body)
    if body.get("id") not in (None, tid):
        raise BadRequest("资源 id 与地址不一致 / the resource id does not match the URL", expression=["Task.id"])
    r = service.get_referral(session, principal, tid, audit_read=False)
    target = status_for_fhir_task(body.get("status", ""))
    if target is None:
        raise BadRequest("不支持的 Task.status / unsupported Task.status for a referral", expression=["Task.status"])
    if target.value == r.status or (target == Status.arrived and r.status == Status.arrived.value):
        return fhir_response(package.task(r))
    reason = ((body.get("statusReason") or {}).get("text") or "").strip()
    if target == Status.accepted:
        r = service.accept(session, principal, tid)
    elif target == Status.rejected:
        r = service.reject(session, principal, tid, reason=reason)
    elif target == Status.arrived:
        r = service.arrive(session, principal, tid)
    elif target == Status.completed:
        r = service.complete(session, principal, tid)
    elif target == Status.cancelled:
        r = service.cancel(session, principal, tid, reason=reason)
    elif target == Status.submitted:
        r = service.submit(session, principal, tid)
    return fhir_response(package.task(r))
