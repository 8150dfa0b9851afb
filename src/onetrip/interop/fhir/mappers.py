"""Our tables ↔ FHIR R4 JSON. Outgoing resources validate with fhir.resources; incoming ones are
validated first (``validate``) and then mapped onto the services' input shapes.

fhir.resources 8 ships R5 (default), R4B and STU3. R4B (4.3) is structurally identical to R4 (4.0.1) for
every resource served here, so we validate with ``fhir.resources.R4B`` — the closest the library ships.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import ValidationError

from onetrip.audit.models import AuditEvent
from onetrip.identity.models import PatientRecord
from onetrip.identity.schemas import PatientInput
from onetrip.kit.errors import BadRequest
from onetrip.kit.identifiers import SEX_TO_FHIR
from onetrip.registry.models import ORG_TYPE_LABELS, Organization, OrgType, Practitioner

V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
RESIDENT_ID_SYSTEM = "urn:onetrip:sid:cn-resident-id"  # 居民身份证号 (GB 11643); OID not confirmed [U]
MRN_SYSTEM_PREFIX = "urn:onetrip:sid:mrn:"  # + organization code
USCC_SYSTEM = "urn:onetrip:sid:cn-uscc"  # 统一社会信用代码 (GB 32100)
ORG_CODE_SYSTEM = "urn:onetrip:sid:org-code"
ORG_TYPE_SYSTEM = "urn:onetrip:cs:org-type"
STAFF_NO_SYSTEM_PREFIX = "urn:onetrip:sid:staff:"
GRADE_EXT = "urn:onetrip:sd:hospital-grade"
EN_REPRESENTATION = "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation"

_MODELS: dict[str, Any] = {}


def model_class(resource_type: str):
    if resource_type not in _MODELS:
        import importlib

        module = importlib.import_module(f"fhir.resources.R4B.{resource_type.lower()}")
        _MODELS[resource_type] = getattr(module, resource_type)
    return _MODELS[resource_type]


def validate(resource_type: str, body: Any) -> dict:
    """Check a client's JSON against the FHIR model; 400 with every problem listed otherwise."""
    if not isinstance(body, dict):
        raise BadRequest("请求体须为 FHIR JSON 对象 / the body must be a FHIR JSON object")
    if body.get("resourceType") != resource_type:
        raise BadRequest(f"resourceType 应为 {resource_type} / resourceType must be {resource_type!r}, "
                         f"got {body.get('resourceType')!r}", expression=["resourceType"])
    try:
        model_class(resource_type).model_validate(body)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in e.errors()[:10])
        raise BadRequest(f"FHIR 资源校验失败 / invalid {resource_type}: {problems}") from None
    return body


def instant(value: dt.datetime) -> str:
    """A FHIR instant in UTC with the Z suffix: 2026-11-23T02:18:09.662749Z."""
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _meta(version: int, updated: dt.datetime) -> dict:
    return {"versionId": str(version), "lastUpdated": instant(updated)}


def _ref(kind: str, id_: str | None, display: str | None = None) -> dict | None:
    if not id_:
        return None
    return {"reference": f"{kind}/{id_}", **({"display": display} if display else {})}


def ref_id(ref: dict | None, kind: str) -> str | None:
    if not ref or not isinstance(ref.get("reference"), str):
        return None
    parts = ref["reference"].rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] == kind:
        return parts[-1]
    raise BadRequest(f"引用应指向 {kind} / reference must point to a {kind}: {ref['reference']!r}")


def _clean(d: dict) -> dict:
    return {k: v for k, v in d.items() if v not in (None, [], {}, "")}


# --- Patient --------------------------------------------------------------------------------------

