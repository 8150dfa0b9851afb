"""The referral package (转诊资料包, RULES R2.3): what travels with the patient, assembled automatically.

The referral's own content (reason, criteria, diagnoses, history, treatment, medication; downward also the
discharge summary and rehabilitation plan) was written for the receiving side and is always shown to it.
The patient's shared results and images come from the shared record (records/) through the access policy:
the receiving institution reads them once it has accepted the referral (care relationship, A5); before
that the read is refused and audited, and the package says so.

Rendered as a FHIR R4 collection Bundle (validated with fhir.resources R4B: Patient, ServiceRequest,
Task, Condition, MedicationStatement, DocumentReference, CarePlan, DiagnosticReport, Observation,
ImagingStudy) and as a printable letter (HTML with print CSS; see templates/referral/letter.html).
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from onetrip.identity.fhir import patient_to_fhir
from onetrip.kit import clock
from onetrip.kit.errors import AccessDenied
from onetrip.kit.fhir import instant, model_class
from onetrip.kit.masking import mask_id_number, mask_phone
from onetrip.kit.principal import Principal
from onetrip.persons.models import PatientRecord, Person
from onetrip.referral import service
from onetrip.referral.models import Referral
from onetrip.referral.states import fhir_status
from onetrip.registry.models import Department, Organization

REFERRAL_CATEGORY = {"system": "http://snomed.info/sct", "code": "3457005", "display": "Patient referral"}
CRITERIA_SYSTEM = "urn:onetrip:cs:referral-criteria"  # R2.1 U1–U6, R2.2 D1–D6
DIRECTION_EXT = "urn:onetrip:sd:referral-direction"  # up | down
STATE_SYSTEM = "urn:onetrip:cs:referral-state"  # our lifecycle state (Task.businessStatus)
RESERVED_EXT = "urn:onetrip:sd:referral-reserved-slot"
SOURCE_EXT = "urn:onetrip:sd:referral-source"


@dataclass
class Package:
    referral: Referral
    patient: dict[str, Any]
    record: PatientRecord | None
    from_org: Organization
    to_org: Organization | None
    to_department: Department | None
    criteria: list[dict[str, str]]
    results: list[Any] = field(default_factory=list)  # records.schemas.TimelineItem
    results_note: str | None = None  # why results are not shown (access refused)
    appointment: Any = None

    @property
    def downward(self) -> bool:
        return self.referral.direction == "down"


def _age(birth: dt.date | None, on: dt.date) -> int | None:
    if birth is None:
        return None
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def assemble(session: Session, principal: Principal, r: Referral, *, with_results: bool = True) -> Package:
    """Everything the receiving doctor needs, in one object (the caller has read the referral)."""
    rec = session.get(PatientRecord, r.patient_record_id) if r.patient_record_id else None
    person = session.get(Person, r.person_id)
    src = rec or person
    patient = {
        "name": src.name, "sex": src.sex, "birth_date": src.birth_date, "age": _age(src.birth_date, clock.utcnow().date()),
        "id_number": src.id_number or (person.id_number if person else None), "phone": src.phone,
        "mrn": rec.mrn if rec else None,
        "address": " ".join(x for x in (src.province, src.city, src.district, src.street, src.address_line) if x),
    }
    crit = {c["code"]: c for c in service.criteria(session, r.direction)}
    pkg = Package(
        referral=r, patient=patient, record=rec, from_org=session.get(Organization, r.from_organization_id),
        to_org=session.get(Organization, r.to_organization_id) if r.to_organization_id else None,
        to_department=session.get(Department, r.to_department_id) if r.to_department_id else None,
        criteria=[crit.get(c, {"code": c, "zh": c, "en": c}) for c in r.criteria_codes or []],
    )
    if r.appointment_id:
        from onetrip.scheduling.interface import Appointment

        pkg.appointment = session.get(Appointment, r.appointment_id)
    if with_results:
        from onetrip.records.interface import timeline

        days = int(service.settings(session).get("results_days", 180))
        try:
            pkg.results = timeline(session, principal, r.person_id,
                                           since=clock.utcnow() - dt.timedelta(days=days))
        except AccessDenied:
            pkg.results_note = ("接收机构接诊后可查阅共享检查检验结果 / shared results become readable to the "
                                "receiving institution once it accepts the referral")
    return pkg


def masked_patient(pkg: Package, fields: list[str]) -> dict[str, Any]:
    """The patient block with the listed identifiers masked (referral.letter_masked_fields)."""
    p = dict(pkg.patient)
    if "id_number" in fields:
        p["id_number"] = mask_id_number(p["id_number"])
    if "phone" in fields:
        p["phone"] = mask_phone(p["phone"])
    return p


# --- FHIR ----------------------------------------------------------------------------------------

def _iso(t: dt.datetime | None) -> str | None:
    return instant(t) if t else None


def _org_ref(org: Organization | None) -> dict | None:
    return {"reference": f"Organization/{org.id}", "display": org.name} if org else None


def _patient_ref(r: Referral) -> dict:
    return {"reference": f"Patient/{r.patient_record_id}"} if r.patient_record_id else {
        "identifier": {"system": "urn:onetrip:sid:person", "value": r.person_id}}


def service_request(r: Referral, from_org: Organization | None = None, to_org: Organization | None = None,
                    criteria: list[dict] | None = None) -> dict:
    """The referral as a FHIR ServiceRequest (category: patient referral)."""
    sr_status, _ = fhir_status(r.status)
    notes = [t for t in (
        f"病史摘要 / history: {r.history_summary}" if r.history_summary else None,
        f"诊疗经过 / treatment so far: {r.treatment_summary}" if r.treatment_summary else None,
        f"备注 / note: {r.note}" if r.note else None,
    ) if t]
    crit = {c["code"]: c for c in criteria or []}
    body = {
        "resourceType": "ServiceRequest", "id": r.id,
        "meta": {"versionId": str(r.version_id), "lastUpdated": _iso(r.updated_at)},
        "extension": [{"url": DIRECTION_EXT, "valueCode": r.direction},
                      {"url": RESERVED_EXT, "valueBoolean": bool(r.reserved_slot)},
                      {"url": SOURCE_EXT, "valueString": r.source}],
        "identifier": [{"system": "urn:onetrip:sid:referral", "value": r.id}],
        "status": sr_status, "intent": "order", "priority": "urgent" if r.urgent else "routine",
        "category": [{"coding": [REFERRAL_CATEGORY], "text": "转诊"}],
        "code": {"text": "上转 / upward referral" if r.direction == "up" else "下转 / downward referral"},
        "subject": _patient_ref(r),
        "authoredOn": _iso(r.submitted_at or r.created_at),
        "requester": _org_ref(from_org) or {"reference": f"Organization/{r.from_organization_id}"},
        "performer": [x for x in [_org_ref(to_org) or (
            {"reference": f"Organization/{r.to_organization_id}"} if r.to_organization_id else None)] if x],
        "reasonCode": [{"coding": [{"system": CRITERIA_SYSTEM, "code": c,
                                    **({"display": crit[c]["zh"]} if c in crit else {})}]}
                       for c in r.criteria_codes or []] + ([{"text": r.reason}] if r.reason else []),
        "reasonReference": [{"reference": f"Condition/{r.id}-dx{i}"} for i in range(len(r.diagnoses or []))],
        "note": [{"text": t} for t in notes],
    }
    if r.appointment_id:
        body["extension"].append({"url": "urn:onetrip:sd:referral-appointment",
                                  "valueReference": {"reference": f"Appointment/{r.appointment_id}"}})
    return {k: v for k, v in body.items() if v not in (None, [], "")}


def task(r: Referral) -> dict:
    """The referral's workflow Task: who must act (owner) and by when (restriction.period.end)."""
    _, task_status = fhir_status(r.status)
    body: dict[str, Any] = {
        "resourceType": "Task", "id": r.id,
        "meta": {"versionId": str(r.version_id), "lastUpdated": _iso(r.updated_at)},
        "identifier": [{"system": "urn:onetrip:sid:referral", "value": r.id}],
        "basedOn": [{"reference": f"ServiceRequest/{r.id}"}],
        "status": task_status, "intent": "order", "priority": "urgent" if r.urgent else "routine",
        "businessStatus": {"coding": [{"system": STATE_SYSTEM, "code": r.status}], "text": r.status},
        "code": {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]},
        "focus": {"reference": f"ServiceRequest/{r.id}"}, "for": _patient_ref(r),
        "authoredOn": _iso(r.submitted_at or r.created_at), "lastModified": _iso(r.updated_at),
        "requester": {"reference": f"Organization/{r.from_organization_id}"},
    }
    if r.to_organization_id:
        body["owner"] = {"reference": f"Organization/{r.to_organization_id}"}
    if r.due_at:
        body["restriction"] = {"period": {"end": _iso(r.due_at)}}
    reason = r.reject_reason or r.cancel_reason
    if reason:
        body["statusReason"] = {"text": reason}
    if r.appointment_id:
        body["output"] = [{"type": {"text": "appointment"},
                           "valueReference": {"reference": f"Appointment/{r.appointment_id}"}}]
    return body


