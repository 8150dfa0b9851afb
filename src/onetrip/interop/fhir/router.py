"""The one FHIR R4 router (JSON only): routes generated from the registry, one explicit route per type and
interaction (so the OpenAPI document names them), in this order: ``/metadata``, ``POST /`` (Bundles), then
per type its operations (``/Patient/$match`` before ``/Patient/{rid}``), search, create, read, vread,
history, update and delete; last the catch-all that answers 405 for an interaction a known type does not
serve and 404 for an unknown type. Scope checks, strict search parameters and paging happen here once.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Body, Header, Path, Request, Response
from fastapi.responses import JSONResponse
from starlette.convertors import Convertor, register_url_convertor

from onetrip.api.deps import DB, CurrentPrincipal
from onetrip.api.errors import CATCH_ALL, allowed_methods
from onetrip.interop.fhir.bundle import authorize, create_handler, process_bundle
from onetrip.interop.fhir.capability import capability_statement
from onetrip.interop.fhir.registry import resource_types, system_operations
from onetrip.kit.errors import BadRequest, Gone, NotFound
from onetrip.kit.fhir import (
    DATE_AND,
    FHIR_JSON,
    Context,
    Operation,
    ResourceType,
    ascii_digits,
    check_params,
    check_types,
    count_offset,
    instant,
    require_scope,
    wants_minimal,
)
from onetrip.kit.principal import Principal
from onetrip.versions import service as versions

router = APIRouter(prefix="/fhir/R4", tags=["FHIR R4"])
Resource = Annotated[dict[str, Any], Body(media_type=FHIR_JSON)]
AnyBody = Annotated[Any, Body(media_type=FHIR_JSON)]
OptionalBody = Annotated[dict[str, Any] | None, Body(media_type=FHIR_JSON)]
IfNoneExist = Annotated[str | None, Header()]
IfMatch = Annotated[str | None, Header()]
Prefer = Annotated[str | None, Header()]
FHIR_ID = r"[A-Za-z0-9\-.]{1,64}"  # the FHIR R4 id datatype
Rid = Annotated[str, Path(pattern=f"^{FHIR_ID}$")]


class _FhirId(Convertor):
    """``{rid:fhir_id}`` matches a FHIR id only, so ``DELETE /Patient/$match`` is not a delete of a Patient
    with id ``$match`` but a method the ``$match`` path does not serve (405)."""

    regex = FHIR_ID

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return str(value)


register_url_convertor("fhir_id", _FhirId())


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


def context(request: Request, session, principal: Principal, **kw) -> Context:
    return Context(session=session, principal=principal, base=base_url(request), query=request.url.query,
                   method=request.method, **kw)


def bundle(resources: list[dict], base: str, resource_type: str, params: dict[str, str], count: int,
           offset: int, has_more: bool, total: int | None = None, repeated: Collection[str] = ()) -> dict:
    """A searchset page with its self/next/previous links (a ``repeated`` parameter — a date parameter given
    several times — is written back as it was given)."""
    def link(relation: str, off: int) -> dict:
        q = [(k, part) for k, v in params.items() if k not in ("_offset", "_count")
             for part in (v.split(DATE_AND) if k in repeated else [v])]
        q += [("_count", str(count)), ("_offset", str(off))]
        return {"relation": relation, "url": f"{base}/{resource_type}?{urlencode(q)}"}

    links = [link("self", offset)]
    if has_more:
        links.append(link("next", offset + count))
    if offset > 0:
        links.append(link("previous", max(0, offset - count)))
    b = {"resourceType": "Bundle", "type": "searchset", "link": links,
         "entry": [{"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r,
                    "search": {"mode": "match"}} for r in resources]}
    if total is not None:
        b["total"] = total
    return b


def history_bundle(base: str, rtype: str, rid: str, rows) -> dict:
    return {"resourceType": "Bundle", "type": "history", "total": len(rows), "entry": [
        {"fullUrl": f"{base}/{rtype}/{rid}", **({"resource": v.content} if v.content else {}),
         "request": {"method": v.method, "url": f"{rtype}/{rid}" if v.method != "POST" else rtype},
         "response": {"status": {"POST": "201", "PUT": "200", "DELETE": "204"}[v.method],
                      "etag": f'W/"{v.version_id}"',
                      "lastModified": instant(v.last_updated)}}
        for v in rows]}


def _vid(vid: str) -> int:
    if not ascii_digits(vid) or len(vid) > 9:
        raise NotFound(f"版本不存在 / no version {vid!r}")
    return int(vid)


def _location(base: str, out: dict) -> str:
    version = (out.get("meta") or {}).get("versionId")
    where = f"{base}/{out['resourceType']}/{out['id']}"
    return f"{where}/_history/{version}" if version else where


@router.get("/metadata")
def metadata(request: Request) -> JSONResponse:
    """The CapabilityStatement: what this server supports (written from the registry)."""
    return fhir_response(capability_statement(base_url(request)))


@router.post("")
@router.post("/")
def post_bundle(request: Request, session: DB, principal: CurrentPrincipal, body: Resource,
                prefer: Prefer = None) -> JSONResponse:
    """A ``transaction`` Bundle (all entries or none, in one database transaction) or a ``batch`` Bundle
    (each entry on its own; the response carries an outcome per entry). Entries: POST of Patient,
    ServiceRequest, Observation, ImagingStudy, DiagnosticReport (``ifNoneExist`` supported), through the
    same create handlers as ``POST /{type}``. ``urn:uuid:`` fullUrls are resolved inside the bundle.
    ``Prefer: return=minimal``: the response entries carry their status and location only."""
    ctx = context(request, session, principal, minimal=wants_minimal(prefer))
    return fhir_response(process_bundle(ctx, body))


# --- per type -------------------------------------------------------------------------------------

def _operation(rt: ResourceType | None, op: Operation) -> None:
    """A type's operation (``/Patient/$match``), or a server-level one when ``rt`` is None (``/$immds-forecast``)."""
    prefix, label = (f"/{rt.name}", rt.name) if rt is not None else ("", "system")

    def run(request: Request, session, principal: Principal, body: Any) -> JSONResponse:
        require_scope(principal, *op.scope)
        ctx = context(request, session, principal)
        out = op.handler(ctx, body, parse_qsl(request.url.query, keep_blank_values=True))
        return fhir_response(out.resource, out.status, location=out.location)

    if op.body == "optional":
        def endpoint(request: Request, session: DB, principal: CurrentPrincipal,
                     body: OptionalBody = None) -> JSONResponse:
            return run(request, session, principal, body)
    elif op.body == "any":
        def endpoint(request: Request, session: DB, principal: CurrentPrincipal, body: AnyBody) -> JSONResponse:
            return run(request, session, principal, body)
    else:
        def endpoint(request: Request, session: DB, principal: CurrentPrincipal, body: Resource) -> JSONResponse:
            return run(request, session, principal, body)

    for method in op.methods:  # one route per method: one OpenAPI operation id each
        suffix = "" if len(op.methods) == 1 else f"_{method.lower()}"
        router.add_api_route(f"{prefix}/${op.name}", endpoint, methods=[method], status_code=op.status,
                             name=f"{label}_{op.name}{suffix}", summary=f"{method} {prefix.lstrip('/')}/${op.name}",
                             description=op.doc or op.handler.__doc__ or "")


