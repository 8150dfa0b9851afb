"""Login, tokens, sessions. Numbers (lockout threshold, idle timeout, ...) come from the ``security``
rule table; the checks themselves are the small pure functions at the top."""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
import uuid

import jwt
from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from onetrip.audit import service as audit
from onetrip.auth import throttle, totp
from onetrip.auth.passwords import (
    DUMMY_HASH,
    complexity_problems,
    hash_password,
    strength_problems,
    verify_password,
)
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
from onetrip.registry.models import LoginThrottle, RecoveryCode, SystemClient, User, UserSession
from onetrip.rules.service import cached_rule_values, rule_values

CHINA_TIME = LOCAL_TZ


class OAuthError(ApiError):
    """RFC 6749 §5.2 error; the body carries both ``error`` and an OperationOutcome."""

    def __init__(self, error: str, message: str, status: int = 400) -> None:
        super().__init__(message, status=status,
                         code={401: "security", 429: "throttled"}.get(status, "invalid"))
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
    problems += strength_problems(password, [username], min_score=pol.get("password_min_strength", 0))
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


# --- sign-in ---------------------------------------------------------------------------------------
# One sign-in is: the throttle (429 while an address must wait), the password (the hash always runs), the locks
# (answered exactly like a wrong password), the second factor for privileged roles, password age, a session.
# The token endpoint does it in one request; the web form may split it into steps (api/auth.py, web/routes.py).

GENERIC_FAILURE = "用户名或密码错误 / wrong user name or password"


class Throttled(AuditedLoginFailure):
    """429 + Retry-After: this address must wait before its next attempt (RULES §10 progressive delay)."""

    def __init__(self, seconds: int) -> None:
        super().__init__("slow_down", f"尝试过于频繁，请{seconds}秒后再试 / too many attempts: try again in "
                                      f"{seconds} seconds", status=429)
        self.retry_after = seconds
        self.headers = {"Retry-After": str(seconds)}


class SecondFactorNeeded(AuditedLoginFailure):
    """The password was right; this account also needs a one-time code (or has to enrol first)."""


class PasswordExpired(AuditedLoginFailure):
    """The password was right but is older than ``password_max_age_days``: change it before signing in."""


def throttle_policy(session: Session) -> throttle.ThrottlePolicy:
    return throttle.ThrottlePolicy.from_rules(security_policy(session))


def _counters(session: Session, keys: list[str], *, lock: bool = False) -> dict[str, LoginThrottle]:
    stmt = select(LoginThrottle).where(LoginThrottle.key.in_(keys))
    return {row.key: row for row in session.scalars(stmt.with_for_update() if lock else stmt)}


def _as_counter(row: LoginThrottle | None) -> throttle.Counter | None:
    if row is None:
        return None
    return throttle.Counter(window_start=row.window_start, failures=row.failures, next_allowed_at=row.next_allowed_at,
                            locked_until=row.locked_until, addresses=list(row.addresses or []))


def _store(session: Session, key: str, row: LoginThrottle | None, counter: throttle.Counter) -> None:
    values = {"window_start": counter.window_start, "failures": counter.failures,
              "next_allowed_at": counter.next_allowed_at, "locked_until": counter.locked_until,
              "addresses": counter.addresses}
    if row is not None:
        for k, v in values.items():
            setattr(row, k, v)
        return
    try:  # another process may insert the same key at the same moment: then update theirs
        with session.begin_nested():
            session.add(LoginThrottle(key=key, **values))
    except IntegrityError:
        row = session.scalars(select(LoginThrottle).where(LoginThrottle.key == key).with_for_update()).one()
        for k, v in values.items():
            setattr(row, k, v)


