"""FHIR R4 ``Organization`` (the institution directory) and ``Practitioner``.

Declared here, served by the façade (``onetrip.interop.fhir``). Every write of an institution or a
practitioner stores its FHIR JSON as a version (spine ``versions``) for vread and ``_history``.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from sqlalchemy import select

from onetrip.kit.errors import BadRequest, NotFound, PreconditionFailed
from onetrip.kit.fhir import (
    Context,
    Created,
    Page,
    ResourceType,
    check_params,
    params,
    parse_if_match,
)
from onetrip.registry import service as registry
from onetrip.registry.mapping import (  # noqa: F401 (identifier systems, for callers)
    ORG_CODE_SYSTEM,
    organization_from_fhir,
    organization_to_fhir,
    practitioner_from_fhir,
    practitioner_to_fhir,
)
from onetrip.registry.models import Organization, Practitioner

# --- Organization ---------------------------------------------------------------------------------

ORG_PARAMS = params(("name", "string"), ("identifier", "token"), ("type", "token"), ("partof", "reference"),
                    ("_id", "token"))


def search_organizations(ctx: Context, raw: dict[str, str], count: int, offset: int) -> Page:
    """Search the institution directory: ``name`` (contains), ``identifier`` (code or 统一社会信用代码),
    ``type``, ``partof``."""
    if "_id" in raw:
        org = ctx.session.get(Organization, raw["_id"])
        rows, more = ([org] if org else []), False
    else:
        rows, more = registry.search_organizations(
            ctx.session, name=raw.get("name"), org_type=(raw.get("type") or "").split("|")[-1] or None,
            partof=(raw.get("partof") or "").split("/")[-1] or None, identifier=raw.get("identifier"),
            count=count, offset=offset)
    return Page([organization_to_fhir(o) for o in rows], more)


def create_organization(ctx: Context, body: dict) -> Created:
    """Add an institution (admins). Needs an org-code identifier, a name and a type; the 统一社会信用代码
    is validated (GB 32100 check character). ``If-None-Exist`` (identifier, name) makes it conditional."""
    fields = organization_from_fhir(body)
    if ctx.if_none_exist:
        raw = check_params(parse_qsl(ctx.if_none_exist), {p.name for p in ORG_PARAMS}, "Organization")
        if not raw.get("identifier") and not raw.get("name"):  # no criteria would match every institution
            raise BadRequest("If-None-Exist 须给出 identifier 或 name / If-None-Exist needs identifier or name, "
                             "e.g. identifier=urn:onetrip:sid:org-code|H001")
        rows, _ = registry.search_organizations(ctx.session, identifier=raw.get("identifier"), name=raw.get("name"),
                                                count=2)
        if len(rows) > 1:
            raise PreconditionFailed("条件创建匹配到多条记录 / conditional create matched more than one record")
        if rows:
            return Created(organization_to_fhir(rows[0]), 200)
    org = registry.create_organization(ctx.session, ctx.principal, **fields)
    return Created(organization_to_fhir(org), 201)


def read_organization(ctx: Context, oid: str) -> dict:
    """Read one institution."""
    return organization_to_fhir(registry.get_organization(ctx.session, oid))


def update_organization(ctx: Context, oid: str, body: dict) -> dict:
    """Update an institution (admins); stale ``If-Match`` → 412."""
    org = registry.get_organization(ctx.session, oid)
    expected = parse_if_match(ctx.if_match)
    if expected is not None and expected != org.version_id:
        raise PreconditionFailed(f"机构已被他人修改（当前版本 {org.version_id}）/ changed since you read it "
                                 f"(now version {org.version_id})")
    if body.get("id") not in (None, oid):
        raise BadRequest("资源 id 与地址不符 / resource id does not match the URL", expression=["id"])
    fields = organization_from_fhir(body)
    if fields["code"] != org.code and registry.organization_by_code(ctx.session, fields["code"]):
        raise BadRequest("机构代码已存在 / code already exists", status=409, code="duplicate")
    return organization_to_fhir(registry.update_organization(ctx.session, ctx.principal, org, **fields))


def organization_versions(ctx: Context, oid: str, interaction: str) -> None:
    if interaction == "history":  # the history of an institution that does not exist is a 404
        registry.get_organization(ctx.session, oid)


# --- Practitioner ---------------------------------------------------------------------------------

PRACT_PARAMS = params(("name", "string"), ("organization", "reference"), ("_id", "token"))


def search_practitioners(ctx: Context, raw: dict[str, str], count: int, offset: int) -> Page:
    """Search practitioners by ``name`` (Chinese or pinyin prefix) and ``organization``."""
    session = ctx.session
    if "_id" in raw:
        pr = session.get(Practitioner, raw["_id"])
        rows, more = ([pr] if pr else []), False
    else:
        rows, more = registry.search_practitioners(session, name=raw.get("name"),
                                                   organization_id=(raw.get("organization") or "").split("/")[-1] or None,
                                                   count=count, offset=offset)
    orgs = {o.id: o for o in session.scalars(select(Organization).where(
        Organization.id.in_({p.organization_id for p in rows if p.organization_id})))}
    return Page([practitioner_to_fhir(p, orgs.get(p.organization_id)) for p in rows], more)


def create_practitioner(ctx: Context, body: dict) -> Created:
    """Register a practitioner at the caller's institution (other institutions: the CLI or the web)."""
    fields = practitioner_from_fhir(body)
    pr = registry.create_practitioner(ctx.session, ctx.principal, organization_id=ctx.principal.organization_id,
                                      **fields)
    org = ctx.session.get(Organization, pr.organization_id) if pr.organization_id else None
    return Created(practitioner_to_fhir(pr, org), 201)


def read_practitioner(ctx: Context, prid: str) -> dict:
    """Read one practitioner."""
    pr = ctx.session.get(Practitioner, prid)
    if pr is None:
        raise NotFound("医务人员不存在 / practitioner not found")
    org = ctx.session.get(Organization, pr.organization_id) if pr.organization_id else None
    return practitioner_to_fhir(pr, org)


RESOURCES = [
    ResourceType("Organization", read=read_organization, search=search_organizations, search_params=ORG_PARAMS,
                 create=create_organization, update=update_organization, conditional_create=True, versioned=True,
                 history=True, before_versions=organization_versions, default_count=50,
                 doc="An institution of the medical community (or outside it)."),
    ResourceType("Practitioner", read=read_practitioner, search=search_practitioners, search_params=PRACT_PARAMS,
                 create=create_practitioner, versioned=True, default_count=50,
                 doc="A doctor, nurse or technician of an institution."),
]