def _search(rt: ResourceType) -> None:
    def endpoint(request: Request, session: DB, principal: CurrentPrincipal) -> JSONResponse:
        ctx = context(request, session, principal)
        authorize(rt, ctx, "s")
        pairs = parse_qsl(request.url.query, keep_blank_values=True)
        variant = next((v for v in rt.variants if v.search and v.claims_search and v.claims_search(pairs)), None)
        handler, allowed = (variant.search, variant.search_params) if variant else (rt.search, rt.search_params)
        dates = {p.name for p in allowed if p.type == "date"}
        raw = check_params(pairs, {p.name for p in allowed}, rt.name, repeatable=dates)
        check_types(raw, allowed)
        count, offset = count_offset(raw, rt.default_count)
        page = handler(ctx, raw, count, offset)
        return fhir_response(bundle(page.resources, ctx.base, rt.name, raw, count,
                                    offset if page.offset is None else page.offset, page.has_more, page.total,
                                    repeated=dates))

    names = ", ".join(sorted({p.name for p in rt.search_params}
                             | {p.name for v in rt.variants for p in v.search_params}))
    router.add_api_route(f"/{rt.name}", endpoint, methods=["GET"], name=f"search_{rt.name}",
                         summary=f"Search {rt.name}",
                         description=f"{(rt.search.__doc__ or '').strip()}\n\nParameters: {names}, _count, _offset.")


def _create(rt: ResourceType) -> None:
    def endpoint(request: Request, session: DB, principal: CurrentPrincipal, body: Resource,
                 if_none_exist: IfNoneExist = None) -> JSONResponse:
        ctx = context(request, session, principal, if_none_exist=if_none_exist)
        authorize(rt, ctx, "c")
        created = create_handler(rt, body)(ctx, body)
        return fhir_response(created.resource, created.status,
                             location=created.location or _location(ctx.base, created.resource))

    router.add_api_route(f"/{rt.name}", endpoint, methods=["POST"], status_code=201, name=f"create_{rt.name}",
                         summary=f"Create {rt.name}", description=_docs(rt.create, [v.create for v in rt.variants]))


def _read(rt: ResourceType) -> None:
    def endpoint(rid: Rid, request: Request, session: DB, principal: CurrentPrincipal) -> JSONResponse:
        ctx = context(request, session, principal)
        authorize(rt, ctx, "r")
        for v in rt.variants:
            if v.read is not None:
                out = v.read(ctx, rid)
                if out is not None:
                    return fhir_response(out)
        return fhir_response(rt.read(ctx, rid))

    router.add_api_route(f"/{rt.name}/{{rid:fhir_id}}", endpoint, methods=["GET"], name=f"read_{rt.name}",
                         summary=f"Read {rt.name}", description=_docs(rt.read, [v.read for v in rt.variants]))