def _record_failure(session: Session, username: str, address: str | None, policy: throttle.ThrottlePolicy,
                    now: dt.datetime) -> None:
    """Count one failure on the address, the (account, address) pair and the account (RULES §10)."""
    a, p, u = throttle.address_key(address), throttle.pair_key(username, address), throttle.account_key(username)
    rows = _counters(session, [a, p, u], lock=True)
    _store(session, a, rows.get(a),
           throttle.after_address_failure(throttle.current(_as_counter(rows.get(a)), now, policy), now, policy))
    _store(session, p, rows.get(p),
           throttle.after_pair_failure(throttle.current(_as_counter(rows.get(p)), now, policy), now, policy))
    _store(session, u, rows.get(u),
           throttle.after_account_failure(throttle.current(_as_counter(rows.get(u)), now, policy), now, policy,
                                          address))
    session.flush()


def _audit_failure(session: Session, user: User | None, username: str, address: str | None, source: str,
                   reason: str) -> None:
    anon = Principal(kind="user", id=user.id if user else "-", name=username[:64], organization_id=None,
                     network_address=address, source=source)
    audit.record(session, anon, "login", outcome=audit.OUTCOME_MINOR, outcome_desc=reason)


def check_throttle(session: Session, username: str, address: str | None, *, source: str = "api") -> None:
    """429 if this address must still wait (RULES §10 progressive delay). Keyed by address only, so the answer
    says nothing about the account."""
    now = utcnow()
    a, n = throttle.address_key(address), throttle.noted_key(address)
    rows = _counters(session, [a, n])
    row = rows.get(a)
    wait = throttle.retry_after(_as_counter(row), now)
    if wait:
        assert row is not None and row.next_allowed_at is not None
        _note_throttled(session, rows.get(n), n, row.next_allowed_at, username, address, source, wait, now)
        raise Throttled(wait)


def _note_throttled(session: Session, noted: LoginThrottle | None, key: str, until: dt.datetime, username: str,
                    address: str | None, source: str, wait: int, now: dt.datetime) -> None:
    """One audit row per address and waiting period (an attacker hammering a throttled address would otherwise
    make the audit chain's writes the cost of every refusal); the later refusals of that period are counted on
    the marker row and reported in the next period's audit row."""
    if noted is not None and noted.next_allowed_at == until:
        noted.failures += 1  # one small UPDATE, no audit chain write
        return
    earlier = noted.failures if noted is not None else 0
    reason = f"throttled ({wait} s)" + (f"; {earlier} more attempts refused in the previous wait" if earlier else "")
    _audit_failure(session, None, username, address, source, reason)
    _store(session, key, noted, throttle.Counter(window_start=now, failures=0, next_allowed_at=until,
                                                 locked_until=None, addresses=[]))


@dataclasses.dataclass
class FirstFactor:
    user: User
    locked: bool  # pair or account lock in force: only password + a valid second factor gets in


def first_factor(session: Session, username: str, password: str, *, address: str | None = None,
                 source: str = "api") -> FirstFactor:
    """The password step with throttling and lockout. Unknown user, wrong password and (for accounts without a
    second factor) a lock all end in the same ``AuditedLoginFailure`` — same status, same body, and the same
    argon2 work — while the audit row records the true reason."""
    check_throttle(session, username, address, source=source)
    now = utcnow()
    policy = throttle_policy(session)
    user = session.scalar(select(User).where(User.username == username))
    ok = verify_password(password, user.password_hash if user is not None else DUMMY_HASH)
    rows = _counters(session, [throttle.pair_key(username, address), throttle.account_key(username)])
    pair_locked = throttle.is_locked(_as_counter(rows.get(throttle.pair_key(username, address))), now)
    account_locked = throttle.is_locked(_as_counter(rows.get(throttle.account_key(username))), now) or (
        user is not None and user.locked_until is not None and user.locked_until > now)
    locked = pair_locked or account_locked
    if user is None or not user.active or not ok:
        reason = ("unknown or inactive user" if user is None or not user.active else "wrong password")
        if locked:
            reason += " — " + ("account locked" if account_locked else "locked for this address")
        _record_failure(session, username, address, policy, now)
        _audit_failure(session, user, username, address, source, reason)
        raise AuditedLoginFailure("invalid_grant", GENERIC_FAILURE)
    if locked and not has_second_factor(user):
        _audit_failure(session, user, username, address, source,
                       "account locked" if account_locked else "locked for this address")
        raise AuditedLoginFailure("invalid_grant", GENERIC_FAILURE)
    return FirstFactor(user, locked)


