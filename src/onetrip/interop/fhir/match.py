"""FHIR ``POST /fhir/R4/Patient/$match`` (issue 3 §5): probabilistic search for a patient.

Mounted before the main FHIR router (whose ``/Patient/{pid}`` would otherwise take ``$match``).
Grades follow http://hl7.org/fhir/StructureDefinition/match-grade: *certain* at or above the MPI link
threshold, *probable* at or above the review threshold, *possible* at or above the possible threshold
(rule set ``mpi``); ``search.score`` is the match probability.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select

from onetrip.api.deps import DB, CurrentPrincipal, require_scope
from onetrip.identity import matching, mpi
from onetrip.identity import service as identity
from onetrip.identity.schemas import PatientInput
from onetrip.interop.fhir import mappers
from onetrip.kit.errors import BadRequest
from onetrip.registry.models import Organization

FHIR_JSON = "application/fhir+json"
MATCH_GRADE = "http://hl7.org/fhir/StructureDefinition/match-grade"
MAX_COUNT = 100
router = APIRouter(prefix="/fhir/R4", tags=["FHIR R4"])
Resource = Annotated[Any, Body(media_type=FHIR_JSON)]


def _parameters(body: Any) -> tuple[dict, bool, int]:
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise BadRequest("请求体须为 Parameters 资源 / the body must be a Parameters resource",
                         expression=["resourceType"])
    mappers.validate("Parameters", body)
    resource, only_certain, count = None, False, 10
    for p in body.get("parameter", []):
        name = p.get("name")
        if name == "resource":
            resource = p.get("resource")
        elif name == "onlyCertainMatches":
            if not isinstance(p.get("valueBoolean"), bool):
                raise BadRequest("onlyCertainMatches 须为 valueBoolean / onlyCertainMatches needs valueBoolean",
                                 expression=["Parameters.parameter.onlyCertainMatches"])
            only_certain = p["valueBoolean"]
        elif name == "count":
            v = p.get("valueInteger", p.get("valuePositiveInt"))
            if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= MAX_COUNT:
                raise BadRequest(f"count 须为 1–{MAX_COUNT} 的整数 / count must be an integer 1–{MAX_COUNT}",
                                 expression=["Parameters.parameter.count"])
            count = v
        else:
            raise BadRequest(f"不支持的参数 {name!r} / unknown parameter {name!r}", expression=["Parameters.parameter"])
    if not isinstance(resource, dict):
        raise BadRequest("缺少 resource 参数（Patient）/ the resource parameter (a Patient) is required",
                         expression=["Parameters.parameter.resource"])
    mappers.validate("Patient", resource)
    return resource, only_certain, count


def _features(resource: dict) -> matching.Features:
    """The demographics of the searched-for Patient, validated like a registration (R7.1, R7.2, R7.5)."""
    id_number = None
    for ident in resource.get("identifier", []):
        codes = {c.get("code") for c in (ident.get("type") or {}).get("coding", [])}
        if ident.get("system") == mappers.RESIDENT_ID_SYSTEM or "NNCHN" in codes:
            id_number = ident.get("value")
    name = mappers._official_name(resource.get("name", []))
    if not name:
        raise BadRequest("需要姓名 / the Patient to match needs a name", expression=["Patient.name"])
    birth = resource.get("birthDate")
    if birth and len(birth) != 10:
        raise BadRequest("出生日期须为完整日期 / birthDate must be a full date (YYYY-MM-DD)",
                         expression=["Patient.birthDate"])
    phone = next((t.get("value") for t in resource.get("telecom", []) if t.get("system") == "phone"), None)
    addr = (resource.get("address") or [{}])[0]
    lines = addr.get("line") or []
    data = PatientInput(organization_id="-", mrn="$match", name=name, sex=resource.get("gender"),
                        birth_date=dt.date.fromisoformat(birth) if birth else None, id_number=id_number,
                        phone=phone, district=addr.get("district"), street=lines[0] if lines else None,
                        address_line=" ".join(lines[1:]) if len(lines) > 1 else None)
    c = identity.clean(data)
    return matching.features(name=c.name, birth_date=c.birth_date, sex=c.sex, id_number=c.id_number,
                             phone=c.phone, district=data.district, street=data.street,
                             address_line=data.address_line)


@router.post("/Patient/$match")
def patient_match(request: Request, session: DB, principal: CurrentPrincipal, body: Resource) -> JSONResponse:
    """Find the registered patients most likely to be the one described (``resource``). Parameters:
    ``resource`` (Patient, required), ``onlyCertainMatches`` (boolean), ``count`` (1–100, default 10).
    Returns a searchset Bundle, best first, with ``search.score`` (match probability) and the
    match-grade extension (certain / probable / possible). Only records the caller may see are returned;
    each one is audited."""
    require_scope(principal, "Patient", "s")
    resource, only_certain, count = _parameters(body)
    results = mpi.match_patient(session, principal, _features(resource), only_certain=only_certain, count=count)
    base = str(request.base_url).rstrip("/") + "/fhir/R4"
    orgs = {o.id: o for o in session.scalars(select(Organization).where(
        Organization.id.in_({r.record.organization_id for r in results})))} if results else {}
    entries = []
    for r in results:
        pat = mappers.patient_to_fhir(r.record, orgs.get(r.record.organization_id))
        entries.append({"fullUrl": f"{base}/Patient/{r.record.id}", "resource": pat,
                        "search": {"mode": "match", "score": round(r.score.match_probability, 6),
                                   "extension": [{"url": MATCH_GRADE, "valueCode": r.grade}]}})
    bundle = {"resourceType": "Bundle", "type": "searchset", "total": len(entries), "entry": entries}
    return JSONResponse(bundle, media_type=FHIR_JSON)