def _conditions(r: Referral) -> list[dict]:
    cat = service.icd10_catalogue()
    return [{
        "resourceType": "Condition", "id": f"{r.id}-dx{i}",
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                       "code": "active"}]},
        "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                                           "code": "provisional" if r.direction == "up" else "confirmed"}]},
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-category",
                                  "code": "encounter-diagnosis"}]}],
        "code": {"coding": [{"system": cat["system"], "code": d["code"], "display": d.get("display")}],
                 "text": d.get("display")},
        "subject": _patient_ref(r), "recordedDate": _iso(r.submitted_at or r.created_at),
    } for i, d in enumerate(r.diagnoses or [])]


def _medications(r: Referral) -> list[dict]:
    out = []
    for i, m in enumerate(r.medications or []):
        concept: dict[str, Any] = {"text": m["name"]}
        if m.get("code"):
            concept["coding"] = [{"system": "urn:onetrip:cs:drug", "code": m["code"], "display": m["name"]}]
        out.append({"resourceType": "MedicationStatement", "id": f"{r.id}-med{i}", "status": "active",
                    "medicationCodeableConcept": concept, "subject": _patient_ref(r),
                    **({"dosage": [{"text": m["dose"]}]} if m.get("dose") else {})})
    return out


def _documents(r: Referral) -> list[dict]:
    out: list[dict] = []
    if r.discharge_summary:
        out.append({
            "resourceType": "DocumentReference", "id": f"{r.id}-discharge", "status": "current",
            "type": {"coding": [{"system": "http://loinc.org", "code": "18842-5", "display": "Discharge summary"}],
                     "text": "出院小结"},
            "subject": _patient_ref(r), "date": _iso(r.submitted_at or r.created_at),
            "content": [{"attachment": {"contentType": "text/plain; charset=utf-8", "title": "出院小结",
                                        "data": base64.b64encode(r.discharge_summary.encode()).decode()}}],
        })
    if r.rehab_plan:
        out.append({"resourceType": "CarePlan", "id": f"{r.id}-rehab", "status": "active", "intent": "plan",
                    "title": "康复计划 / rehabilitation plan", "description": r.rehab_plan,
                    "subject": _patient_ref(r)})
    return out