def refuse_locked(session: Session, user: User, *, address: str | None = None, source: str = "api") -> None:
    """A locked account signed in without its second factor: the generic answer (the password's rightness stays
    unconfirmed), the true reason in the audit row."""
    _audit_failure(session, user, user.username, address, source, "locked; no second factor given")
    raise AuditedLoginFailure("invalid_grant", GENERIC_FAILURE)


def has_second_factor(user: User) -> bool:
    return bool(user.totp_secret and user.totp_enrolled_at)


def needs_second_factor(user: User) -> bool:
    return totp.needs_second_factor(user.roles)


def verify_second_factor(session: Session, user: User, code: str, *, address: str | None = None,
                         source: str = "api", locked: bool = False) -> str:
    """Check a TOTP code (each step once: a replay is refused) or an unused recovery code (then used up).
    Returns "totp" or "recovery"; a wrong code counts as a sign-in failure. While a lock is in force the answer
    to a wrong code is the generic one, so it does not confirm the password."""
    now = utcnow()
    code = (code or "").strip()
    if has_second_factor(user) and code:
        if totp.looks_like_totp(code.replace(" ", "")):
            window = security_policy(session).get("totp_window_steps", 1)
            # Lock the user row: two requests with the same code must not both pass (replay).
            fresh = session.scalars(select(User).where(User.id == user.id).with_for_update()
                                    .execution_options(populate_existing=True)).one()
            step = totp.matching_step(fresh.totp_secret or "", code, now, window, fresh.totp_last_step)
            if step is not None:
                fresh.totp_last_step = step
                session.flush()
                return "totp"
        else:
            rc = session.scalar(select(RecoveryCode).where(RecoveryCode.code_hash == totp.recovery_code_hash(code),
                                                           RecoveryCode.user_id == user.id,
                                                           RecoveryCode.used_at.is_(None)).with_for_update())
            if rc is not None:
                rc.used_at = now
                session.flush()
                return "recovery"
    _record_failure(session, user.username, address, throttle_policy(session), now)
    _audit_failure(session, user, user.username, address, source,
                   "wrong or replayed second factor" + (" — locked" if locked else ""))
    if locked:
        raise AuditedLoginFailure("invalid_grant", GENERIC_FAILURE)
    raise AuditedLoginFailure("invalid_grant", "动态验证码错误或已用过 / wrong or already used one-time code")


def check_password_age(session: Session, user: User, *, address: str | None = None, source: str = "api") -> bool:
    """True when the password is older than ``password_max_age_days`` (RULES §10 rotation)."""
    return password_expired(user.password_changed_at, utcnow(), security_policy(session).get("password_max_age_days", 0))


def open_session(session: Session, user: User, *, address: str | None = None, source: str = "api",
                 second_factor: str | None = None) -> UserSession:
    """The sign-in succeeded: clear this pair's counter (and a lock the second factor opened), start a session."""
    now = utcnow()
    keys = [throttle.pair_key(user.username, address)] + ([throttle.account_key(user.username)] if second_factor else [])
    for row in _counters(session, keys, lock=True).values():
        row.failures, row.locked_until = 0, None
    user.failed_logins, user.locked_until, user.last_login_at = 0, None, now
    us = UserSession(user_id=user.id, created_at=now, last_seen_at=now, client_address=address)
    session.add(us)
    session.flush()
    audit.record(session, principal_for_user(user, us.id, source=source, address=address), "login",
                 outcome_desc=f"second factor: {second_factor}" if second_factor else None)
    return us


