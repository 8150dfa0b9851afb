"""FHIR R4 ``AuditEvent`` (BALP-shaped), read-only: admins, or system clients with ``system/AuditEvent``
or ``system/*``. Declared here, served by the façade (``onetrip.interop.fhir``)."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from sqlalchemy import select

from onetrip.audit import service as audit
from onetrip.audit.models import AuditEvent
from onetrip.kit.errors import AccessDenied, NotFound
from onetrip.kit.fhir import Context, Page, ResourceType, ascii_digits, clean, instant, params, parse_date
from onetrip.kit.principal import Principal

_TYPE = {
    "rest": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest",
             "display": "RESTful Operation"},
    "110113": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110113",
               "display": "Security Alert"},
}
_SUBTYPE_SYSTEM = "http://hl7.org/fhir/restful-interaction"


def audit_to_fhir(ev: AuditEvent) -> dict:
    agent: dict[str, Any] = {
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                             "code": "IRCP", "display": "information recipient"}]},
        "who": clean({"identifier": clean({"value": ev.agent_user_id or ev.agent_client_id or "anonymous"}),
                      "display": ev.agent_name}),
        "requestor": True,
        "network": {"address": ev.network_address, "type": "2"} if ev.network_address else None,
        "purposeOfUse": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                                      "code": ev.purpose_of_use}]}] if ev.purpose_of_use else [],
    }
    entities = []
    if ev.entity_person_id:
        entities.append({"what": {"identifier": {"system": "urn:onetrip:person", "value": ev.entity_person_id}},
                         "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1"},
                         "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1"}})
    if ev.entity_what:
        entities.append({"what": {"reference": ev.entity_what},
                         "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2"}})
    if ev.query:
        entities.append({"type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2"},
                         "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "24"},
                         "query": base64.b64encode(ev.query.encode("utf-8")).decode("ascii")})
    return clean({
        "resourceType": "AuditEvent", "id": str(ev.seq),
        "type": _TYPE.get(ev.type_code, {"code": ev.type_code}),
        "subtype": [{"system": _SUBTYPE_SYSTEM, "code": ev.subtype}] if ev.subtype else [],
        "action": ev.action, "recorded": instant(ev.recorded_at),
        "outcome": ev.outcome, "outcomeDesc": ev.outcome_desc,
        "purposeOfEvent": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                                        "code": ev.purpose_of_use}]}] if ev.purpose_of_use else [],
        "agent": [clean(agent)],
        "source": {"observer": {"display": f"onetrip/{ev.source}"},
                   "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "4"}]},
        "entity": entities,
    })


def require_audit_reader(principal: Principal, _permission: str = "r") -> None:
    if not (principal.is_admin or (principal.kind == "client" and any(
            s.context == "system" and s.resource in ("*", "AuditEvent") for s in principal.scopes))):
        raise AccessDenied("只有管理员可以查看审计日志 / only admins read the audit trail")


SEARCH_PARAMS = params(("patient", "reference"), ("date", "date"), ("agent", "token"), ("subtype", "token"),
                       ("outcome", "token"), ("_id", "token"))


def search(ctx: Context, raw: dict[str, str], count: int, offset: int) -> Page:
    """Search the audit trail (admins): ``patient`` (person id), ``date`` (ge/le), ``agent``, ``subtype``,
    ``outcome``. Newest first."""
    stmt = select(AuditEvent)
    if "patient" in raw:
        stmt = stmt.where(AuditEvent.entity_person_id == raw["patient"].split("/")[-1])
    if "agent" in raw:
        stmt = stmt.where((AuditEvent.agent_user_id == raw["agent"]) | (AuditEvent.agent_name == raw["agent"]))
    if "subtype" in raw:
        stmt = stmt.where(AuditEvent.subtype == raw["subtype"])
    if "outcome" in raw:
        stmt = stmt.where(AuditEvent.outcome == raw["outcome"])
    if "_id" in raw:
        stmt = stmt.where(AuditEvent.seq == (int(raw["_id"]) if ascii_digits(raw["_id"]) and len(raw["_id"]) < 18 else -1))
    if "date" in raw:
        prefix, d = parse_date(raw["date"], "date")
        start = dt.datetime.combine(d, dt.time(), tzinfo=dt.UTC)
        if prefix.startswith("ge") or prefix.startswith("gt"):
            stmt = stmt.where(AuditEvent.recorded_at >= start)
        elif prefix.startswith("le") or prefix.startswith("lt"):
            stmt = stmt.where(AuditEvent.recorded_at < start + dt.timedelta(days=1))
        else:
            stmt = stmt.where(AuditEvent.recorded_at >= start, AuditEvent.recorded_at < start + dt.timedelta(days=1))
    rows = list(ctx.session.scalars(stmt.order_by(AuditEvent.seq.desc()).offset(offset).limit(count + 1)))
    audit.record(ctx.session, ctx.principal, "search-type", what=["AuditEvent"], query=ctx.query)
    return Page([audit_to_fhir(e) for e in rows[:count]], len(rows) > count)


def read(ctx: Context, aid: str) -> dict:
    """Read one audit event (its sequence number)."""
    ev = ctx.session.get(AuditEvent, int(aid)) if ascii_digits(aid) and len(aid) < 18 else None
    if ev is None:
        raise NotFound("审计事件不存在 / audit event not found")
    return audit_to_fhir(ev)


RESOURCES = [
    ResourceType("AuditEvent", read=read, search=search, search_params=SEARCH_PARAMS, authorize=require_audit_reader,
                 default_count=50, doc="The audit trail (BALP-shaped; hash-chained, append-only)."),
]
