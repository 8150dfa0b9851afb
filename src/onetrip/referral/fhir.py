"""FHIR R4 for referrals: a variant of ServiceRequest (category: patient referral, SNOMED 3457005; the
primary provider of ServiceRequest is records, for exam orders) and the referral's Task, for hospital
information systems. Declared here, served by the façade (``onetrip.interop.fhir``).

- ``POST ServiceRequest`` with the referral category drafts a referral (status ``draft``) or sends it
  (status ``active``); other ServiceRequests (exam orders) are the shared-results store's.
- ``GET ServiceRequest?category=referral`` (or ``…|3457005``) searches referrals; ``GET ServiceRequest/{id}``
  answers a referral, else the shared-results store answers.
- ``GET Task`` / ``GET Task/{id}``: the workflow Task of each referral (owner = receiving institution,
  ``restriction.period.end`` = deadline, ``businessStatus`` = our state).
- ``POST Task`` with ``focus`` = a draft referral's ServiceRequest sends it; ``PUT Task/{id}`` with a new
  ``status`` acts on it: accepted, rejected (``statusReason`` required), in-progress (arrived),
  completed, cancelled. 409 OperationOutcome when the state does not allow it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select

from onetrip.audit import service as audit
from onetrip.kit.errors import BadRequest
from onetrip.kit.fhir import (
    Context,
    Created,
    Page,
    ResourceType,
    Variant,
    params,
    ref_id,
    require_scope,
    validate,
)
from onetrip.kit.principal import Principal
from onetrip.persons.models import PatientRecord
from onetrip.referral import package, service
from onetrip.referral.models import Referral
from onetrip.referral.states import FHIR_STATUS, Status, status_for_fhir_task

SR_PARAMS = params(("category", "token"), ("patient", "reference"), ("subject", "reference"), ("status", "token"),
                   ("requester", "reference"), ("performer", "reference"), ("priority", "token"),
                   ("identifier", "token"))
TASK_PARAMS = params(("owner", "reference"), ("requester", "reference"), ("status", "token"),
                     ("patient", "reference"), ("subject", "reference"), ("business-status", "token"),
                     ("focus", "reference"), ("based-on", "reference"), ("priority", "token"))
REFERRAL_CATEGORY_VALUES = {"referral", "3457005", "http://snomed.info/sct|3457005"}


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


def _search(session, principal: Principal, raw: dict[str, str], rtype: str, query_text: str, count: int,
            offset: int):
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


# --- ServiceRequest (the referral variant) ---------------------------------------------------------

def claims_search(pairs: list[tuple[str, str]]) -> bool:
    """Referrals with ``category=referral`` (or the SNOMED code 3457005); otherwise exam orders (results store)."""
    return any(v in REFERRAL_CATEGORY_VALUES for k, v in pairs if k == "category")


def search_service_requests(ctx: Context, raw: dict[str, str], count: int, offset: int) -> Page:
    rows, more = _search(ctx.session, ctx.principal, raw, "ServiceRequest", ctx.query, count, offset)
    return Page([_sr(ctx.session, r) for r in rows], more)


def read_service_request(ctx: Context, rid: str) -> dict | None:
    """A referral (access: the sending or receiving institution; audited); None when the id is not one."""
    if ctx.session.get(Referral, rid) is None:
        return None
    return _sr(ctx.session, service.get_referral(ctx.session, ctx.principal, rid))


def _referral_fields(session, body: dict, principal: Principal) -> dict[str, Any]:
    subject = ref_id(body.get("subject"), "Patient")
    rec = session.get(PatientRecord, subject) if subject else None
    if rec is None or rec.deleted_at is not None:
        raise BadRequest("subject 须引用已有的 Patient / subject must reference an existing Patient",
                         expression=["ServiceRequest.subject"])
    direction = next((e.get("valueCode") for e in body.get("extension") or []
                      if e.get("url") == package.DIRECTION_EXT), None)
    performer = next((ref_id(p, "Organization") for p in body.get("performer") or []), None)
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


def claims_create(body: Any) -> bool:
    return isinstance(body, dict) and _is_referral_category(body)


def create_service_request(ctx: Context, body: dict) -> Created:
    """A referral (category 3457005): status ``draft`` keeps it a draft, ``active`` sends it."""
    session, principal = ctx.session, ctx.principal
    validate("ServiceRequest", body)
    if body.get("status") not in ("draft", "active"):
        raise BadRequest("新转诊单的 status 须为 draft 或 active / a new referral's status must be draft or active",
                         expression=["ServiceRequest.status"])
    f = _referral_fields(session, body, principal)
    r = service.draft_referral(session, principal, source="fhir", **f)
    if body["status"] == "active":
        require_scope(principal, "Task", "u")
        r = service.submit(session, principal, r.id)
    return Created(_sr(session, r), 201,
                   location=f"{ctx.base}/ServiceRequest/{r.id}/_history/{r.version_id}")


# --- Task ------------------------------------------------------------------------------------------

def search_tasks(ctx: Context, raw: dict[str, str], count: int, offset: int) -> Page:
    """Referral Tasks: owner, requester, status, business-status, patient, focus, priority, _count, _offset."""
    rows, more = _search(ctx.session, ctx.principal, raw, "Task", ctx.query, count, offset)
    return Page([package.task(r) for r in rows], more)


def read_task(ctx: Context, tid: str) -> dict:
    """A referral's workflow Task (access: the sending or receiving institution; audited)."""
    return package.task(service.get_referral(ctx.session, ctx.principal, tid))


def create_task(ctx: Context, body: dict) -> Created:
    """Send a draft referral: a Task whose ``focus`` is the referral's ServiceRequest, status ``requested``."""
    validate("Task", body)
    rid = ref_id(body.get("focus"), "ServiceRequest")
    if not rid or ctx.session.get(Referral, rid) is None:
        raise BadRequest("focus 须引用转诊单 ServiceRequest / focus must reference a referral ServiceRequest",
                         expression=["Task.focus"])
    if body.get("status") != "requested":
        raise BadRequest("新任务的 status 须为 requested / a new Task's status must be requested",
                         expression=["Task.status"])
    r = service.submit(ctx.session, ctx.principal, rid)
    return Created(package.task(r), 201, location=f"{ctx.base}/Task/{r.id}/_history/{r.version_id}")


def update_task(ctx: Context, tid: str, body: dict) -> dict:
    """Act on a referral by setting its Task's status (accepted, rejected + statusReason, in-progress =
    arrived, completed, cancelled)."""
    session, principal = ctx.session, ctx.principal
    validate("Task", body)
    if body.get("id") not in (None, tid):
        raise BadRequest("资源 id 与地址不一致 / the resource id does not match the URL", expression=["Task.id"])
    r = service.get_referral(session, principal, tid, audit_read=False)
    target = status_for_fhir_task(body.get("status", ""))
    if target is None:
        raise BadRequest("不支持的 Task.status / unsupported Task.status for a referral", expression=["Task.status"])
    if target.value == r.status or (target == Status.arrived and r.status == Status.arrived.value):
        return package.task(r)
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
    return package.task(r)


RESOURCES = [
    ResourceType("Task", read=read_task, search=search_tasks, search_params=TASK_PARAMS, create=create_task,
                 update=update_task, doc="The workflow Task of a two-way referral (issue 6)."),
]
VARIANTS = {
    "ServiceRequest": Variant("referrals (category 3457005)", claims=claims_create, create=create_service_request,
                              read=read_service_request, claims_search=claims_search, search=search_service_requests,
                              search_params=SR_PARAMS),
}