def _vread(rt: ResourceType) -> None:
    def endpoint(rid: Rid, vid: str, request: Request, session: DB, principal: CurrentPrincipal) -> JSONResponse:
        ctx = context(request, session, principal)
        authorize(rt, ctx, "r")
        if rt.before_versions is not None:
            rt.before_versions(ctx, rid, "vread")
        v = versions.get_version(session, rt.name, rid, _vid(vid))
        if v is None:
            raise NotFound(f"版本不存在 / {rt.name}/{rid} has no version {vid}")
        if v.content is None:
            raise Gone(f"此版本为删除 / version {vid} is a deletion")
        return fhir_response(v.content)

    router.add_api_route(f"/{rt.name}/{{rid:fhir_id}}/_history/{{vid}}", endpoint, methods=["GET"], name=f"vread_{rt.name}",
                         summary=f"Read one version of a {rt.name}")


def _history(rt: ResourceType) -> None:
    def endpoint(rid: Rid, request: Request, session: DB, principal: CurrentPrincipal) -> JSONResponse:
        ctx = context(request, session, principal)
        authorize(rt, ctx, "r")
        if rt.before_versions is not None:
            rt.before_versions(ctx, rid, "history")
        return fhir_response(history_bundle(ctx.base, rt.name, rid, versions.versions(session, rt.name, rid)))

    router.add_api_route(f"/{rt.name}/{{rid:fhir_id}}/_history", endpoint, methods=["GET"], name=f"history_{rt.name}",
                         summary=f"Every version of a {rt.name}, newest first")


def _update(rt: ResourceType) -> None:
    def endpoint(rid: Rid, request: Request, session: DB, principal: CurrentPrincipal, body: Resource,
                 if_match: IfMatch = None) -> JSONResponse:
        ctx = context(request, session, principal, if_match=if_match)
        authorize(rt, ctx, "u")
        return fhir_response(rt.update(ctx, rid, body))

    router.add_api_route(f"/{rt.name}/{{rid:fhir_id}}", endpoint, methods=["PUT"], name=f"update_{rt.name}",
                         summary=f"Update {rt.name}", description=_docs(rt.update, []))


def _delete(rt: ResourceType) -> None:
    def endpoint(rid: Rid, request: Request, session: DB, principal: CurrentPrincipal) -> Response:
        ctx = context(request, session, principal)
        authorize(rt, ctx, "d")
        rt.delete(ctx, rid)
        return Response(status_code=204)

    router.add_api_route(f"/{rt.name}/{{rid:fhir_id}}", endpoint, methods=["DELETE"], status_code=204,
                         name=f"delete_{rt.name}", summary=f"Delete {rt.name}", description=_docs(rt.delete, []))


def _docs(primary, others: list) -> str:
    return "\n\n".join((f.__doc__ or "").strip() for f in (primary, *others) if f is not None and f.__doc__)


for _op in system_operations():
    _operation(None, _op)
for _rt in resource_types().values():
    for _op in _rt.operations:
        _operation(_rt, _op)
    if _rt.search is not None:
        _search(_rt)
    if _rt.create is not None:
        _create(_rt)
    if _rt.read is not None:
        _read(_rt)
    if _rt.versioned:
        _vread(_rt)
    if _rt.history:
        _history(_rt)
    if _rt.update is not None:
        _update(_rt)
    if _rt.delete is not None:
        _delete(_rt)


# --- anything else (last) -------------------------------------------------------------------------

ANY = ["GET", "POST", "PUT", "DELETE", "PATCH"]


@router.api_route("/{rtype}", methods=ANY, include_in_schema=False)
@router.api_route("/{rtype}/{rest:path}", methods=ANY, include_in_schema=False)
def unsupported(request: Request, rtype: str, rest: str = "") -> JSONResponse:
    """405 with Allow where another route serves this path (``PUT /metadata``, ``DELETE /Patient/$match``);
    404 where none does: an unknown type, or no such path for a known one."""
    types = resource_types()
    allow = allowed_methods(request)
    if allow:
        message = types[rtype].refusals.get(request.method) if rtype in types else None
        raise BadRequest(message or f"此操作不支持 / {request.method} is not supported here; allowed: "
                         f"{', '.join(allow)}", status=405, code="not-supported", headers={"Allow": ", ".join(allow)})
    if rtype in types:
        raise NotFound(f"没有此地址 / no such endpoint: {request.method} {request.url.path}")
    raise NotFound(f"不支持的资源类型 / unknown or unsupported resource type {rtype!r}; this server supports "
                   f"{', '.join(types)}", code="not-supported")


setattr(unsupported, CATCH_ALL, True)  # not counted in Allow (api.errors.allowed_methods)