def to_bundle(session: Session, pkg: Package, base: str = "") -> dict:
    """The package as a FHIR collection Bundle; every entry validated with fhir.resources (R4B)."""
    from onetrip.records.interface import fhir_results

    r = pkg.referral
    resources: list[dict] = []
    if pkg.record is not None:
        resources.append(patient_to_fhir(pkg.record, session.get(Organization, pkg.record.organization_id)))
    resources += [service_request(r, pkg.from_org, pkg.to_org, pkg.criteria), task(r)]
    resources += _conditions(r) + _medications(r) + _documents(r)
    resources += fhir_results(session, pkg.results)
    entries = []
    for res in resources:
        model_class(res["resourceType"]).model_validate(res)
        entries.append({"fullUrl": f"{base}/fhir/R4/{res['resourceType']}/{res['id']}", "resource": res})
    bundle = {"resourceType": "Bundle", "id": f"referral-{r.id}", "type": "collection",
              "timestamp": instant(clock.utcnow()), "entry": entries}
    model_class("Bundle").model_validate(bundle)
    return bundle


def patient_history(session: Session, person_id: str, limit: int = 100) -> list[Referral]:
    return list(session.scalars(select(Referral).where(Referral.person_id == person_id)
                                .order_by(Referral.created_at.desc()).limit(limit)))
