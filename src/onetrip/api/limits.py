"""Request limits, checked before anything reads a body (issue 26): a pure ASGI middleware.

- Each route class has a body limit (``Settings.max_body_*``): a FHIR Bundle posted to the base (transaction or
  batch), any other FHIR request, the REST API (/api, /auth, /cds-services), and everything else (the web forms;
  there are no file uploads today — an upload route would get its own class here). A declared Content-Length over
  the limit is answered 413 at once, without reading the body; a body without one (chunked) is counted while it
  streams in and refused with 413 as soon as it passes the limit.
- A /fhir or /api request that carries a body but neither an Authorization header nor the session cookie is
  answered 401 before the body is read. Whether a token is valid is still checked by the endpoint.
- Every /fhir, /api, /auth and /cds-services response gets ``Cache-Control: no-store``: they carry personal data
  (the web pages set it themselves, api/web.py).
"""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import cookie_parser
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from onetrip.api.deps import COOKIE
from onetrip.api.errors import FHIR_JSON
from onetrip.config import Settings
from onetrip.kit.errors import Unauthorized, operation_outcome

NO_STORE_PREFIXES = ("/fhir/", "/api/", "/auth/", "/cds-services")
AUTH_FIRST_PREFIXES = ("/fhir/", "/api/")
BUNDLE_PATHS = ("/fhir/R4", "/fhir/R4/", "/fhir/R4/Bundle")


def _too_large_text(limit: int) -> str:
    return (f"请求体过大，超过 {_size(limit)} 的上限 / request body too large: the limit for this address is "
            f"{_size(limit)}")


def _size(n: int) -> str:
    return f"{n // (1024 * 1024)} MB" if n >= 1024 * 1024 else f"{n // 1024} KB"


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a streamed body passes its limit. An HTTPException, so FastAPI's body parsing
    lets it through to the exception handlers (api/errors.py), which answer 413 with a ``too-costly``
    OperationOutcome."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=_too_large_text(limit))


def limit_for(settings: Settings, method: str, path: str) -> int:
    """The body limit of the route class ``path`` belongs to."""
    if path.startswith("/fhir"):
        if method == "POST" and path in BUNDLE_PATHS:
            return settings.max_body_bundle
        return settings.max_body_fhir
    if path.startswith(("/api/", "/auth/", "/cds-services")):
        return settings.max_body_api
    return settings.max_body_form


def _answer(scope: Scope, status: int, message: str, code: str, headers: dict[str, str] | None = None) -> JSONResponse:
    media = FHIR_JSON if scope["path"].startswith("/fhir") else "application/json"
    return JSONResponse(operation_outcome(message, code=code), status_code=status, headers=headers, media_type=media)


class RequestLimits:
    """Install with ``app.add_middleware(RequestLimits, settings=settings)``."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith(NO_STORE_PREFIXES):
            send = _no_store(send)
        headers = Headers(scope=scope)
        limit = limit_for(self.settings, scope["method"], path)
        declared = headers.get("content-length")
        chunked = "transfer-encoding" in headers
        length: int | None = None
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                length = -1
            if length < 0:
                await _answer(scope, 400, "Content-Length 无效 / invalid Content-Length", "invalid")(scope, receive, send)
                return
        has_body = chunked or bool(length)
        if has_body and path.startswith(AUTH_FIRST_PREFIXES) and not _has_credentials(headers):
            refused = Unauthorized()
            await _answer(scope, 401, refused.message, refused.code, refused.headers)(scope, receive, send)
            return
        if length is not None and length > limit:
            await _answer(scope, 413, _too_large_text(limit), "too-costly")(scope, receive, send)
            return
        if not has_body:
            await self.app(scope, receive, send)
            return

        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except BodyTooLarge:
            # Raised where no exception handler answered it (an endpoint reading the body outside FastAPI's
            # parsing): answer here unless a response is already under way.
            if started:
                raise
            await _answer(scope, 413, _too_large_text(limit), "too-costly")(scope, receive, send)


def _has_credentials(headers: Headers) -> bool:
    """A bearer token, the web session cookie, or a home device's token (``X-Device-Token``, the only
    credential of POST /api/devices/readings); whether it is valid is the endpoint's to decide."""
    if headers.get("authorization", "").strip() or headers.get("x-device-token", "").strip():
        return True
    return bool(cookie_parser(headers.get("cookie", "")).get(COOKIE))


def _no_store(send: Send) -> Send:
    async def send_no_store(message: Message) -> None:
        if message["type"] == "http.response.start":
            MutableHeaders(scope=message)["Cache-Control"] = "no-store"
        await send(message)

    return send_no_store
