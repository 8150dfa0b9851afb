"""FHIR R4 Encounter (visits, issue 8): create, read and search, validated with fhir.resources R4B at the
boundary. Declared here, served by the façade (``onetrip.interop.fhir``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from onetrip.access import service as access
from onetrip.analytics import encounters
from onetrip.analytics.models import Encounter
from onetrip.audit import service as audit
from onetrip.kit.errors import BadRequest
from onetrip.kit.fhir import (
    Context,
    Created,
    Page,
    ResourceType,
    instant,
    params,
    parse_date,
    ref_id,
    validate,
)
from onetrip.persons.models import PatientRecord

CLASS_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
DEPT_SYSTEM = "urn:onetrip:cs:department"
COMMUNITY_EXT = "urn:onetrip:sd:medical-community"
LEVEL_EXT = "urn:onetrip:sd:organization-level"  # primary | county | outside
CLASS_DISPLAY = {"AMB": "ambulatory", "EMER": "emergency", "IMP": "inpatient encounter"}


def encounter_to_fhir(e: Encounter) -> dict:
    body: dict[str, Any] = {
        "resourceType": "Encounter", "id": e.id,
        "meta": {"lastUpdated": instant(e.updated_at)},
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
    return validate("Encounter", body)


def encounter_from_fhir(body: dict) -> dict:
    validate("Encounter", body)
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
    org_id = ref_id(provider, "Organization") if provider.get("reference") else None
    dept = None
    for coding in ((body.get("serviceType") or {}).get("coding") or []):
        if coding.get("system") == DEPT_SYSTEM:
            dept = coding.get("code")
    community = next((x.get("valueString") for x in body.get("extension") or [] if x.get("url") == COMMUNITY_EXT),
                     None)
    return {"visit_date": visit_date, "encounter_class": cls or "AMB",
            "patient_record_id": ref_id(body.get("subject"), "Patient"), "organization_id": org_id,
            "department_id": dept, "outside_institution": None if org_id else provider.get("display"),
            "community_id": community}


def create(ctx: Context, body: dict) -> Created:
    """Record a finished visit (门急诊/住院). ``serviceProvider`` references the institution, or — outside
    the county — only names it (``display``); ``class`` is AMB, EMER or IMP; ``period.start`` the date."""
    enc = encounters.record_encounter(ctx.session, ctx.principal, source="fhir", **encounter_from_fhir(body))
    return Created(encounter_to_fhir(enc), 201, location=f"{ctx.base}/Encounter/{enc.id}")


def read(ctx: Context, eid: str) -> dict:
    """One visit (audited read through the access policy)."""
    return encounter_to_fhir(encounters.read_encounter(ctx.session, ctx.principal, eid))


SEARCH_PARAMS = params(("patient", "reference"), ("subject", "reference"), ("date", "date"), ("class", "token"),
                       ("service-provider", "reference"), ("_id", "token"))


def _date_condition(value: str):
    kind, day = parse_date(value, "date")
    prefix, _, period = kind.partition("-")
    if period == "year":
        end = dt.date(day.year + 1, 1, 1)
    elif period == "month":
        end = dt.date(day.year + (day.month == 12), day.month % 12 + 1, 1)
    else:
        end = day + dt.timedelta(days=1)
    col = Encounter.visit_date
    return {"eq": (col >= day) & (col < end), "ge": col >= day, "gt": col >= end, "le": col < end,
            "lt": col < day}[prefix]


def search(ctx: Context, raw: dict[str, str], count: int, offset: int) -> Page:
    """Visits: ``patient`` (Patient/id: that resident's visits, through the access policy), ``date`` (the
    visit date, eq/ge/le/gt/lt, year, year-month), ``class`` (AMB, EMER, IMP), ``service-provider``
    (Organization/id), ``_id``. Without a patient a caller sees its own institution's visits. Newest first."""
    session, principal = ctx.session, ctx.principal
    q = select(Encounter)
    patient = raw.get("patient") or raw.get("subject")
    if patient:
        rec = session.get(PatientRecord, patient.split("/")[-1])
        if rec is None:
            return Page([])
        access.require_read(session, principal, rec.person_id, f"Encounter?{ctx.query}", subtype="search-type")
        q = q.where(Encounter.person_id == rec.person_id)
    elif not principal.is_operator:
        q = q.where(Encounter.organization_id == principal.organization_id)
    if raw.get("_id"):
        q = q.where(Encounter.id == raw["_id"])
    if raw.get("class"):
        q = q.where(Encounter.encounter_class == raw["class"].split("|")[-1])
    if raw.get("service-provider"):
        q = q.where(Encounter.organization_id == raw["service-provider"].split("/")[-1])
    if raw.get("date"):
        q = q.where(_date_condition(raw["date"]))
    if count == 0:
        return Page([])
    rows = list(session.scalars(q.order_by(Encounter.visit_date.desc(), Encounter.id).offset(offset).limit(count + 1)))
    has_more = len(rows) > count
    rows = rows[:count]
    if rows and not patient:
        audit.record(session, principal, "search-type", person_ids=[r.person_id for r in rows],
                     what=[f"Encounter/{r.id}" for r in rows], query=ctx.query)
    return Page([encounter_to_fhir(r) for r in rows], has_more)


RESOURCES = [
    ResourceType("Encounter", read=read, search=search, search_params=SEARCH_PARAMS, create=create,
                 doc="A finished visit (门急诊/住院) of a resident, in or outside the county (issue 8)."),
]