def login(session: Session, username: str, password: str, *, totp_code: str | None = None,
          address: str | None = None, source: str = "api") -> tuple[User, UserSession]:
    """The whole sign-in in one request (the token endpoint): password, second factor where the role needs one
    (``totp_code``: a 6-digit code or a recovery code), password age, then a session."""
    first = first_factor(session, username, password, address=address, source=source)
    user, used = first.user, None
    if needs_second_factor(user) or first.locked:
        if not has_second_factor(user):
            _audit_failure(session, user, username, address, source, "second factor not enrolled")
            raise SecondFactorNeeded(
                "invalid_grant", "此账户须启用两步验证：请先在网页登录（/ui/login）用验证器应用完成绑定 / this account "
                                 "needs two-step sign-in: enrol an authenticator app by signing in on the web (/ui/login) "
                                 "first")
        if not totp_code:
            if first.locked:
                refuse_locked(session, user, address=address, source=source)
            _audit_failure(session, user, username, address, source, "second factor missing")
            raise SecondFactorNeeded(
                "invalid_grant", "需要动态验证码：请在 totp 参数中提供验证器应用上的6位数字或一个恢复码 / this account needs "
                                 "a one-time code: send the 6 digits from the authenticator app (or a recovery code) "
                                 "as totp")
        used = verify_second_factor(session, user, totp_code, address=address, source=source, locked=first.locked)
    if check_password_age(session, user):
        _audit_failure(session, user, username, address, source, "password expired")
        raise PasswordExpired(
            "invalid_grant", "密码已过期，请在网页登录（/ui/login）时修改密码 / the password has expired: change it "
                             "by signing in on the web (/ui/login)")
    return user, open_session(session, user, address=address, source=source, second_factor=used)


# --- a sign-in in steps (the web form) --------------------------------------------------------------

TICKET_MINUTES = 10


def signin_ticket(user: User, stage: str) -> str:
    """A short-lived signed note "this user's password was right; next: ``stage``" (totp, enrol, password) that
    the web form carries between steps. It is no access token: ``principal_from_token`` refuses its type."""
    s = get_settings()
    now = int(utcnow().timestamp())
    claims = {"iss": s.jwt_issuer, "typ": "signin", "sub": user.id, "stage": stage, "iat": now,
              "exp": now + TICKET_MINUTES * 60, "jti": uuid.uuid4().hex}
    return jwt.encode(claims, s.secret_key, algorithm="HS256")


def read_signin_ticket(session: Session, ticket: str, stage: str) -> User:
    s = get_settings()
    try:
        claims = jwt.decode(ticket or "", s.secret_key, algorithms=["HS256"], issuer=s.jwt_issuer,
                            options={"require": ["exp", "sub", "typ"]})
    except jwt.PyJWTError:
        raise BadRequest("登录步骤已过期，请重新登录 / this sign-in step has expired: sign in again") from None
    user = session.get(User, claims["sub"]) if claims.get("typ") == "signin" and claims.get("stage") == stage else None
    if user is None or not user.active:
        raise BadRequest("登录步骤无效，请重新登录 / this sign-in step is not valid: sign in again")
    return user


# --- second-factor enrolment -----------------------------------------------------------------------

def begin_enrolment(session: Session, user: User) -> str:
    """A fresh TOTP secret for ``user`` (not yet in force: ``confirm_enrolment`` checks a first code)."""
    if has_second_factor(user):
        raise BadRequest("已启用两步验证 / two-step sign-in is already set up for this account")
    if not user.totp_secret:
        user.totp_secret = totp.new_secret()
        session.flush()
    return user.totp_secret


def confirm_enrolment(session: Session, user: User, code: str, *, address: str | None = None,
                      source: str = "web") -> list[str]:
    """The first code proves the authenticator holds the secret: enrolment done. Returns the 10 recovery codes
    (shown once; stored hashed)."""
    now = utcnow()
    if not user.totp_secret or has_second_factor(user):
        raise BadRequest("没有待确认的两步验证绑定 / there is no pending two-step set-up to confirm")
    window = security_policy(session).get("totp_window_steps", 1)
    step = totp.matching_step(user.totp_secret, code or "", now, window, user.totp_last_step)
    if step is None:
        _record_failure(session, user.username, address, throttle_policy(session), now)
        _audit_failure(session, user, user.username, address, source, "wrong code at second-factor enrolment")
        raise AuditedLoginFailure("invalid_grant", "验证码不对，请核对手机时间后输入验证器上当前的6位数字 / that code "
                                                   "is not right: check the phone's clock and enter the current 6 digits")
    user.totp_last_step, user.totp_enrolled_at = step, now
    codes = replace_recovery_codes(session, user)
    audit.record(session, principal_for_user(user, None, source=source, address=address), "login",
                 outcome_desc="second factor enrolled")
    return codes


