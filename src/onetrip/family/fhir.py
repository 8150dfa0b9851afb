"""FHIR R4 for self-check readings: ``POST /fhir/R4/Observation`` and ``GET /fhir/R4/Observation/{id}``.

Included before the records router: an Observation that ``readings.is_self_check`` claims (BP panel
85354-9 with components 8480-6 / 8462-4, or a glucose code such as 2339-0 / 1558-6 marked as measured by the
patient or a device) is stored as a reading; every other Observation is handed to the records service unchanged
(``records.fhir.create``), so there is one store per kind of data and one URL for clients.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse

from onetrip.access import service as access
from onetrip.api.deps import DB, CurrentPrincipal, require_scope
from onetrip.family import readings
from onetrip.family.models import Reading
from onetrip.identity.models import PatientRecord, Person
from onetrip.interop.fhir import mappers
from onetrip.interop.fhir.router import Resource, base_url, fhir_response
from onetrip.kit.errors import BadRequest
from onetrip.records import fhir as records_fhir
from onetrip.records import service as records_service

router = APIRouter(prefix="/fhir/R4", tags=["FHIR R4 self-check readings"])


def _person_of(session, body: dict) -> str:
    subject = body.get("subject") or {}
    ref = subject.get("reference") or ""
    if ref.startswith("Patient/"):
        rec = session.get(PatientRecord, mappers.ref_id(subject, "Patient"))
        if rec is None or rec.deleted_at is not None:
            raise BadRequest("患者不存在 / the referenced Patient does not exist", code="not-found",
                             expression=["subject"])
        return rec.person_id
    ident = subject.get("identifier") or {}
    if ident.get("system") == mappers.RESIDENT_ID_SYSTEM and ident.get("value"):
        from sqlalchemy import select

        person = session.scalars(select(Person).where(Person.id_number == str(ident["value"]).upper())).first()
        if person is not None:
            return person.id
        raise BadRequest("未找到该居民 / no resident with this ID number", code="not-found", expression=["subject"])
    raise BadRequest("需要患者（Patient 引用或居民身份证号标识）/ subject must reference a Patient or carry the resident "
                     "ID identifier", expression=["subject"])


@router.post("/Observation", status_code=201, name="create_Observation_with_readings")
def create_observation(request: Request, session: DB, principal: CurrentPrincipal, body: Resource,
                       if_none_exist: Annotated[str | None, Header()] = None) -> JSONResponse:
    """Create an Observation. Self-check BP and glucose readings (kiosk, home device) are stored as
    readings and may raise an alert for the family-doctor team; laboratory results go to the shared
    results store (idempotent on the sender's identifier; ``If-None-Exist`` supported there)."""
    if not readings.is_self_check(body):
        status, out = records_fhir.create(session, principal, "Observation", body, if_none_exist)
        return fhir_response(out, status, location=f"{base_url(request)}/Observation/{out['id']}/_history/1")
    require_scope(principal, "Observation", "c")
    mappers.validate("Observation", body)
    person_id = _person_of(session, body)
    if not principal.is_operator:
        access.require_read(session, principal, person_id, f"Patient/{person_id}")
    fields = readings.reading_from_fhir(body)
    effective = body.get("effectiveDateTime") or (body.get("effectivePeriod") or {}).get("start")
    at = records_fhir._datetime(effective, "effective") if effective else None
    ident = next((i for i in body.get("identifier") or [] if i.get("system") and i.get("value")), None)
    source = "kiosk" if principal.organization_id else "fhir"
    r, created = readings.store_reading(session, principal, person_id=person_id, measured_at=at, source=source,
                                        source_system=ident["system"] if ident else None,
                                        source_id=ident["value"] if ident else None, resource=body, **fields)
    out = readings.reading_to_fhir(r)
    return fhir_response(out, 201 if created else 200, location=f"{base_url(request)}/Observation/{r.id}/_history/1")


@router.get("/Observation/{rid}", name="read_Observation_with_readings")
def read_observation(rid: str, session: DB, principal: CurrentPrincipal) -> JSONResponse:
    """Read an Observation: a self-check reading, or a shared result (access policy; audited)."""
    require_scope(principal, "Observation", "r")
    r = session.get(Reading, rid)
    if r is None:
        from onetrip.records.models import Observation

        return fhir_response(records_fhir.to_fhir(session, records_service.read(session, principal, Observation, rid)))
    access.require_read(session, principal, r.person_id, f"Observation/{r.id}")
    return fhir_response(readings.reading_to_fhir(r))
