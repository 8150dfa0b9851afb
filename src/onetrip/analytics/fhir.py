"""FHIR R4 Encounter: create and read (validated with fhir.resources R4B at the boundary)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from fastapi.responses import JSONResponse

from onetrip.analytics import encounters
from onetrip.analytics.models import Encounter
from onetrip.api.deps import DB, CurrentPrincipal, require_scope
from onetrip.interop.fhir import mappers
from onetrip.interop.fhir.router import base_url, fhir_response
from onetrip.kit.errors import BadRequest

router = APIRouter(prefix="/fhir/R4", tags=["FHIR R4 encounters"])
Resource_ = Annotated[dict[str, Any], Body(media_type="application/fhir+json")]

CLASS_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
DEPT_SYSTEM = "urn:onetrip:cs:department"
COMMUNITY_EXT = "urn:onetrip:sd:medical-community"
LEVEL_EXT = "urn:onetrip:sd:organization-level"  # primary | county | outside
CLASS_DISPLAY = {"AMB": "ambulatory", "EMER": "emergency", "IMP": "inpatient encounter"}


def encounter_to_fhir(e: Encounter) -> dict:
    body: dict[str, Any] = {
        "resourceType": "Encounter", "id": e.id,
        "meta": {"lastUpdated": mappers.instant(e.updated_at)},
        "status": e.status,
        "class": {"system": CLASS_SYSTEM, "code": e.encounter_class, "display": CLASS_DISPLAY[e.encounter_class]},
        "period": {"start": e.visit_date.isoformat(), "end": e.visit_date.isoformat()},
        "extension": [{"url": LEVEL_EXT, "valueCode": e.organization_level}]
                     + ([{"url": COMMUNITY_EXT, "valueString": e.community_id}] if e.community_id else []),
    }
    if e.patient_record_id:
        body["subject"] = {"reference": f"Patient/{e.patient_record_id}"}
    if e.organization_id:
        body["serviceProvider"] = {"reference": f"Organization/{e.organization_id}"}
    else:
        body["serviceProvider"] = {"display": e.outside_institution}
    if e.department_id:
        body["serviceType"] = {"coding": [{"system": DEPT_SYSTEM, "code": e.department_id}]}
    return mappers.validate("Encounter", body)


def encounter_from_fhir(body: dict) -> dict:
    mappers.validate("Encounter", body)
    if body.get("status") not in ("finished", None):
        raise BadRequest("只接收已完成的就诊 / only finished encounters are recorded", expression=["status"])
    cls = (body.get("class") or {}).get("code")
    start = (body.get("period") or {}).get("start")
    if not start:
        raise BadRequest("需要 period.start（就诊日期） / period.start (the visit date) is required",
                         expression=["period.start"])
    try:
        visit_date = dt.date.fromisoformat(start[:10])
    except ValueError:
        raise BadRequest("period.start 不是日期 / period.start is not a date", expression=["period.start"]) from None
    provider = body.get("serviceProvider") or {}
    org_id = mappers.ref_id(provider, "Organization") if provider.get("reference") else None
    dept = None
    for coding in ((body.get("serviceType") or {}).get("coding") or []):
        if coding.get("system") == DEPT_SYSTEM:
            dept = coding.get("code")
    community = next((x.get("valueString") for x in body.get("extension") or [] if x.get("url") == COMMUNITY_EXT),
                     None)
    return {"visit_date": visit_date, "encounter_class": cls or "AMB",
            "patient_record_id": mappers.ref_id(body.get("subject"), "Patient"), "organization_id": org_id,
            "department_id": dept, "outside_institution": None if org_id else provider.get("display"),
            "community_id": community}


@router.post("/Encounter", status_code=201)
def create_encounter(request: Request, session: DB, principal: CurrentPrincipal, body: Resource_) -> JSONResponse:
    """Record a finished visit (门急诊/住院). ``serviceProvider`` references the institution, or — outside
    the county — only names it (``display``); ``class`` is AMB, EMER or IMP; ``period.start`` the date."""
    require_scope(principal, "Encounter", "c")
    enc = encounters.record_encounter(session, principal, source="fhir", **encounter_from_fhir(body))
    return fhir_response(encounter_to_fhir(enc), 201, location=f"{base_url(request)}/Encounter/{enc.id}")


@router.get("/Encounter/{eid}")
def read_encounter(eid: str, session: DB, principal: CurrentPrincipal) -> JSONResponse:
    """One visit (audited read through the access policy)."""
    require_scope(principal, "Encounter", "r")
    return fhir_response(encounter_to_fhir(encounters.read_encounter(session, principal, eid)))
