"""FHIR R4 ``Patient`` (a PatientRecord: one institution's registration) and ``Patient/$match`` (issue 3 §5).

Declared here, served by the façade (``onetrip.interop.fhir``). Every read goes through the identity
service (access policy + audit); writes validate with fhir.resources first. Every write of a record also
stores its FHIR JSON as a version (``snapshot_patient`` → spine ``versions``) for vread and ``_history``.

$match grades follow http://hl7.org/fhir/StructureDefinition/match-grade: *certain* at or above the MPI
link threshold, *probable* at or above the review threshold, *possible* at or above the possible
threshold (rule set ``mpi``); ``search.score`` is the match probability.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Any
from urllib.parse import parse_qsl

from sqlalchemy import select

from onetrip.identity import matching, mpi
from onetrip.identity import service as identity
from onetrip.identity.mapping import (  # noqa: F401 (the Patient's identifier systems, for callers)
    MRN_SYSTEM_PREFIX,
    RESIDENT_ID_SYSTEM,
    V2_0203,
    patient_from_fhir,
    patient_to_fhir,
    snapshot_patient,
)
from onetrip.identity.schemas import PatientInput, SearchParams
from onetrip.kit.errors import BadRequest, Gone, NotFound, PreconditionFailed
from onetrip.kit.fhir import (
    Context,
    Created,
    Operation,
    Page,
    ResourceType,
    check_params,
    official_name,
    params,
    parse_date,
    parse_if_match,
    validate,
)
from onetrip.kit.identifiers import FHIR_TO_SEX, IdentifierError, normalize_phone
from onetrip.persons.models import PatientRecord
from onetrip.registry.models import Organization

MATCH_GRADE = "http://hl7.org/fhir/StructureDefinition/match-grade"
MATCH_MAX_COUNT = 100


def _with_org(session, rec: PatientRecord) -> dict:
    return patient_to_fhir(rec, session.get(Organization, rec.organization_id))


# --- search ---------------------------------------------------------------------------------------

SEARCH_PARAMS = params(("identifier", "token"), ("name", "string"), ("birthdate", "date"), ("gender", "token"),
                       ("phone", "token"), ("telecom", "token"), ("organization", "reference"), ("_id", "token"))
PATIENT_PARAMS = {p.name for p in SEARCH_PARAMS}


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


def search(ctx: Context, raw: dict[str, str], count: int, offset: int) -> Page:
    """Search patient records: ``identifier`` (resident ID or MRN), ``name`` (Chinese or pinyin, prefix),
    ``birthdate`` (eq/ge/le/gt/lt, year, year-month), ``gender``, ``phone``, ``organization``, ``_count``.
    Only records the caller may see are returned; every patient on the page is audited."""
    session = ctx.session
    if "_id" in raw:
        rec = identity.read(session, ctx.principal, raw["_id"], subtype="search-type")
        return Page([_with_org(session, rec)], False, offset=0)
    p = patient_search_params(raw)
    p.count, p.offset = count, offset
    if count == 0:
        return Page([], False)
    result = identity.search(session, ctx.principal, p, query_text=ctx.query)
    orgs = {o.id: o for o in session.scalars(select(Organization).where(
        Organization.id.in_({r.organization_id for r in result.records})))}
    return Page([patient_to_fhir(r, orgs.get(r.organization_id)) for r in result.records], result.has_more)


def find_if_none_exist(ctx: Context, query: str) -> PatientRecord | None:
    """Conditional create of a Patient: the one record the query finds (as the caller may see it), None
    when it finds none, 412 when it finds several."""
    label = ctx.if_none_exist_label
    raw = check_params(parse_qsl(query, keep_blank_values=True), PATIENT_PARAMS, "Patient")
    if not raw:
        raise BadRequest(f"{label} 为空 / {label} has no search parameters")
    p = patient_search_params(raw)
    p.count = 2
    found = identity.search(ctx.session, ctx.principal, p, query_text=query).records
    if len(found) > 1:
        raise PreconditionFailed("条件创建匹配到多条记录 / conditional create matched more than one record")
    return found[0] if found else None


# --- interactions ---------------------------------------------------------------------------------

def create(ctx: Context, body: dict) -> Created:
    """Register a patient at an institution. Needs an MRN identifier (type MR); a resident ID (type
    NNCHN) is validated (check character, sex and birth date). ``If-None-Exist`` makes it conditional."""
    data = patient_from_fhir(body, ctx.principal.organization_id)
    if ctx.if_none_exist:
        existing = find_if_none_exist(ctx, ctx.if_none_exist)
        if existing is not None:
            return Created(_with_org(ctx.session, existing), 200)
    rec = identity.register(ctx.session, ctx.principal, data)
    return Created(_with_org(ctx.session, rec), 201)


def read(ctx: Context, pid: str) -> dict:
    """Read one patient record (audited; 403 and an audited denial without a care relationship,
    consent or break-the-glass; 410 when deleted)."""
    return _with_org(ctx.session, identity.read(ctx.session, ctx.principal, pid))


def update(ctx: Context, pid: str, body: dict) -> dict:
    """Update a patient record. With ``If-Match: W/"n"`` a stale version gets 412."""
    if body.get("id") not in (None, pid):
        raise BadRequest("资源 id 与地址不符 / resource id does not match the URL", expression=["id"])
    expected = parse_if_match(ctx.if_match)
    current = ctx.session.get(PatientRecord, pid)
    if current is None:
        raise NotFound("患者记录不存在 / patient record not found (this server does not create on PUT)")
    data = patient_from_fhir(body, current.organization_id)
    rec = identity.update(ctx.session, ctx.principal, pid, data, expected_version=expected)
    return _with_org(ctx.session, rec)


def delete(ctx: Context, pid: str) -> None:
    """Soft-delete a patient record: it leaves searches; history and audit remain."""
    identity.delete(ctx.session, ctx.principal, pid)


def before_versions(ctx: Context, pid: str, interaction: str) -> None:
    """A version of a record is shown to whoever may read the record (audited); a deleted one still has
    its history."""
    with contextlib.suppress(Gone):
        identity.read(ctx.session, ctx.principal, pid, subtype=interaction)


# --- $match ---------------------------------------------------------------------------------------

def _match_parameters(body: Any) -> tuple[dict, bool, int]:
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise BadRequest("请求体须为 Parameters 资源 / the body must be a Parameters resource",
                         expression=["resourceType"])
    validate("Parameters", body)
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
            if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= MATCH_MAX_COUNT:
                raise BadRequest(f"count 须为 1–{MATCH_MAX_COUNT} 的整数 / count must be an integer "
                                 f"1–{MATCH_MAX_COUNT}", expression=["Parameters.parameter.count"])
            count = v
        else:
            raise BadRequest(f"不支持的参数 {name!r} / unknown parameter {name!r}", expression=["Parameters.parameter"])
    if not isinstance(resource, dict):
        raise BadRequest("缺少 resource 参数（Patient）/ the resource parameter (a Patient) is required",
                         expression=["Parameters.parameter.resource"])
    validate("Patient", resource)
    return resource, only_certain, count


def _features(resource: dict) -> matching.Features:
    """The demographics of the searched-for Patient, validated like a registration (R7.1, R7.2, R7.5)."""
    id_number = None
    for ident in resource.get("identifier", []):
        codes = {c.get("code") for c in (ident.get("type") or {}).get("coding", [])}
        if ident.get("system") == RESIDENT_ID_SYSTEM or "NNCHN" in codes:
            id_number = ident.get("value")
    name = official_name(resource.get("name", []))
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


def match(ctx: Context, body: Any, _params: list[tuple[str, str]]) -> Created:
    """Find the registered patients most likely to be the one described (``resource``). Parameters:
    ``resource`` (Patient, required), ``onlyCertainMatches`` (boolean), ``count`` (1–100, default 10).
    Returns a searchset Bundle, best first, with ``search.score`` (match probability) and the
    match-grade extension (certain / probable / possible). Only records the caller may see are returned;
    each one is audited."""
    resource, only_certain, count = _match_parameters(body)
    session = ctx.session
    results = mpi.match_patient(session, ctx.principal, _features(resource), only_certain=only_certain, count=count)
    orgs = {o.id: o for o in session.scalars(select(Organization).where(
        Organization.id.in_({r.record.organization_id for r in results})))} if results else {}
    entries = []
    for r in results:
        pat = patient_to_fhir(r.record, orgs.get(r.record.organization_id))
        entries.append({"fullUrl": f"{ctx.base}/Patient/{r.record.id}", "resource": pat,
                        "search": {"mode": "match", "score": round(r.score.match_probability, 6),
                                   "extension": [{"url": MATCH_GRADE, "valueCode": r.grade}]}})
    return Created({"resourceType": "Bundle", "type": "searchset", "total": len(entries), "entry": entries}, 200)


RESOURCES = [
    ResourceType(
        "Patient", read=read, search=search, search_params=SEARCH_PARAMS, create=create, update=update,
        delete=delete, conditional_create=True, versioned=True, history=True, before_versions=before_versions,
        bundle_rank=0, doc="A patient record: one institution's registration (MRN) of a resident.",
        operations=(Operation("match", match, scope=("Patient", "s"), body="any",
                              definition="http://hl7.org/fhir/OperationDefinition/Patient-match",
                              doc=match.__doc__),),
    ),
]