def reset_second_factor(session: Session, principal: Principal, username: str) -> User:
    """An operator's reset after a lost phone and lost recovery codes: the user enrols again at the next web
    sign-in. Audited with who did it."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise BadRequest(f"用户不存在 / no user {username!r}", status=404, code="not-found")
    user.totp_secret = user.totp_enrolled_at = user.totp_last_step = None
    for rc in session.scalars(select(RecoveryCode).where(RecoveryCode.user_id == user.id,
                                                         RecoveryCode.used_at.is_(None))):
        rc.used_at = utcnow()
    audit.record(session, principal, "login", outcome_desc=f"second factor reset for {username}")
    session.flush()
    return user


def replace_recovery_codes(session: Session, user: User) -> list[str]:
    for old in session.scalars(select(RecoveryCode).where(RecoveryCode.user_id == user.id,
                                                          RecoveryCode.used_at.is_(None))):
        old.used_at = utcnow()  # superseded
    codes = totp.new_recovery_codes()
    now = utcnow()
    session.add_all(RecoveryCode(user_id=user.id, code_hash=totp.recovery_code_hash(c), created_at=now)
                    for c in codes)
    session.flush()
    return codes


def set_new_password(session: Session, user: User, new: str) -> None:
    """A new password after the old one was verified in this sign-in (an expired password, RULES §10)."""
    if verify_password(new, user.password_hash):
        raise BadRequest("新密码不能与原密码相同 / the new password must differ from the current one",
                         expression=["password"])
    check_new_password(session, user.username, new)
    user.password_hash, user.password_changed_at = hash_password(new), utcnow()
    session.flush()


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


_SESSION_USER = DriverStatement(
    select(UserSession.user_id, UserSession.last_seen_at, UserSession.ended_at, User.id, User.username,
           User.organization_id, User.roles, User.active)
    .outerjoin(User, User.id == UserSession.user_id).where(UserSession.id == bindparam("sid")))


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
    # The session and its user in one statement, as plain values (every signed-in request; issue 26).
    us = _SESSION_USER.first(session, {"sid": claims["sid"]})
    now = utcnow()
    if us is None or us.user_id != claims["sub"] or us.ended_at is not None:
        raise Unauthorized("会话已结束，请重新登录 / session ended: sign in again")
    idle = int(cached_rule_values(session, "security").get("idle_timeout_minutes", 30))
    if is_idle(us.last_seen_at, now, idle):
        ended = session.get(UserSession, claims["sid"])
        ended.ended_at, ended.end_reason = now, "idle-timeout"
        raise _IdleTimeout(f"超过{idle}分钟未操作，请重新登录 / signed out after {idle} minutes idle")
    if us.id is None or not us.active:
        raise Unauthorized("用户已停用 / user disabled")
    if (now - us.last_seen_at).total_seconds() > 30:  # keep writes rare; 30 s is far below any timeout
        session.execute(update(UserSession).where(UserSession.id == claims["sid"]).values(last_seen_at=now))
    # the row has the User attributes principal_for_user reads (id, username, organization_id, roles)
    p = principal_for_user(us, claims["sid"], scope=claims.get("scope") or None, source=source, address=address)
    return p


class _IdleTimeout(Unauthorized):
    commit_session = True  # record that the session ended


def token_response(principal: Principal) -> dict:
    token, ttl = issue_token(principal)
    return {"access_token": token, "token_type": "Bearer", "expires_in": ttl, "scope": principal.raw_scope}
