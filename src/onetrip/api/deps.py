"""Request-scoped dependencies: the session (committed before the response is sent) and the principal."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Query, Request
from sqlalchemy.orm import Session

from onetrip.auth import service as auth
from onetrip.kit.clock import MAX_SERVICE_DATE, MIN_SERVICE_DATE
from onetrip.kit.errors import ApiError, Forbidden, Unauthorized
from onetrip.kit.principal import Principal
from onetrip.kit.scopes import allows

COOKIE = "onetrip_token"


def _db(request: Request) -> Iterator[Session]:
    session: Session = request.app.state.sessionmaker()
    try:
        yield session
        session.commit()
    except ApiError as e:
        if e.commit_session:
            session.commit()
        else:
            session.rollback()
        raise
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


# scope="function": commit happens before the response leaves, so nothing acknowledged is lost.
DB = Annotated[Session, Depends(_db, scope="function")]


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return request.cookies.get(COOKIE)


def source_of(request: Request) -> str:
    path = request.url.path
    if path.startswith("/fhir"):
        return "fhir"
    if path.startswith("/api") or path.startswith("/auth"):
        return "api"
    return "web"


def _principal(request: Request, session: DB) -> Principal:
    token = bearer_token(request)
    if not token:
        raise Unauthorized()
    return auth.principal_from_token(session, token, source=source_of(request), address=client_address(request))


CurrentPrincipal = Annotated[Principal, Depends(_principal)]


def require_scope(principal: Principal, resource: str, permission: str) -> None:
    if not allows(principal.scopes, resource, permission):
        raise Forbidden(f"令牌的授权范围不包含 {resource}.{permission} / token scope does not allow "
                        f"{permission!r} on {resource}")

SERVICE_DATE = Query(ge=MIN_SERVICE_DATE, le=MAX_SERVICE_DATE)
"""A date query parameter bounded to the service dates: ``day: Annotated[dt.date, SERVICE_DATE]``."""
