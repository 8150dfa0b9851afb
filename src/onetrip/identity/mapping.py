"""PatientRecord ↔ FHIR R4 Patient JSON, and the version snapshot identity's services store with every write
(spine ``versions``). Imports no identity service, so the services can call it (``identity.fhir`` serves
the Patient type on top of both)."""

from __future__ import annotations

import datetime as dt

from onetrip.identity.schemas import PatientInput
from onetrip.kit.errors import BadRequest
from onetrip.kit.fhir import EN_REPRESENTATION, clean, meta, official_name, ref, ref_id, validate
from onetrip.kit.identifiers import SEX_TO_FHIR
from onetrip.persons.models import PatientRecord
from onetrip.registry.models import Organization
from onetrip.versions import service as versions

V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
RESIDENT_ID_SYSTEM = "urn:onetrip:sid:cn-resident-id"  # 居民身份证号 (GB 11643); OID not confirmed [U]
MRN_SYSTEM_PREFIX = "urn:onetrip:sid:mrn:"  # + organization code

# --- Patient --------------------------------------------------------------------------------------

def patient_to_fhir(rec: PatientRecord, org: Organization | None) -> dict:
    identifiers = [
        {"use": "usual", "type": {"coding": [{"system": V2_0203, "code": "MR"}]},
         "system": MRN_SYSTEM_PREFIX + (org.code if org else rec.organization_id), "value": rec.mrn,
         **({"assigner": ref("Organization", rec.organization_id, org.name if org else None)})},
    ]
    if rec.id_number:
        identifiers.append({"use": "official", "type": {"coding": [{"system": V2_0203, "code": "NNCHN"}],
                                                        "text": "居民身份证"},
                            "system": RESIDENT_ID_SYSTEM, "value": rec.id_number})
    names = [{"use": "official", "text": rec.name,
              "extension": [{"url": EN_REPRESENTATION, "valueCode": "IDE"}]}]
    if rec.name_pinyin:
        names.append({"use": "usual", "text": rec.name_pinyin,
                      "extension": [{"url": EN_REPRESENTATION, "valueCode": "ABC"}]})
    address = clean({"use": "home", "line": [x for x in (rec.street, rec.address_line) if x], "city": rec.city,
                     "district": rec.district, "state": rec.province, "country": "CN"})
    return clean({
        "resourceType": "Patient", "id": rec.id, "meta": meta(rec.version_id, rec.updated_at),
        "identifier": identifiers, "active": rec.active, "name": names,
        "telecom": [{"system": "phone", "value": rec.phone, "use": "mobile"}] if rec.phone else [],
        "gender": SEX_TO_FHIR.get(rec.sex, "unknown"),
        "birthDate": rec.birth_date.isoformat() if rec.birth_date else None,
        "address": [address] if len(address) > 2 else [],
        "managingOrganization": ref("Organization", rec.organization_id, org.name if org else None),
        # MPI (issue 3 §5): a duplicate registration merged into another record points at the survivor.
        # The survivor lists the records it replaces when the read path filled ``replaces_ids``.
        "link": ([{"other": ref("Patient", rec.replaced_by_id), "type": "replaced-by"}]
                 if getattr(rec, "replaced_by_id", None) else [])
        + [{"other": ref("Patient", x), "type": "replaces"} for x in getattr(rec, "replaces_ids", ())],
    })


def patient_from_fhir(body: dict, default_org_id: str | None) -> PatientInput:
    validate("Patient", body)
    mrn = id_number = None
    for ident in body.get("identifier", []):
        system = ident.get("system") or ""
        codes = {c.get("code") for c in (ident.get("type") or {}).get("coding", [])}
        if system == RESIDENT_ID_SYSTEM or "NNCHN" in codes:
            id_number = ident.get("value")
        elif system.startswith(MRN_SYSTEM_PREFIX) or "MR" in codes:
            mrn = ident.get("value")
    org_id = ref_id(body.get("managingOrganization"), "Organization") or default_org_id
    name = official_name(body.get("name", []))
    problems = []
    if not mrn:
        problems.append(("identifier", "需要本机构病案号（type MR）/ a Patient needs an MRN identifier (type MR)"))
    if not name:
        problems.append(("name", "需要姓名 / a Patient needs a name"))
    if not org_id:
        problems.append(("managingOrganization", "需要所属机构 / managingOrganization is required"))
    if problems:
        raise BadRequest("；".join(m for _, m in problems), expression=[f for f, _ in problems])
    phone = next((t.get("value") for t in body.get("telecom", []) if t.get("system") == "phone"), None)
    addr = (body.get("address") or [{}])[0]
    lines = addr.get("line") or []
    return PatientInput(
        organization_id=org_id, mrn=mrn, name=name, sex=body.get("gender"),
        birth_date=dt.date.fromisoformat(body["birthDate"]) if len(body.get("birthDate", "")) == 10 else None,
        id_number=id_number, phone=phone, province=addr.get("state"), city=addr.get("city"),
        district=addr.get("district"), street=lines[0] if lines else None,
        address_line=" ".join(lines[1:]) if len(lines) > 1 else None, active=body.get("active", True),
    )


def snapshot_patient(session, rec: PatientRecord, method: str) -> None:
    """Store this version of the record as FHIR JSON (spine ``versions``): identity's services call it in
    the same transaction as every write, whichever door the write came through."""
    content = None if method == "DELETE" else patient_to_fhir(rec, session.get(Organization, rec.organization_id))
    versions.snapshot(session, "Patient", rec.id, rec.version_id, method, content, rec.person_id)