def patient_to_fhir(rec: PatientRecord, org: Organization | None) -> dict:
    identifiers = [
        {"use": "usual", "type": {"coding": [{"system": V2_0203, "code": "MR"}]},
         "system": MRN_SYSTEM_PREFIX + (org.code if org else rec.organization_id), "value": rec.mrn,
         **({"assigner": _ref("Organization", rec.organization_id, org.name if org else None)})},
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
    address = _clean({"use": "home", "line": [x for x in (rec.street, rec.address_line) if x], "city": rec.city,
                      "district": rec.district, "state": rec.province, "country": "CN"})
    return _clean({
        "resourceType": "Patient", "id": rec.id, "meta": _meta(rec.version_id, rec.updated_at),
        "identifier": identifiers, "active": rec.active, "name": names,
        "telecom": [{"system": "phone", "value": rec.phone, "use": "mobile"}] if rec.phone else [],
        "gender": SEX_TO_FHIR.get(rec.sex, "unknown"),
        "birthDate": rec.birth_date.isoformat() if rec.birth_date else None,
        "address": [address] if len(address) > 2 else [],
        "managingOrganization": _ref("Organization", rec.organization_id, org.name if org else None),
        # MPI (issue 3 §5): a duplicate registration merged into another record points at the survivor.
        # The survivor lists the records it replaces when the read path filled ``replaces_ids``.
        "link": ([{"other": _ref("Patient", rec.replaced_by_id), "type": "replaced-by"}]
                 if getattr(rec, "replaced_by_id", None) else [])
        + [{"other": _ref("Patient", x), "type": "replaces"} for x in getattr(rec, "replaces_ids", ())],
    })


def _official_name(names: list[dict]) -> str | None:
    ranked = sorted(names, key=lambda n: 0 if n.get("use") == "official" else 1)
    for n in ranked:
        rep = next((e.get("valueCode") for e in n.get("extension", []) if e.get("url") == EN_REPRESENTATION), None)
        if rep == "ABC" and len(ranked) > 1:
            continue
        if n.get("text"):
            return n["text"]
        if n.get("family") or n.get("given"):
            return (n.get("family") or "") + "".join(n.get("given") or [])
    return None


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
    name = _official_name(body.get("name", []))
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


# --- Organization ---------------------------------------------------------------------------------

def organization_to_fhir(org: Organization) -> dict:
    idents = [{"system": ORG_CODE_SYSTEM, "value": org.code}]
    if org.uscc:
        idents.append({"system": USCC_SYSTEM, "value": org.uscc, "type": {"text": "统一社会信用代码"}})
    ot = OrgType(org.org_type) if org.org_type in OrgType.__members__ else None
    return _clean({
        "resourceType": "Organization", "id": org.id, "meta": _meta(org.version_id, org.updated_at),
        "extension": [{"url": GRADE_EXT, "valueCode": org.grade}] if org.grade else [],
        "identifier": idents, "active": org.active,
        "type": [{"coding": [{"system": ORG_TYPE_SYSTEM, "code": org.org_type,
                              "display": ORG_TYPE_LABELS.get(ot, org.org_type)}]}],
        "name": org.name, "alias": [org.name_en] if org.name_en else [],
        "telecom": [{"system": "phone", "value": org.phone}] if org.phone else [],
        "address": [{"text": org.address}] if org.address else [],
        "partOf": _ref("Organization", org.parent_id),
    })


def organization_from_fhir(body: dict) -> dict:
    validate("Organization", body)
    code = uscc = None
    for ident in body.get("identifier", []):
        if ident.get("system") == ORG_CODE_SYSTEM:
            code = ident.get("value")
        elif ident.get("system") == USCC_SYSTEM:
            uscc = ident.get("value")
    org_type = next((c.get("code") for t in body.get("type", []) for c in t.get("coding", [])
                     if c.get("system") == ORG_TYPE_SYSTEM), None)
    grade = next((e.get("valueCode") for e in body.get("extension", []) if e.get("url") == GRADE_EXT), None)
    problems = []
    if not code:
        problems.append(("identifier", f"需要机构代码（system {ORG_CODE_SYSTEM}）/ an identifier with system "
                                       f"{ORG_CODE_SYSTEM} is required"))
    if not body.get("name"):
        problems.append(("name", "需要机构名称 / name is required"))
    if not org_type:
        problems.append(("type", f"需要机构类型（system {ORG_TYPE_SYSTEM}）/ type with system {ORG_TYPE_SYSTEM} "
                                 f"is required: {', '.join(OrgType.__members__)}"))
    if problems:
        raise BadRequest("；".join(m for _, m in problems), expression=[f for f, _ in problems])
    phone = next((t.get("value") for t in body.get("telecom", []) if t.get("system") == "phone"), None)
    return {"code": code, "name": body["name"], "org_type": org_type, "grade": grade, "uscc": uscc,
            "parent_id": ref_id(body.get("partOf"), "Organization"), "name_en": (body.get("alias") or [None])[0],
            "address": ((body.get("address") or [{}])[0]).get("text"), "phone": phone,
            "active": body.get("active", True)}


# --- Practitioner ---------------------------------------------------------------------------------

def practitioner_to_fhir(pr: Practitioner, org: Organization | None) -> dict:
    idents = []
    if pr.staff_no and org:
        idents.append({"system": STAFF_NO_SYSTEM_PREFIX + org.code, "value": pr.staff_no})
    if pr.licence_no:
        idents.append({"system": "urn:onetrip:sid:practitioner-licence", "value": pr.licence_no})
    return _clean({
        "resourceType": "Practitioner", "id": pr.id, "meta": _meta(pr.version_id, pr.updated_at),
        "identifier": idents, "active": pr.active,
        "name": [{"use": "official", "text": pr.name}, {"use": "usual", "text": pr.name_pinyin,
                                                        "extension": [{"url": EN_REPRESENTATION, "valueCode": "ABC"}]}],
        "telecom": [{"system": "phone", "value": pr.phone, "use": "work"}] if pr.phone else [],
        "gender": SEX_TO_FHIR.get(pr.sex, "unknown"),
        "qualification": [{"code": {"text": " ".join(x for x in (pr.qualification, pr.title) if x)}}]
        if (pr.qualification or pr.title) else [],
    })


def practitioner_from_fhir(body: dict) -> dict:
    validate("Practitioner", body)
    name = _official_name(body.get("name", []))
    if not name:
        raise BadRequest("需要姓名 / a Practitioner needs a name", expression=["name"])
    staff_no = licence = None
    for ident in body.get("identifier", []):
        if (ident.get("system") or "").startswith(STAFF_NO_SYSTEM_PREFIX):
            staff_no = ident.get("value")
        elif ident.get("system") == "urn:onetrip:sid:practitioner-licence":
            licence = ident.get("value")
    phone = next((t.get("value") for t in body.get("telecom", []) if t.get("system") == "phone"), None)
    qual = ((body.get("qualification") or [{}])[0].get("code") or {}).get("text")
    return {"name": name, "sex": body.get("gender"), "phone": phone, "staff_no": staff_no, "licence_no": licence,
            "title": qual, "active": body.get("active", True)}


# --- AuditEvent (BALP-shaped) ---------------------------------------------------------------------

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
        "who": _clean({"identifier": _clean({"value": ev.agent_user_id or ev.agent_client_id or "anonymous"}),
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
        import base64

        entities.append({"type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2"},
                         "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "24"},
                         "query": base64.b64encode(ev.query.encode("utf-8")).decode("ascii")})
    return _clean({
        "resourceType": "AuditEvent", "id": str(ev.seq),
        "type": _TYPE.get(ev.type_code, {"code": ev.type_code}),
        "subtype": [{"system": _SUBTYPE_SYSTEM, "code": ev.subtype}] if ev.subtype else [],
        "action": ev.action, "recorded": instant(ev.recorded_at),
        "outcome": ev.outcome, "outcomeDesc": ev.outcome_desc,
        "purposeOfEvent": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                                        "code": ev.purpose_of_use}]}] if ev.purpose_of_use else [],
        "agent": [_clean(agent)],
        "source": {"observer": {"display": f"onetrip/{ev.source}"},
                   "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "4"}]},
        "entity": entities,
    })
