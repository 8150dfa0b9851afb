"""Exception handlers: every error becomes an OperationOutcome with a 4xx (or, for a bug, a 500 with
no traceback — the traceback goes to the log, scrubbed of identifiers)."""

from __future__ import annotations

import json
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from onetrip.kit.errors import ApiError, operation_outcome
from onetrip.kit.masking import scrub

log = logging.getLogger("onetrip")
FHIR_JSON = "application/fhir+json"

_STATUS_CODES = {400: "invalid", 401: "login", 403: "forbidden", 404: "not-found", 405: "not-supported",
                 406: "not-supported", 409: "conflict", 410: "deleted", 412: "conflict", 413: "too-costly",
                 415: "not-supported", 422: "processing", 429: "throttled"}


# The attribute that marks an endpoint answering for any path below it (the FHIR façade's last routes):
# a method served only by such an endpoint is not counted in Allow.
CATCH_ALL = "onetrip_catch_all"


def _leaves(routes):
    """The routes under the application's, through FastAPI's included routers (``effective_candidates``
    since FastAPI 0.16x; plain lists before)."""
    for route in routes:
        nested = [getattr(route, name)() for name in ("effective_candidates", "effective_low_priority_routes")
                  if callable(getattr(route, name, None))]
        nested += [route.routes] if isinstance(getattr(route, "routes", None), list) and not nested else []
        if nested:
            for children in nested:
                yield from _leaves(children)
        else:
            yield route


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this request's path (FastAPI adds one route per method, and
    Starlette's own 405 names only the first route whose path matched)."""
    path = request.scope.get("path", "")
    methods: set[str] = set()
    for route in _leaves(request.app.router.routes):
        regex, served = getattr(route, "path_regex", None), getattr(route, "methods", None)
        if (regex is not None and served and not getattr(getattr(route, "endpoint", None), CATCH_ALL, False)
                and regex.match(path)):
            methods |= set(served)
    return sorted(methods)


def _media(request: Request) -> str:
    return FHIR_JSON if request.url.path.startswith("/fhir") else "application/json"


def _retry_shortly(request: Request, message: str) -> JSONResponse:
    """503 with a ``transient`` OperationOutcome and Retry-After: the request may simply be sent again."""
    return JSONResponse(operation_outcome(message, code="transient"), status_code=503, headers={"Retry-After": "2"},
                        media_type=_media(request))


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        body = operation_outcome(exc.message, code=exc.code, expression=exc.expression)
        error = getattr(exc, "error", None)
        if error:  # OAuth2 (RFC 6749 §5.2) clients read these two fields
            body = {"error": error, "error_description": exc.message, **body}
        if request.url.path.startswith("/ui") and exc.status == 401:
            from fastapi.responses import RedirectResponse, Response

            target = f"/ui/login?next={request.url.path}"
            if request.headers.get("hx-request") == "true":  # an HTMX fragment: redirect the whole page
                return Response(status_code=200, headers={"HX-Redirect": target})
            return RedirectResponse(target, status_code=303)
        return JSONResponse(body, status_code=exc.status, headers=exc.headers, media_type=_media(request))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        issues = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header"))
            issues.append({"severity": "error", "code": "invalid",
                           "details": {"text": f"{loc}: {err.get('msg')}" if loc else str(err.get("msg"))},
                           **({"expression": [loc]} if loc else {})})
        body = {"resourceType": "OperationOutcome", "issue": issues or [
            {"severity": "error", "code": "invalid", "details": {"text": "请求无效 / invalid request"}}]}
        return JSONResponse(body, status_code=400, media_type=_media(request))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        code = _STATUS_CODES.get(exc.status_code, "exception")
        text = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail, ensure_ascii=False)
        if exc.status_code == 404 and text == "Not Found":
            text = f"没有此地址 / no such endpoint: {request.method} {request.url.path}"
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            allow = ", ".join(allowed_methods(request))
            text = f"此地址不支持 {request.method}，可用 {allow} / method {request.method} not allowed here; allowed: {allow}"
            headers = {**(headers or {}), "Allow": allow}
        return JSONResponse(operation_outcome(text, code=code), status_code=exc.status_code,
                            headers=headers, media_type=_media(request))

    @app.exception_handler(StaleDataError)
    async def _stale(request: Request, exc: StaleDataError):
        return JSONResponse(operation_outcome(
            "记录已被并发修改，请刷新后重试 / the record was changed by someone else at the same time: reload and "
            "retry", code="conflict"), status_code=409, media_type=_media(request))

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError):
        log.warning("integrity error on %s %s: %s", request.method, request.url.path, scrub(str(exc.orig))[:300])
        return JSONResponse(operation_outcome(
            "与已有数据冲突（可能是并发写入），请重试 / conflicts with existing data (possibly a concurrent write): "
            "retry", code="conflict"), status_code=409, media_type=_media(request))

    @app.exception_handler(DataError)
    async def _data(request: Request, exc: DataError):
        # Input the database cannot hold (NUL characters, numbers or text out of range) that got past
        # the request validation: the client's input, so a 400.
        return JSONResponse(operation_outcome(
            "输入包含无法保存的字符或超出范围的值 / the input contains characters that cannot be stored (such as "
            "NUL) or a value out of range", code="invalid"), status_code=400, media_type=_media(request))

    @app.exception_handler(OperationalError)
    async def _busy(request: Request, exc: OperationalError):
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path, scrub(str(exc.orig))[:300])
        return _retry_shortly(request, "数据库暂时不可用，请稍后重试 / database busy or unavailable: retry shortly")

    @app.exception_handler(PoolTimeout)
    async def _pool_busy(request: Request, exc: PoolTimeout):
        # Every pooled connection stayed busy for db_pool_timeout seconds (db.session.make_engine).
        log.warning("no database connection free on %s %s within the pool timeout", request.method,
                    request.url.path)
        return _retry_shortly(request, "服务繁忙，请稍后重试 / the server is busy: retry shortly")

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception):
        log.error("unhandled error on %s %s: %s", request.method, scrub(str(request.url.path)),
                  scrub(repr(exc)), exc_info=False)
        log.debug("traceback", exc_info=exc)
        return JSONResponse(operation_outcome("服务器内部错误，已记录 / internal error, logged for the operators",
                                              code="exception"), status_code=500, media_type=_media(request))
