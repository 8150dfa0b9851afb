"""OAuth2 token endpoint (password and client_credentials grants) and logout."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request

from onetrip.api.deps import DB, CurrentPrincipal, client_address
from onetrip.auth import service as auth
from onetrip.kit.scopes import ScopeError

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/token")
def token(
    request: Request,
    session: DB,
    grant_type: Annotated[str, Form()],
    username: Annotated[str | None, Form()] = None,
    password: Annotated[str | None, Form()] = None,
    client_id: Annotated[str | None, Form()] = None,
    client_secret: Annotated[str | None, Form()] = None,
    scope: Annotated[str | None, Form()] = None,
    totp: Annotated[str | None, Form(max_length=64)] = None,
) -> dict:
    """OAuth2 token endpoint.

    * ``grant_type=password`` with ``username`` and ``password`` — a person. Administrators, auditors and
      bureau managers also send ``totp``: the 6 digits of their authenticator app (each code works once) or one
      of their recovery codes; they enrol on the web sign-in page first. Repeated failures slow an address down
      (429 with ``Retry-After``) and lock the account for that address; unknown user, wrong password and a
      locked account get the same answer (等保 2.0 level 3). An expired password is refused: change it on the
      web. The token carries a server-side session with an idle timeout.
    * ``grant_type=client_credentials`` with ``client_id`` and ``client_secret`` — a system client
      (HIS/LIS/PACS) with SMART ``system/...`` scopes.

    ``scope`` (optional) narrows the token, e.g. ``user/Patient.rs``.
    """
    address = client_address(request)
    if grant_type == "password":
        if not username or not password:
            raise auth.OAuthError("invalid_request", "需要用户名和密码 / username and password are required")
        user, us = auth.login(session, username, password, totp_code=totp, address=address)
        try:
            p = auth.principal_for_user(user, us.id, scope=scope, address=address)
        except ScopeError as e:
            raise auth.OAuthError("invalid_scope", str(e)) from None
        if scope and not p.scopes:
            raise auth.OAuthError("invalid_scope", "请求的授权范围未被授予 / none of the requested scopes is granted")
        return auth.token_response(p)
    if grant_type == "client_credentials":
        if not client_id or not client_secret:
            raise auth.OAuthError("invalid_request", "需要 client_id 和 client_secret / client_id and client_secret required")
        return auth.token_response(auth.authenticate_client(session, client_id, client_secret, scope, address))
    raise auth.OAuthError("unsupported_grant_type",
                          "支持 password 和 client_credentials / supported grants: password, client_credentials")


@router.post("/logout", status_code=204)
def logout(session: DB, principal: CurrentPrincipal) -> None:
    """End the caller's session; the token stops working at once."""
    auth.logout(session, principal)
