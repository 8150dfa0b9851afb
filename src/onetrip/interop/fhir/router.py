"""FHIR R4 REST facade (JSON only): Patient, Organization, Practitioner, AuditEvent (admins).

Every read of patient data goes through the identity service (access policy + audit). Writes validate
with fhir.resources first. Errors are OperationOutcomes with the right 4xx.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Body, Header, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import select

from onetrip.api.deps import DB, CurrentPrincipal, require_scope
from onetrip.audit import service as audit
from onetrip.audit.models import AuditEvent
from onetrip.identity import service as identity
from onetrip.identity.models import PatientRecord
from onetrip.identity.schemas import SearchParams
from onetrip.interop.fhir import history, mappers
from onetrip.interop.fhir.capability import capability_statement
from onetrip.interop.fhir.search import bundle, check_params, count_offset, parse_date
from onetrip.kit.errors import AccessDenied, BadRequest, Gone, NotFound, PreconditionFailed
from onetrip.kit.identifiers import FHIR_TO_SEX, IdentifierError, normalize_phone
from onetrip.registry import service as registry
from onetrip.registry.models import Organization, Practitioner

FHIR_JSON = "application/fhir+json"
router = APIRouter(prefix="/fhir/R4", tags=["FHIR R4"])
SUPPORTED = ("Patient", "Organization", "Practitioner", "AuditEvent")
Resource = Annotated[dict[str, Any], Body(media_type=FHIR_JSON)]


def fhir_response(body: dict, status: int = 200, *, location: str | None = None) -> JSONResponse:
    headers = {}
    meta = body.get("meta") or {}
    if meta.get("versionId"):
        headers["ETag"] = f'W/"{meta["versionId"]}"'
        headers["Last-Modified"] = meta.get("lastUpdated", "")
    if location:
        headers["Location"] = location
    return JSONResponse(body, status_code=status, headers=headers, media_type=FHIR_JSON)


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/fhir/R4"


def _params(request: Request) -> list[tuple[str, str]]:
    return parse_qsl(request.url.query, keep_blank_values=True)


def _ascii_digits(text: str) -> bool:
    """str.isdigit() accepts '³' and other digits int() refuses; identifiers here are ASCII."""
    return text.isascii() and text.isdigit()


def parse_if_match(value: str | None) -> int | None:
    if not value:
        return None
    v = value.strip()
    if v.startswith("W/"):
        v = v[2:]
    v = v.strip('"')
    if not _ascii_digits(v):
        raise BadRequest('If-Match 应为 W/"版本号" / If-Match must look like W/"3"')
    return int(v)


def _vid(vid: str) -> int:
    if not _ascii_digits(vid) or len(vid) > 9:
        raise NotFound(f"版本不存在 / no version {vid!r}")
    return int(vid)


@router.get("/metadata")
def metadata(request: Request) -> JSONResponse:
    """The CapabilityStatement: what this server supports."""
    return fhir_response(capability_statement(base_url(request)))


# --- Patient --------------------------------------------------------------------------------------

PATIENT_PARAMS = {"identifier", "name", "birthdate", "gender", "phone", "telecom", "organization", "_id"}


def patient_search_params(raw: dict[str, str]) -> SearchParams:
    p = SearchParams()
    if "identifier" in raw:
        p.identifier = raw["identifier"]
    if raw.get("name"):
        p.name = raw["name"]
    elif "name" in raw:
        raise BadRequest("name 不能为空 / name must not be empty")
    if "birthdate" in raw:
        prefix, d = parse_date(raw["birthdate"], "birthdate")
        if prefix.endswith("-year") or prefix.endswith("-month"):
            end = dt.date(d.year + 1, 1, 1) if prefix.endswith("-year") else (
                dt.date(d.year + (d.month // 12), d.month % 12 + 1, 1))
            p.birth_date_from, p.birth_date_to = d, end - dt.timedelta(days=1)
        elif prefix == "eq":
            p.birth_date = d
        elif prefix in ("ge", "gt"):
            p.birth_date_from = d + dt.timedelta(days=1 if prefix == "gt" else 0)
        else:
            p.birth_date_to = d - dt.timedelta(days=1 if prefix == "lt" else 0)
    if "gender" in raw:
        if raw["gender"] not in FHIR_TO_SEX:
            raise BadRequest("gender 应为 male/female/other/unknown / gender must be male, female, other or unknown")
        p.sex = FHIR_TO_SEX[raw["gender"]]
    phone = raw.get("phone") or raw.get("telecom")
    if phone is not None:
        try:
            p.phone = normalize_phone(phone.split("|")[-1])
        except IdentifierError as e:
            raise BadRequest(str(e)) from None
    if "organization" in raw:
        p.organization_id = raw["organization"].split("/")[-1]
    return p


@router.get("/Patient")
def search_patients(request: Request, session: DB, principal: CurrentPrincipal) -> JSONResponse:
    """Search patient records: ``identifier`` (resident ID or MRN), ``name`` (Chinese or pinyin, prefix),
    ``birthdate`` (eq/ge/le/gt/lt, year, year-month), ``gender``, ``phone``, ``organization``, ``_count``.
    Only records the caller may see are returned; every patient on the page is audited."""
    require_scope(principal, "Patient", "s")
    raw = check_params(_params(request), PATIENT_PARAMS, "Patient")
    count, offset = count_offset(raw)
    if "_id" in raw:
        rec = identity.read(session, principal, raw["_id"], subtype="search-type")
        org = session.get(Organization, rec.organization_id)
        return fhir_response(bundle([mappers.patient_to_fhir(rec, org)], base_url(request), "Patient", raw,
                                    count, 0, False))
    p = patient_search_params(raw)
    p.count, p.offset = count, offset
    if count == 0:
        return fhir_response(bundle([], base_url(request), "Patient", raw, count, offset, False))
    result = identity.search(session, principal, p, query_text=request.url.query)
    orgs = {o.id: o for o in session.scalars(select(Organization).where(
        Organization.id.in_({r.organization_id for r in result.records})))}
    resources = [mappers.patient_to_fhir(r, orgs.get(r.organization_id)) for r in result.records]
    return fhir_response(bundle(resources, base_url(request), "Patient", raw, count, offset, result.has_more))


def find_patient_if_none_exist(session, principal, query: str, label: str = "If-None-Exist") -> PatientRecord | None:
    """Conditional create of a Patient: the one record the query finds (as the caller may see it), None
    when it finds none, 412 when it finds several. ``label`` names the header or Bundle field in errors."""
    raw = check_params(parse_qsl(query, keep_blank_values=True), PATIENT_PARAMS, "Patient")
    if not raw:
        raise BadRequest(f"{label} 为空 / {label} has no search parameters")
    p = patient_search_params(raw)
    p.count = 2
    found = identity.search(session, principal, p, query_text=query).records
    if len(found) > 1:
        raise PreconditionFailed("条件创建匹配到多条记录 / conditional create matched more than one record")
    return found[0] if found else None


@router.post("/Patient", status_code=201)
def create_patient(request: Request, session: DB, principal: CurrentPrincipal, body: Resource,
                   if_none_exist: Annotated[str | None, Header()] = None) -> JSONResponse:
    """Register a patient at an institution. Needs an MRN identifier (type MR); a resident ID (type
    NNCHN) is validated (check character, sex and birth date). ``If-None-Exist`` makes it conditional."""
    require_scope(principal, "Patient", "c")
    data = mappers.patient_from_fhir(body, principal.organization_id)
    if if_none_exist:
        existing = find_patient_if_none_exist(session, principal, if_none_exist)
        if existing is not None:
            org = session.get(Organization, existing.organization_id)
            return fhir_response(mappers.patient_to_fhir(existing, org), 200)
    rec = identity.register(session, principal, data)
    org = session.get(Organization, rec.organization_id)
    out = mappers.patient_to_fhir(rec, org)
    return fhir_response(out, 201, location=f"{base_url(request)}/Patient/{rec.id}/_history/{rec.version_id}")


@router.get("/Patient/{pid}")
def read_patient(pid: str, session: DB, principal: CurrentPrincipal) -> JSONResponse:
    """Read one patient record (audited; 403 and an audited denial without a care relationship,
    consent or break-the-glass; 410 when deleted)."""
    require_scope(principal, "Patient", "r")
    rec = identity.read(session, principal, pid)
    return fhir_response(mappers.patient_to_fhir(rec, session.get(Organization, rec.organization_id)))


@router.get("/Patient/{pid}/_history/{vid}")
def vread_patient(pid: str, vid: str, session: DB, principal: CurrentPrincipal) -> JSONResponse:
    """Read one version of a patient record."""
    require_scope(principal, "Patient", "r")
    with contextlib.suppress(Gone):
        identity.read(session, principal, pid, subtype="vread")
    v = history.get_version(session, "Patient", pid, _vid(vid))
    if v is None:
        raise NotFound(f"版本不存在 / Patient/{pid} has no version {vid}")
    if v.content is None:
        raise Gone(f"此版本为删除 / version {vid} is a deletion")
    return fhir_response(v.content)


@router.get("/Patient/{pid}/_history")
def history_patient(request: Request, pid: str, session: DB, principal: CurrentPrincipal) -> JSONResponse:
    """Every version of a patient record, newest first."""
    require_scope(principal, "Patient", "r")
    with contextlib.suppress(Gone):
        identity.read(session, principal, pid, subtype="history")
    return fhir_response(_history_bundle(request, "Patient", pid, history.versions(session, "Patient", pid)))


@router.put("/Patient/{pid}")
def update_patient(request: Request, pid: str, session: DB, principal: CurrentPrincipal, body: Resource,
                   if_match: Annotated[str | None, Header()] = None) -> JSONResponse:
    """Update a patient record. With ``If-Match: W/"n"`` a stale version gets 412."""
    require_scope(principal, "Patient", "u")
    if body.get("id") not in (None, pid):
        raise BadRequest("资源 id 与地址不符 / resource id does not match the URL", expression=["id"])
    expected = parse_if_match(if_match)
    current = session.get(PatientRecord, pid)
    if current is None:
        raise NotFound("患者记录不存在 / patient record not found (this server does not create on PUT)")
    data = mappers.patient_from_fhir(body, current.organization_id)
    rec = identity.update(session, principal, pid, data, expected_version=expected)
    return fhir_response(mappers.patient_to_fhir(rec, session.get(Organization, rec.organization_id)))


@router.delete("/Patient/{pid}", status_code=204)
def delete_patient(pid: str, session: DB, principal: CurrentPrincipal) -> Response:
    """Soft-delete a patient record: it leaves searches; history and audit remain."""
    require_scope(principal, "Patient", "d")
    identity.delete(session, principal, pid)
    return Response(status_code=204)


def _history_bundle(request: Request, rtype: str, rid: str, versions) -> dict:
    base = base_url(request)
    return {"resourceType": "Bundle", "type": "history", "total": len(versions), "entry": [
        {"fullUrl": f"{base}/{rtype}/{rid}", **({"resource": v.content} if v.content else {}),
         "request": {"method": v.method, "url": f"{rtype}/{rid}" if v.method != "POST" else rtype},
         "response": {"status": {"POST": "201", "PUT": "200", "DELETE": "204"}[v.method],
                      "etag": f'W/"{v.version_id}"',
                      "lastModified": mappers.instant(v.last_updated)}}
        for v in versions]}


# --- Organization ---------------------------------------------------------------------------------

ORG_PARAMS = {"name", "identifier", "type", "partof", "_id"}


@router.get("/Organization")
def search_organizations(request: Request, session: DB, principal: CurrentPrincipal) -> JSONResponse:
    """Search the institution directory: ``name`` (contains), ``identifier`` (code or 统一社会信用代码),
    ``type``, ``partof``."""
    require_scope(principal, "Organization", "s")
    raw = check_params(_params(request), ORG_PARAMS, "Organization")
    count, offset = count_offset(raw, 50)
    if "_id" in raw:
        org = session.get(Organization, raw["_id"])
        rows, more = ([org] if org else []), False
    else:
        rows, more = registry.search_organizations(
            session, name=raw.get("name"), org_type=(raw.get("type") or "").split("|")[-1] or None,
            partof=(raw.get("partof") or "").split("/")[-1] or None, identifier=raw.get("identifier"),
            count=count, offset=offset)
    return fhir_response(bundle([mappers.organization_to_fhir(o) for o in rows], base_url(request),
                                "Organization", raw, count, offset, more))


@router.post("/Organization", status_code=201)
def create_organization(request: Request, session: DB, principal: CurrentPrincipal, body: Resource,
                        if_none_exist: Annotated[str | None, Header()] = None) -> JSONResponse:
    """Add an institution (admins). Needs an org-code identifier, a name and a type; the 统一社会信用代码
    is validated (GB 32100 check character)."""
    require_scope(principal, "Organization", "c")
    fields = mappers.organization_from_fhir(body)
    if if_none_exist:
        raw = check_params(parse_qsl(if_none_exist), ORG_PARAMS, "Organization")
        rows, _ = registry.search_organizations(session, identifier=raw.get("identifier"), name=raw.get("name"),
                                                count=2)
        if len(rows) > 1:
            raise PreconditionFailed("条件创建匹配到多条记录 / conditional create matched more than one record")
        if rows:
            return fhir_response(mappers.organization_to_fhir(rows[0]), 200)
    org = registry.create_organization(session, principal, **fields)
    return fhir_response(mappers.organization_to_fhir(org), 201,
                         location=f"{base_url(request)}/Organization/{org.id}/_history/{org.version_id}")


@router.get("/Organization/{oid}")
def read_organization(oid: str, session: DB, principal: CurrentPrincipal) -> JSONResponse:
    """Read one institution."""
    require_scope(principal, "Organization", "r")
    return fhir_response(mappers.organization_to_fhir(registry.get_organization(session, oid)))


@router.get("/Organization/{oid}/_history/{vid}")
def vread_organization(oid: str, vid: str, session: DB, principal: CurrentPrincipal) -> JSONResponse:
    require_scope(principal, "Organization", "r")
    v = history.get_version(session, "Organization", oid, _vid(vid))
    if v is None or v.content is None:
        raise NotFound(f"版本不存在 / Organization/{oid} has no version {vid}")
    return fhir_response(v.content)


@router.get("/Organization/{oid}/_history")
def history_organization(request: Request, oid: str, session: DB, principal: CurrentPrincipal) -> JSONResponse:
    require_scope(principal, "Organization", "r")
    registry.get_organization(session, oid)
    return fhir_response(_history_bundle(request, "Organization", oid, history.versions(session, "Organization", oid)))


@router.put("/Organization/{oid}")
def update_organization(oid: str, session: DB, principal: CurrentPrincipal, body: Resource,
                        if_match: Annotated[str | None, Header()] = None) -> JSONResponse:
    """Update an institution (admins); stale ``If-Match`` → 412."""
    require_scope(principal, "Organization", "u")
    org = registry.get_organization(session, oid)
    expected = parse_if_match(if_match)
    if expected is not None and expected != org.version_id:
        raise PreconditionFailed(f"机构已被他人修改（当前版本 {org.version_id}）/ changed since you read it "
                                 f"(now version {org.version_id})")
    if body.get("id") not in (None, oid):
        raise BadRequest("资源 id 与地址不符 / resource id does not match the URL", expression=["id"])
    fields = mappers.organization_from_fhir(body)
    if fields["code"] != org.code and registry.organization_by_code(session, fields["code"]):
        raise BadRequest("机构代码已存在 / code already exists", status=409, code="duplicate")
    org = registry.update_organization(session, principal, org, **fields)
    return fhir_response(mappers.organization_to_fhir(org))


# --- Practitioner ---------------------------------------------------------------------------------

PRACT_PARAMS = {"name", "organization", "_id"}


@router.get("/Practitioner")
def search_practitioners(request: Request, session: DB, principal: CurrentPrincipal) -> JSONResponse:
    """Search practitioners by ``name`` (Chinese or pinyin prefix) and ``organization``."""
    require_scope(principal, "Practitioner", "s")
    raw = check_params(_params(request), PRACT_PARAMS, "Practitioner")
    count, offset = count_offset(raw, 50)
    if "_id" in raw:
        pr = session.get(Practitioner, raw["_id"])
        rows, more = ([pr] if pr else []), False
    else:
        rows, more = registry.search_practitioners(session, name=raw.get("name"),
                                                   organization_id=(raw.get("organization") or "").split("/")[-1] or None,
                                                   count=count, offset=offset)
    orgs = {o.id: o for o in session.scalars(select(Organization).where(
        Organization.id.in_({p.organization_id for p in rows if p.organization_id})))}
    return fhir_response(bundle([mappers.practitioner_to_fhir(p, orgs.get(p.organization_id)) for p in rows],
                                base_url(request), "Practitioner", raw, count, offset, more))


@router.post("/Practitioner", status_code=201)
def create_practitioner(request: Request, session: DB, principal: CurrentPrincipal, body: Resource) -> JSONResponse:
    """Register a practitioner at the caller's institution (admins: any institution via an extension-free
    ``organization`` query parameter is not supported; use the CLI or web)."""
    require_scope(principal, "Practitioner", "c")
    fields = mappers.practitioner_from_fhir(body)
    pr = registry.create_practitioner(session, principal, organization_id=principal.organization_id, **fields)
    org = session.get(Organization, pr.organization_id) if pr.organization_id else None
    return fhir_response(mappers.practitioner_to_fhir(pr, org), 201,
                         location=f"{base_url(request)}/Practitioner/{pr.id}/_history/{pr.version_id}")


@router.get("/Practitioner/{prid}")
def read_practitioner(prid: str, session: DB, principal: CurrentPrincipal) -> JSONResponse:
    require_scope(principal, "Practitioner", "r")
    pr = session.get(Practitioner, prid)
    if pr is None:
        raise NotFound("医务人员不存在 / practitioner not found")
    org = session.get(Organization, pr.organization_id) if pr.organization_id else None
    return fhir_response(mappers.practitioner_to_fhir(pr, org))


@router.get("/Practitioner/{prid}/_history/{vid}")
def vread_practitioner(prid: str, vid: str, session: DB, principal: CurrentPrincipal) -> JSONResponse:
    require_scope(principal, "Practitioner", "r")
    v = history.get_version(session, "Practitioner", prid, _vid(vid))
    if v is None or v.content is None:
        raise NotFound(f"版本不存在 / Practitioner/{prid} has no version {vid}")
    return fhir_response(v.content)


# --- AuditEvent (read-only, admins) ---------------------------------------------------------------

AUDIT_PARAMS = {"patient", "date", "agent", "subtype", "outcome", "_id"}


def _require_audit_reader(principal) -> None:
    if not (principal.is_admin or (principal.kind == "client" and any(
            s.context == "system" and s.resource in ("*", "AuditEvent") for s in principal.scopes))):
        raise AccessDenied("只有管理员可以查看审计日志 / only admins read the audit trail")


@router.get("/AuditEvent")
def search_audit(request: Request, session: DB, principal: CurrentPrincipal) -> JSONResponse:
    """Search the audit trail (admins): ``patient`` (person id), ``date`` (ge/le), ``agent``, ``subtype``,
    ``outcome``. Newest first."""
    _require_audit_reader(principal)
    raw = check_params(_params(request), AUDIT_PARAMS, "AuditEvent")
    count, offset = count_offset(raw, 50)
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
        stmt = stmt.where(AuditEvent.seq == (int(raw["_id"]) if _ascii_digits(raw["_id"]) and len(raw["_id"]) < 18 else -1))
    if "date" in raw:
        prefix, d = parse_date(raw["date"], "date")
        start = dt.datetime.combine(d, dt.time(), tzinfo=dt.UTC)
        if prefix.startswith("ge") or prefix.startswith("gt"):
            stmt = stmt.where(AuditEvent.recorded_at >= start)
        elif prefix.startswith("le") or prefix.startswith("lt"):
            stmt = stmt.where(AuditEvent.recorded_at < start + dt.timedelta(days=1))
        else:
            stmt = stmt.where(AuditEvent.recorded_at >= start, AuditEvent.recorded_at < start + dt.timedelta(days=1))
    rows = list(session.scalars(stmt.order_by(AuditEvent.seq.desc()).offset(offset).limit(count + 1)))
    audit.record(session, principal, "search-type", what=["AuditEvent"], query=request.url.query)
    return fhir_response(bundle([mappers.audit_to_fhir(e) for e in rows[:count]], base_url(request), "AuditEvent",
                                raw, count, offset, len(rows) > count))


@router.get("/AuditEvent/{aid}")
def read_audit(aid: str, session: DB, principal: CurrentPrincipal) -> JSONResponse:
    _require_audit_reader(principal)
    ev = session.get(AuditEvent, int(aid)) if _ascii_digits(aid) and len(aid) < 18 else None
    if ev is None:
        raise NotFound("审计事件不存在 / audit event not found")
    return fhir_response(mappers.audit_to_fhir(ev))


# --- anything else --------------------------------------------------------------------------------

@router.api_route("/{rtype}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"], include_in_schema=False)
@router.api_route("/{rtype}/{rest:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"], include_in_schema=False)
def unsupported(request: Request, rtype: str, rest: str = "") -> JSONResponse:
    if rtype in SUPPORTED:
        raise BadRequest(f"此操作不支持 / {request.method} is not supported here for {rtype}", status=405,
                         code="not-supported")
    raise NotFound(f"不支持的资源类型 / unknown or unsupported resource type {rtype!r}; this server supports "
                   f"{', '.join(SUPPORTED)}", code="not-supported")
