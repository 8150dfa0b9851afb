"""Web helpers every page module uses: language, rendering with the security headers, the sliding cookie
token, the same-site check for form posts, and service errors shown as pages.

They live in the HTTP kit (below the capability domains) so a domain's ``web.py`` can render pages without
importing the staff site (``onetrip.web``), which sits above every domain."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

import jwt
from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from onetrip.api import i18n
from onetrip.api.deps import COOKIE
from onetrip.api.i18n import N_
from onetrip.auth import service as auth
from onetrip.kit.clock import utcnow
from onetrip.kit.errors import AccessDenied, ApiError, Forbidden, Unauthorized
from onetrip.kit.principal import Principal
from onetrip.registry.models import Organization, User

SECURITY_HEADERS = {
    # Patient data must not stay in a shared workstation's cache or leak through referrers or frames.
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "frame-ancestors 'none'; form-action 'self'; base-uri 'self'",
}


# --- language, rendering ---------------------------------------------------------------------------

def locale_of(request: Request) -> str:
    """?lang= wins (and is remembered in a cookie), then the cookie, then the deployment default (zh_CN).
    The browser's Accept-Language is deliberately ignored: the UI is Chinese unless a user switches."""
    default = i18n.normalize_locale(request.app.state.settings.default_locale) or i18n.DEFAULT_LOCALE
    return (i18n.normalize_locale(request.query_params.get("lang"))
            or i18n.normalize_locale(request.cookies.get(i18n.LANG_COOKIE)) or default)


def tr(request: Request, message: str, **variables: object) -> str:
    """Translate a Python-side UI string (extracted with the keyword ``tr:2``)."""
    return i18n.gettext(locale_of(request), message, **variables)


def _lang_url(request: Request, lang: str) -> str:
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"] + [("lang", lang)]
    return request.url.path + "?" + urlencode(params)


def _me(session: Session, principal: Principal | None) -> dict[str, Any] | None:
    if principal is None:
        return None
    user = session.get(User, principal.id) if principal.kind == "user" else None
    org = session.get(Organization, principal.organization_id) if principal.organization_id else None
    return {"principal": principal, "name": user.display_name if user else principal.name,
            "username": principal.name, "org": org, "roles": sorted(principal.roles),
            "is_admin": principal.is_admin}


def is_htmx(request: Request) -> bool:
    return (request.headers.get("hx-request") == "true"
            and request.headers.get("hx-history-restore-request") != "true")


def page(request: Request, template: str, *, session: Session | None = None, principal: Principal | None = None,
         status: int = 200, **context: Any) -> HTMLResponse:
    loc = locale_of(request)
    other = "en" if loc == "zh_CN" else "zh_CN"
    html = i18n.render(loc, template, request=request, me=_me(session, principal) if session else None,
                       lang_switch={"url": _lang_url(request, other), "label": "English" if other == "en" else "中文"},
                       path=request.url.path, **context)
    resp = HTMLResponse(html, status_code=status, headers={**SECURITY_HEADERS, "Vary": "HX-Request, Cookie"})
    if i18n.normalize_locale(request.query_params.get("lang")):
        resp.set_cookie(i18n.LANG_COOKIE, loc, max_age=365 * 24 * 3600, samesite="lax", httponly=True, path="/")
    _refresh_token(request, principal, resp)
    return resp


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _set_token_cookie(request: Request, response: Response, token: str) -> None:
    # A session cookie (no max-age): closing the browser on a shared workstation ends it; the token's own
    # expiry and the server-side idle timeout still apply.
    response.set_cookie(COOKIE, token, httponly=True, samesite="lax", secure=_secure(request), path="/")


def _refresh_token(request: Request, principal: Principal | None, response: Response) -> None:
    """Sliding expiry: while a user keeps working, re-issue the cookie token once half its life is gone
    (the server-side session and its idle timeout stay the real limit)."""
    token = request.cookies.get(COOKIE)
    if principal is None or principal.kind != "user" or not token or request.headers.get("authorization"):
        return
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
        exp, iat = int(claims["exp"]), int(claims["iat"])
    except (jwt.PyJWTError, KeyError, ValueError, TypeError):
        return
    if exp - utcnow().timestamp() < (exp - iat) / 2:
        _set_token_cookie(request, response, auth.issue_token(principal)[0])


def safe_next(target: str | None) -> str:
    """Only redirect within the UI (no open redirect)."""
    t = (target or "").strip()
    parts = urlsplit(t)
    if not t.startswith("/ui") or t.startswith("//") or "\\" in t or parts.scheme or parts.netloc:
        return "/ui/"
    return t


def check_origin(request: Request) -> None:
    """Belt and braces next to SameSite=Lax: a form POST must come from this site."""
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host", ""):
        raise Forbidden("请求来源不被接受 / cross-site request refused")


# --- errors as pages -------------------------------------------------------------------------------

ERROR_TITLES = {400: N_("The request could not be processed"), 403: N_("Access denied"), 404: N_("Not found"),
                409: N_("Conflict"), 410: N_("This record was deleted")}


def error_page(request: Request, session: Session, principal: Principal | None, exc: ApiError,
               **context: Any) -> HTMLResponse:
    title = ERROR_TITLES.get(exc.status, N_("Something went wrong"))
    return page(request, "error.html", session=session, principal=principal, status=exc.status,
                title=title, message=exc.message, status_code=exc.status,
                audited=isinstance(exc, AccessDenied), **context)


def _settle(session: Session, exc: ApiError) -> None:
    """What the API does at the end of a failed request: keep an audited denial, drop the rest."""
    if exc.commit_session:
        session.commit()
    else:
        session.rollback()


def html_errors(fn: Callable[..., Response]) -> Callable[..., Response]:
    """Render service errors (400/403/404/410...) as a page; 401 still goes to the login redirect."""

    def rendered(e: ApiError, kwargs: dict[str, Any]) -> Response:
        session: Session = kwargs["session"]
        _settle(session, e)
        return error_page(kwargs["request"], session, kwargs.get("principal"), e)

    if inspect.iscoroutinefunction(fn):  # an async page (reads the form itself): the error arises when awaited

        @functools.wraps(fn)
        async def awaiting(*args: Any, **kwargs: Any) -> Response:
            try:
                return await fn(*args, **kwargs)
            except Unauthorized:
                raise
            except ApiError as e:
                return rendered(e, kwargs)

        return awaiting

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            return fn(*args, **kwargs)
        except Unauthorized:
            raise
        except ApiError as e:
            return rendered(e, kwargs)

    return wrapper
