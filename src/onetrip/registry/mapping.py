"""Organization and Practitioner ↔ FHIR R4 JSON, and the version snapshots the registry's services store with
every write (spine ``versions``). Imports no registry service, so the services can call it
(``registry.fhir`` serves the types on top of both)."""

from __future__ import annotations

from onetrip.kit.errors import BadRequest
from onetrip.kit.fhir import EN_REPRESENTATION, clean, meta, official_name, ref, ref_id, validate
from onetrip.kit.identifiers import SEX_TO_FHIR
from onetrip.registry.models import ORG_TYPE_LABELS, Organization, OrgType, Practitioner
from onetrip.versions import service as versions

USCC_SYSTEM = "urn:onetrip:sid:cn-uscc"  # 统一社会信用代码 (GB 32100)
ORG_CODE_SYSTEM = "urn:onetrip:sid:org-code"
ORG_TYPE_SYSTEM = "urn:onetrip:cs:org-type"
STAFF_NO_SYSTEM_PREFIX = "urn:onetrip:sid:staff:"
LICENCE_SYSTEM = "urn:onetrip:sid:practitioner-licence"
GRADE_EXT = "urn:onetrip:sd:hospital-grade"


def organization_to_fhir(org: Organization) -> dict:
    idents = [{"system": ORG_CODE_SYSTEM, "value": org.code}]
    if org.uscc:
        idents.append({"system": USCC_SYSTEM, "value": org.uscc, "type": {"text": "统一社会信用代码"}})
    ot = OrgType(org.org_type) if org.org_type in OrgType.__members__ else None
    return clean({
        "resourceType": "Organization", "id": org.id, "meta": meta(org.version_id, org.updated_at),
        "extension": [{"url": GRADE_EXT, "valueCode": org.grade}] if org.grade else [],
        "identifier": idents, "active": org.active,
        "type": [{"coding": [{"system": ORG_TYPE_SYSTEM, "code": org.org_type,
                              "display": ORG_TYPE_LABELS.get(ot, org.org_type)}]}],
        "name": org.name, "alias": [org.name_en] if org.name_en else [],
        "telecom": [{"system": "phone", "value": org.phone}] if org.phone else [],
        "address": [{"text": org.address}] if org.address else [],
        "partOf": ref("Organization", org.parent_id),
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


def snapshot_organization(session, org: Organization, method: str) -> None:
    versions.snapshot(session, "Organization", org.id, org.version_id, method, organization_to_fhir(org))


def practitioner_to_fhir(pr: Practitioner, org: Organization | None) -> dict:
    idents = []
    if pr.staff_no and org:
        idents.append({"system": STAFF_NO_SYSTEM_PREFIX + org.code, "value": pr.staff_no})
    if pr.licence_no:
        idents.append({"system": LICENCE_SYSTEM, "value": pr.licence_no})
    return clean({
        "resourceType": "Practitioner", "id": pr.id, "meta": meta(pr.version_id, pr.updated_at),
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
    name = official_name(body.get("name", []))
    if not name:
        raise BadRequest("需要姓名 / a Practitioner needs a name", expression=["name"])
    staff_no = licence = None
    for ident in body.get("identifier", []):
        if (ident.get("system") or "").startswith(STAFF_NO_SYSTEM_PREFIX):
            staff_no = ident.get("value")
        elif ident.get("system") == LICENCE_SYSTEM:
            licence = ident.get("value")
    phone = next((t.get("value") for t in body.get("telecom", []) if t.get("system") == "phone"), None)
    qual = ((body.get("qualification") or [{}])[0].get("code") or {}).get("text")
    return {"name": name, "sex": body.get("gender"), "phone": phone, "staff_no": staff_no, "licence_no": licence,
            "title": qual, "active": body.get("active", True)}


def snapshot_practitioner(session, pr: Practitioner, method: str) -> None:
    org = session.get(Organization, pr.organization_id) if pr.organization_id else None
    versions.snapshot(session, "Practitioner", pr.id, pr.version_id, method, practitioner_to_fhir(pr, org))
