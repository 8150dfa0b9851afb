"""Login, tokens, sessions. Numbers (lockout threshold, idle timeout, ...) come from the ``security``
rule table; the checks themselves are the small pure functions at the top."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid

import jwt
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from onetrip.audit import service as audit
from onetrip.auth.passwords import DUMMY_HASH, complexity_problems, hash_password, verify_password
from onetrip.config import get_settings
from onetrip.db.fastpath import DriverStatement
from onetrip.kit.clock import LOCAL_TZ, utcnow
from onetrip.kit.errors import ApiError, BadRequest, Unauthorized
from onetrip.kit.principal import Principal
from onetrip.kit.scopes import (
    ScopeError,
    format_scopes,
    narrow,
    parse_scope,
    parse_scopes,
    scopes_for_roles,
)
from onetrip.registry.models import SystemClient, User, UserSession
from onetrip.rules.service import rule_values

CHINA_TIME = LOCAL_TZ


class OAuthError(ApiError):
    """RFC 6749 §5.2 error; the body carries both ``error`` and an OperationOutcome."""

    def __init__(self, error: str, message: str, status: int = 400) -> None:
        super().__init__(message, status=status, code="security" if status == 401 else "invalid")
        self.error = error


class AuditedLoginFailure(OAuthError):
    commit_session = True  # the failed-login counter and its audit row must survive the error


# --- pure checks -----------------------------------------------------------------------------------

def is_locked(locked_until: dt.datetime | None, now: dt.datetime) -> bool:
    return locked_until is not None and locked_until > now


def after_failure(failed: int, now: dt.datetime, threshold: int, minutes: int) -> tuple[int, dt.datetime | None]:
    """RULES §10 login-failure handling: lock for ``minutes`` once ``threshold`` failures accumulate."""
    failed += 1
    if failed >= threshold:
        return 0, now + dt.timedelta(minutes=minutes)
    return failed, None


def password_expired(changed_at: dt.datetime | None, now: dt.datetime, max_age_days: int) -> bool:
    return bool(max_age_days) and changed_at is not None and now - changed_at > dt.timedelta(days=max_age_days)


def is_idle(last_seen: dt.datetime, now: dt.datetime, idle_minutes: int) -> bool:
    return now - last_seen > dt.timedelta(minutes=idle_minutes)


# --- users -----------------------------------------------------------------------------------------

def security_policy(session: Session) -> dict[str, int]:
    return {k: int(v) for k, v in rule_values(session, "security").items()}


def check_new_password(session: Session, username: str, password: str) -> None:
    pol = security_policy(session)
    problems = complexity_problems(password, username, min_length=pol.get("password_min_length", 8),
                                   min_classes=pol.get("password_min_classes", 3))
    if problems:
        raise BadRequest("密码不符合要求 / password rejected: " + "; ".join(problems), expression=["password"])


def create_user(session: Session, username: str, password: str, roles: list[str], display_name: str,
                organization_id: str | None, practitioner_id: str | None = None) -> User:
    from onetrip.registry.models import Role

    if not username or not username.replace("_", "").replace(".", "").replace("-", "").isalnum():
        raise BadRequest("用户名只能包含字母、数字、._- / user name may only use letters, digits and . _ -")
    bad = [r for r in roles if r not in Role.__members__]
    if bad or not roles:
        raise BadRequest(f"角色无效 / unknown role {bad or roles}; choose from {', '.join(Role.__members__)}")
    if organization_id is None and roles != ["admin"]:
        raise BadRequest("除管理员外，用户必须属于一个机构 / every user but an admin belongs to an institution")
    if session.scalar(select(User.id).where(User.username == username)):
        raise BadRequest(f"用户名已存在 / user {username!r} already exists", status=409, code="duplicate")
    check_new_password(session, username, password)
    user = User(username=username, display_name=display_name or username, password_hash=hash_password(password),
                roles=list(roles), organization_id=organization_id, practitioner_id=practitioner_id,
                password_changed_at=utcnow())
    session.add(user)
    session.flush()
    return user


def change_password(session: Session, user: User, old: str, new: str) -> None:
    if not verify_password(old, user.password_hash):
        raise BadRequest("原密码错误 / current password is wrong")
    if old == new:
        raise BadRequest("新密码不能与原密码相同 / the new password must differ from the current one")
    check_new_password(session, user.username, new)
    user.password_hash, user.password_changed_at = hash_password(new), utcnow()
    session.flush()


def login(session: Session, username: str, password: str, *, address: str | None = None,
          source: str = "api") -> tuple[User, UserSession]:
    pol = security_policy(session)
    now = utcnow()
    user = session.scalar(select(User).where(User.username == username).with_for_update())
    anon = Principal(kind="user", id=user.id if user else "-", name=username[:64], organization_id=None,
                     network_address=address, source=source)
    if user is None or not user.active:
        verify_password(password, DUMMY_HASH)
        audit.record(session, anon, "login", outcome=audit.OUTCOME_MINOR, outcome_desc="unknown or inactive user")
        raise AuditedLoginFailure("invalid_grant", "用户名或密码错误 / wrong user name or password")
    if is_locked(user.locked_until, now):
        audit.record(session, anon, "login", outcome=audit.OUTCOME_MINOR, outcome_desc="account locked")
        local = user.locked_until.astimezone(CHINA_TIME)
        raise AuditedLoginFailure(
            "invalid_grant",
            f"账户已锁定，请于 {local:%H:%M}（北京时间）后重试或联系管理员 / account locked until "
            f"{local:%H:%M} (China time) after repeated failures; try later or ask an admin",
        )
    if not verify_password(password, user.password_hash):
        user.failed_logins, user.locked_until = after_failure(
            user.failed_logins, now, pol.get("lockout_threshold", 5), pol.get("lockout_minutes", 15))
        desc = "wrong password" + (" — account locked" if user.locked_until else "")
        audit.record(session, anon, "login", outcome=audit.OUTCOME_MINOR, outcome_desc=desc)
        raise AuditedLoginFailure("invalid_grant", "用户名或密码错误 / wrong user name or password")
    user.failed_logins, user.locked_until, user.last_login_at = 0, None, now
    us = UserSession(user_id=user.id, created_at=now, last_seen_at=now, client_address=address)
    session.add(us)
    session.flush()
    audit.record(session, principal_for_user(user, us.id, source=source, address=address), "login")
    return user, us


def principal_for_user(user: User, session_id: str | None, *, scope: str | None = None, source: str = "api",
                       address: str | None = None) -> Principal:
    granted = scopes_for_roles(user.roles)
    scopes = narrow(parse_scopes(scope), granted) if scope else granted
    return Principal(kind="user", id=user.id, name=user.username, organization_id=user.organization_id,
                     roles=frozenset(user.roles), scopes=scopes, session_id=session_id, source=source,
                     network_address=address, raw_scope=format_scopes(scopes))


def logout(session: Session, principal: Principal) -> None:
    if principal.session_id:
        us = session.get(UserSession, principal.session_id)
        if us and us.ended_at is None:
            us.ended_at, us.end_reason = utcnow(), "logout"
            audit.record(session, principal, "logout")
    session.flush()


# --- system clients --------------------------------------------------------------------------------

def create_client(session: Session, name: str, scopes: str, organization_id: str | None = None) -> tuple[SystemClient, str]:
    try:
        parsed = tuple(parse_scope(part) for part in scopes.split())  # strict: every word must be a scope
    except ScopeError as e:
        raise BadRequest(str(e)) from None
    if not parsed:
        raise BadRequest("至少需要一个授权范围 / give at least one scope, e.g. system/Patient.cruds")
    secret = secrets.token_urlsafe(32)
    client = SystemClient(client_id="c-" + uuid.uuid4().hex[:16], name=name, secret_hash=hash_password(secret),
                          scopes=format_scopes(parsed), organization_id=organization_id)
    session.add(client)
    session.flush()
    return client, secret


def authenticate_client(session: Session, client_id: str, secret: str, scope: str | None,
                        address: str | None = None) -> Principal:
    client = session.scalar(select(SystemClient).where(SystemClient.client_id == client_id))
    if client is None or not client.active or not verify_password(secret, client.secret_hash):
        if client is None:
            verify_password(secret, DUMMY_HASH)
        raise OAuthError("invalid_client", "客户端认证失败 / client authentication failed", status=401)
    granted = parse_scopes(client.scopes)
    try:
        scopes = narrow(parse_scopes(scope), granted) if scope else granted
    except ScopeError as e:
        raise OAuthError("invalid_scope", str(e)) from None
    if not scopes:
        raise OAuthError("invalid_scope", "请求的授权范围未被授予 / none of the requested scopes is granted")
    return Principal(kind="client", id=client.id, name=client.name, organization_id=client.organization_id,
                     scopes=scopes, client_id=client.client_id, network_address=address,
                     raw_scope=format_scopes(scopes))


# --- tokens ----------------------------------------------------------------------------------------

def issue_token(principal: Principal) -> tuple[str, int]:
    s = get_settings()
    now = utcnow()
    ttl = s.access_token_minutes * 60
    claims = {
        "iss": s.jwt_issuer, "sub": principal.id, "typ": principal.kind, "sid": principal.session_id,
        "org": principal.organization_id, "roles": sorted(principal.roles), "scope": principal.raw_scope,
        "name": principal.name, "cid": principal.client_id,
        "iat": int(now.timestamp()), "exp": int(now.timestamp()) + ttl, "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, s.secret_key, algorithm="HS256"), ttl


_CLIENT = DriverStatement(select(SystemClient.id, SystemClient.name, SystemClient.organization_id,
                                  SystemClient.client_id, SystemClient.active)
                           .where(SystemClient.id == bindparam("id")))


def principal_from_token(session: Session, token: str, *, source: str = "api", address: str | None = None) -> Principal:
    """Verify signature and expiry; for users also the server-side session (logout, idle timeout)."""
    s = get_settings()
    try:
        claims = jwt.decode(token, s.secret_key, algorithms=["HS256"], issuer=s.jwt_issuer,
                            options={"require": ["exp", "iat", "sub", "typ"]})
    except jwt.ExpiredSignatureError:
        raise Unauthorized("令牌已过期，请重新登录 / token expired: sign in again") from None
    except jwt.PyJWTError:
        raise Unauthorized("令牌无效 / invalid token") from None
    if claims["typ"] == "client":
        client = _CLIENT.first(session, {"id": claims["sub"]})  # every system request: no ORM object
        if client is None or not client.active:
            raise Unauthorized("客户端已停用 / client disabled")
        return Principal(kind="client", id=client.id, name=client.name, organization_id=client.organization_id,
                         scopes=parse_scopes(claims.get("scope")), client_id=client.client_id, source=source,
                         network_address=address, raw_scope=claims.get("scope") or "")
    if claims["typ"] != "user" or not claims.get("sid"):
        raise Unauthorized("令牌无效 / invalid token")
    us = session.get(UserSession, claims["sid"])
    now = utcnow()
    if us is None or us.user_id != claims["sub"] or us.ended_at is not None:
        raise Unauthorized("会话已结束，请重新登录 / session ended: sign in again")
    idle = security_policy(session).get("idle_timeout_minutes", 30)
    if is_idle(us.last_seen_at, now, idle):
        us.ended_at, us.end_reason = now, "idle-timeout"
        raise _IdleTimeout(f"超过{idle}分钟未操作，请重新登录 / signed out after {idle} minutes idle")
    user = session.get(User, us.user_id)
    if user is None or not user.active:
        raise Unauthorized("用户已停用 / user disabled")
    if (now - us.last_seen_at).total_seconds() > 30:  # keep writes rare; 30 s is far below any timeout
        us.last_seen_at = now
    p = principal_for_user(user, us.id, scope=claims.get("scope") or None, source=source, address=address)
    return p


class _IdleTimeout(Unauthorized):
    commit_session = True  # record that the session ended


def token_response(principal: Principal) -> dict:
    token, ttl = issue_token(principal)
    return {"access_token": token, "token_type": "Bearer", "expires_in": ttl, "scope": principal.raw_scope}
