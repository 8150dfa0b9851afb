"""The web UI (/ui): server-rendered Jinja2 pages with HTMX for live search. Assets are local (/static),
because hospital intranets have no CDN.

Every page goes through the same services as the API, so access decisions and audit rows are the same.
Errors become HTML pages instead of OperationOutcomes; an audited denial is committed before the 403 page
is shown. A 401 on /ui is turned into a redirect to the login page by ``api.errors``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections import defaultdict
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from onetrip.access import service as access
from onetrip.access.models import BreakGlass
from onetrip.api import i18n
from onetrip.api.deps import COOKIE, DB, CurrentPrincipal, bearer_token, client_address
from onetrip.api.web import (
    _secure,
    _set_token_cookie,
    _settle,
    check_origin,
    error_page,
    html_errors,
    is_htmx,
    locale_of,
    page,
    safe_next,
    tr,
)
from onetrip.audit import service as audit
from onetrip.audit.models import AuditEvent
from onetrip.auth import service as auth
from onetrip.auth import totp
from onetrip.identity import repository as identity_repo
from onetrip.identity import service as identity
from onetrip.identity.schemas import SearchParams
from onetrip.kit.clock import as_utc, utcnow
from onetrip.kit.errors import AccessDenied, ApiError, BadRequest, Forbidden
from onetrip.kit.identifiers import IdentifierError, normalize_phone, upgrade_15_to_18
from onetrip.kit.principal import Principal
from onetrip.persons.models import PatientRecord, Person
from onetrip.registry import service as registry
from onetrip.registry.models import Organization, User
from onetrip.scheduling import web as sched_web

router = APIRouter(prefix="/ui", include_in_schema=False)

AUDIT_PAGE_SIZE = 50
SEARCH_PAGE_SIZE = 20
ORG_ORDER = ["bureau", "lead_hospital", "district_hospital", "public_health", "branch_centre", "station"]
# --- sign in / out ---------------------------------------------------------------------------------

@router.get("/login")
def login_form(request: Request, next: str = "/ui/") -> HTMLResponse:
    return page(request, "login.html", next=safe_next(next), username="", error=None)


def _login_error(request: Request, session: Session, e: ApiError, template: str, **ctx: Any) -> HTMLResponse:
    """A failed step: the error inline on the same form (429 keeps its Retry-After), what was typed kept."""
    _settle(session, e)
    resp = page(request, template, status=e.status if e.status in (400, 429) else 400,
                error=i18n.pick(e.message, locale_of(request)), **ctx)
    if e.status == 429:
        resp.headers["Retry-After"] = e.headers.get("Retry-After", "1")
    return resp


def _signed_in(request: Request, session: Session, user: User, next: str, *, second_factor: str | None = None,
               recovery_codes: list[str] | None = None) -> Response:
    """The last step: a session, the cookie, and on to ``next`` (or the recovery codes, shown once)."""
    address = client_address(request)
    us = auth.open_session(session, user, address=address, source="web", second_factor=second_factor)
    token, _ttl = auth.issue_token(auth.principal_for_user(user, us.id, source="web", address=address))
    if recovery_codes:
        resp: Response = page(request, "login_step.html", stage="recovery", codes=recovery_codes,
                              next=safe_next(next), username=user.username, error=None)
    else:
        resp = RedirectResponse(safe_next(next), status_code=303)
    _set_token_cookie(request, resp, token)
    return resp


def _after_second_factor(request: Request, session: Session, user: User, next: str, *,
                         second_factor: str | None = None, recovery_codes: list[str] | None = None) -> Response:
    """RULES §10 rotation: an expired password is changed before the session starts."""
    if auth.check_password_age(session, user):
        return page(request, "login_step.html", stage="password", ticket=auth.signin_ticket(user, "password"),
                    next=safe_next(next), username=user.username, codes=recovery_codes, error=None)
    return _signed_in(request, session, user, next, second_factor=second_factor, recovery_codes=recovery_codes)


def _enrol_page(request: Request, session: Session, user: User, next: str, error: str | None = None,
                status: int = 200) -> HTMLResponse:
    import segno  # the QR (inline SVG) of the otpauth:// URI

    secret = auth.begin_enrolment(session, user)
    uri = totp.provisioning_uri(secret, user.username)
    qr = segno.make(uri, error="m").svg_inline(scale=4, title=tr(request, "Scan with an authenticator app"))
    return page(request, "login_step.html", status=status, stage="enrol", ticket=auth.signin_ticket(user, "enrol"),
                secret=" ".join(secret[i:i + 4] for i in range(0, len(secret), 4)), uri=uri, qr=qr,
                next=safe_next(next), username=user.username, error=error)


@router.post("/login")
def login_submit(request: Request, session: DB, username: Annotated[str, Form()] = "",
                 password: Annotated[str, Form()] = "", totp_code: Annotated[str, Form(alias="totp")] = "",
                 next: Annotated[str, Form()] = "/ui/") -> Response:
    """Sign in: the password, then (administrators, auditors, bureau managers) the one-time code — on this form
    when given, else on a second step — or the enrolment of an authenticator app; then an expired password is
    changed. Errors show on the form, the user name kept."""
    username = username.strip()[:64]
    ctx = {"next": safe_next(next), "username": username}
    if not username or not password:
        return page(request, "login.html", status=400, error=tr(request, "Enter your user name and password."), **ctx)
    address = client_address(request)
    try:
        check_origin(request)
        first = auth.first_factor(session, username, password, address=address, source="web")
        user, used = first.user, None
        if auth.needs_second_factor(user) or first.locked:
            if not auth.has_second_factor(user):
                return _enrol_page(request, session, user, next)  # the secret is committed with the request
            if not totp_code.strip():
                if first.locked:  # a lock opens only with the code given on this form (no hint otherwise)
                    auth.refuse_locked(session, user, address=address, source="web")
                return page(request, "login_step.html", stage="totp", ticket=auth.signin_ticket(user, "totp"),
                            error=None, **ctx)
            used = auth.verify_second_factor(session, user, totp_code[:64], address=address, source="web",
                                             locked=first.locked)
    except ApiError as e:
        return _login_error(request, session, e, "login.html", **ctx)
    return _after_second_factor(request, session, user, next, second_factor=used)


@router.post("/login/totp")
def login_totp(request: Request, session: DB, ticket: Annotated[str, Form()] = "",
               totp_code: Annotated[str, Form(alias="totp")] = "", next: Annotated[str, Form()] = "/ui/") -> Response:
    """Second step: the 6 digits of the authenticator app, or a recovery code."""
    address = client_address(request)
    try:
        check_origin(request)
        user = auth.read_signin_ticket(session, ticket, "totp")
    except ApiError as e:
        return _login_error(request, session, e, "login.html", next=safe_next(next), username="")
    ctx = {"next": safe_next(next), "username": user.username, "stage": "totp", "ticket": ticket}
    try:
        auth.check_throttle(session, user.username, address, source="web")
        used = auth.verify_second_factor(session, user, totp_code[:64], address=address, source="web")
    except ApiError as e:
        return _login_error(request, session, e, "login_step.html", **ctx)
    return _after_second_factor(request, session, user, next, second_factor=used)


@router.post("/login/enrol")
def login_enrol(request: Request, session: DB, ticket: Annotated[str, Form()] = "",
                totp_code: Annotated[str, Form(alias="totp")] = "", next: Annotated[str, Form()] = "/ui/") -> Response:
    """Enrolment at sign-in: the first code from the app confirms it; the recovery codes are shown once."""
    address = client_address(request)
    try:
        check_origin(request)
        user = auth.read_signin_ticket(session, ticket, "enrol")
    except ApiError as e:
        return _login_error(request, session, e, "login.html", next=safe_next(next), username="")
    try:
        auth.check_throttle(session, user.username, address, source="web")
        codes = auth.confirm_enrolment(session, user, totp_code[:64], address=address, source="web")
    except ApiError as e:
        _settle(session, e)
        resp = _enrol_page(request, session, user, next, error=i18n.pick(e.message, locale_of(request)),
                           status=e.status if e.status in (400, 429) else 400)
        if e.status == 429:
            resp.headers["Retry-After"] = e.headers.get("Retry-After", "1")
        return resp
    return _after_second_factor(request, session, user, next, second_factor="enrolment", recovery_codes=codes)


@router.post("/login/password")
def login_password(request: Request, session: DB, ticket: Annotated[str, Form()] = "",
                   new_password: Annotated[str, Form()] = "", confirm: Annotated[str, Form()] = "",
                   next: Annotated[str, Form()] = "/ui/") -> Response:
    """RULES §10 rotation: the password has expired; a new one (checked like any new password) starts the session."""
    try:
        check_origin(request)
        user = auth.read_signin_ticket(session, ticket, "password")
    except ApiError as e:
        return _login_error(request, session, e, "login.html", next=safe_next(next), username="")
    ctx = {"next": safe_next(next), "username": user.username, "stage": "password", "ticket": ticket}
    try:
        if new_password != confirm:
            raise BadRequest("两次输入的新密码不一致 / the two new passwords differ")
        auth.set_new_password(session, user, new_password)
    except ApiError as e:
        return _login_error(request, session, e, "login_step.html", **ctx)
    return _signed_in(request, session, user, next)


@router.post("/logout")
def logout(request: Request, session: DB) -> Response:
    """End the server-side session (so the old token is refused) and clear the cookie."""
    check_origin(request)
    token = bearer_token(request)
    if token:
        try:
            principal = auth.principal_from_token(session, token, source="web", address=client_address(request))
        except ApiError as e:
            _settle(session, e)
        else:
            auth.logout(session, principal)
    resp = RedirectResponse("/ui/login", status_code=303)
    resp.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax", secure=_secure(request))
    return resp


# --- home ------------------------------------------------------------------------------------------

@router.get("/")
@html_errors
def home(request: Request, session: DB, principal: CurrentPrincipal) -> Response:
    glass = []
    if principal.kind == "user":
        glass = list(session.scalars(
            select(BreakGlass).where(BreakGlass.user_id == principal.id, BreakGlass.ended_at.is_(None),
                                     BreakGlass.expires_at > utcnow()).order_by(BreakGlass.started_at.desc())))
    return page(request, "home.html", session=session, principal=principal, glass=glass,
                reasons=access.BREAK_GLASS_REASONS)


# --- patient search --------------------------------------------------------------------------------

def classify_query(q: str) -> tuple[str, SearchParams]:
    """One search box: resident ID (18/15 characters), phone (11 digits or +86...), MRN (letters and
    digits), pinyin (ASCII letters) or a Chinese name. Raises IdentifierError for a malformed phone."""
    s = q.strip()
    compact = s.replace(" ", "")
    if (len(compact) == 18 and compact[:17].isdigit() and (compact[17].isdigit() or compact[17] in "xX")) or (
            len(compact) == 15 and compact.isdigit()):
        ident = compact.upper()
        if len(ident) == 15:
            with contextlib.suppress(IdentifierError):
                ident = upgrade_15_to_18(ident)
        return "identifier", SearchParams(identifier=ident, count=SEARCH_PAGE_SIZE)
    digits = compact.replace("-", "")
    if digits.startswith("+86") or (digits.isdigit() and len(digits) == 11):
        return "phone", SearchParams(phone=normalize_phone(digits), count=SEARCH_PAGE_SIZE)
    if s.isascii() and any(ch.isdigit() for ch in s):
        return "mrn", SearchParams(identifier=compact, count=SEARCH_PAGE_SIZE)
    if s.isascii():
        return "pinyin", SearchParams(name=" ".join(s.split()), count=SEARCH_PAGE_SIZE)
    return "name", SearchParams(name=s, count=SEARCH_PAGE_SIZE)


def _org_names(session: Session, ids: set[str]) -> dict[str, Organization]:
    if not ids:
        return {}
    return {o.id: o for o in session.scalars(select(Organization).where(Organization.id.in_(ids)))}


@router.get("/patients")
@html_errors
def patients(request: Request, session: DB, principal: CurrentPrincipal, q: str = "") -> Response:
    q = q.strip()[:64]
    result, error, kind = None, None, None
    if q:
        try:
            kind, params = classify_query(q)
        except IdentifierError as e:
            error = i18n.pick(str(e), locale_of(request))
        else:
            result = identity.search(session, principal, params)
    orgs = _org_names(session, {r.organization_id for r in result.records}) if result else {}
    ctx = {"q": q, "result": result, "error": error, "kind": kind, "orgs": orgs}
    if is_htmx(request):
        return page(request, "_results.html", session=session, principal=principal, **ctx)
    return page(request, "patients.html", session=session, principal=principal, **ctx)


# --- a patient / a person --------------------------------------------------------------------------

def _subject_page(request: Request, session: Session, principal: Principal, person_id: str, *,
                  record: PatientRecord | None = None) -> HTMLResponse:
    """The patient page. With a record: that institution's registration, plus the person's other records
    when the policy allows (an audited cross-institution read); without: the person's page."""
    hidden_orgs = 0
    if record is not None:
        live = [r for r in identity_repo.records_of_person(session, person_id) if r.deleted_at is None]
        own = [r for r in live if r.id == record.id or r.organization_id == principal.organization_id]
        foreign = [r for r in live if r not in own]
        decision = access.decisions(session, principal, [person_id])[person_id]
        if foreign and decision.allowed:
            _, visible = identity.read_person(session, principal, person_id)
        else:
            visible = own
            hidden_orgs = len({r.organization_id for r in foreign})
        subject: PatientRecord | Person = record
    else:
        person, visible = identity.read_person(session, principal, person_id)
        subject = person
    orgs = _org_names(session, {r.organization_id for r in visible})
    return page(request, "patient.html", session=session, principal=principal, subject=subject, record=record,
                person_id=person_id, records=visible, orgs=orgs, hidden_orgs=hidden_orgs,
                glass=access.active_break_glass(session, principal, person_id),
                reasons=access.BREAK_GLASS_REASONS, next=request.url.path,
                sched=sched_web.patient_summary(session, principal, record) if record is not None else None)


def _forbidden(request: Request, session: Session, principal: Principal, exc: AccessDenied, person_id: str | None,
               next: str) -> HTMLResponse:
    session.commit()  # the denial was audited; keep it
    institutions = 0
    if person_id:
        institutions = session.scalar(
            select(func.count(func.distinct(PatientRecord.organization_id))).where(
                PatientRecord.person_id == person_id, PatientRecord.deleted_at.is_(None))) or 0
    return error_page(request, session, principal, exc, person_id=person_id, next=next,
                      reasons=access.BREAK_GLASS_REASONS, institutions=institutions)


@router.get("/patients/{record_id}")
@html_errors
def patient(record_id: str, request: Request, session: DB, principal: CurrentPrincipal) -> Response:
    try:
        rec = identity.read(session, principal, record_id)
    except AccessDenied as e:
        raw = session.get(PatientRecord, record_id)
        return _forbidden(request, session, principal, e, raw.person_id if raw else None, request.url.path)
    return _subject_page(request, session, principal, rec.person_id, record=rec)


@router.get("/patients/{record_id}/reveal")
@html_errors
def reveal(record_id: str, request: Request, session: DB, principal: CurrentPrincipal,
           field: str = "id_number") -> Response:
    """Show one unmasked identifier on request — itself an audited read of the record."""
    if field not in ("id_number", "phone"):
        raise BadRequest("只能显示证件号或电话 / only the ID number or the phone can be shown")
    try:
        rec = identity.read(session, principal, record_id)
    except AccessDenied as e:
        session.commit()
        return error_page(request, session, principal, e)
    return page(request, "_reveal.html", session=session, principal=principal, value=getattr(rec, field) or "")


@router.get("/persons/{person_id}")
@html_errors
def person_page(person_id: str, request: Request, session: DB, principal: CurrentPrincipal) -> Response:
    try:
        return _subject_page(request, session, principal, person_id)
    except AccessDenied as e:
        return _forbidden(request, session, principal, e, person_id, request.url.path)


# --- break the glass -------------------------------------------------------------------------------

@router.get("/break-glass")
@html_errors
def break_glass_form(request: Request, session: DB, principal: CurrentPrincipal, person_id: str = "",
                     next: str = "") -> Response:
    if not person_id or session.get(Person, person_id) is None:
        raise BadRequest("居民不存在 / person not found", status=404, code="not-found")
    return page(request, "break_glass.html", session=session, principal=principal, person_id=person_id,
                next=safe_next(next or f"/ui/persons/{person_id}"), reasons=access.BREAK_GLASS_REASONS,
                error=None, reason_code="ETREAT", reason_text="")


@router.post("/break-glass")
@html_errors
def break_glass_submit(request: Request, session: DB, principal: CurrentPrincipal,
                       person_id: Annotated[str, Form()] = "", reason_code: Annotated[str, Form()] = "",
                       reason_text: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "") -> Response:
    check_origin(request)
    target = safe_next(next or f"/ui/persons/{person_id}")
    try:
        access.start_break_glass(session, principal, person_id[:32], reason_code, reason_text)
    except BadRequest as e:
        session.rollback()
        return page(request, "break_glass.html", session=session, principal=principal, status=400,
                    person_id=person_id, next=target, reasons=access.BREAK_GLASS_REASONS,
                    error=i18n.pick(e.message, locale_of(request)), reason_code=reason_code,
                    reason_text=reason_text)
    return RedirectResponse(target, status_code=303)


@router.post("/break-glass/{bg_id}/end")
@html_errors
def break_glass_end(bg_id: str, request: Request, session: DB, principal: CurrentPrincipal,
                    next: Annotated[str, Form()] = "") -> Response:
    check_origin(request)
    access.end_break_glass(session, principal, bg_id)
    return RedirectResponse(safe_next(next), status_code=303)


# --- directory -------------------------------------------------------------------------------------

def directory_tree(rows: list[dict]) -> list[dict]:
    """[{community, nodes: [{org, staff, children: [...]}]}] — grouped by medical community, nested by
    parent institution, lead hospitals first."""
    def key(node: dict) -> tuple:
        t = node["org"].org_type
        return (ORG_ORDER.index(t) if t in ORG_ORDER else len(ORG_ORDER), node["org"].code)

    groups: dict[str | None, list[dict]] = defaultdict(list)
    for r in rows:
        groups[r["community"]].append({"org": r["org"], "staff": r["staff"], "children": []})
    out = []
    for community in sorted(groups, key=lambda c: (c is None, c or "")):
        nodes = groups[community]
        by_id = {n["org"].id: n for n in nodes}
        roots = []
        for n in nodes:
            parent = by_id.get(n["org"].parent_id)
            (parent["children"] if parent is not None and parent is not n else roots).append(n)
        for n in nodes:
            n["children"].sort(key=key)
        roots.sort(key=key)
        out.append({"community": community, "nodes": roots, "count": len(nodes),
                    "staff": sum(n["staff"] for n in nodes)})
    return out


@router.get("/directory")
@html_errors
def directory(request: Request, session: DB, principal: CurrentPrincipal) -> Response:
    return page(request, "directory.html", session=session, principal=principal,
                groups=directory_tree(registry.directory(session)))


# --- audit log (admins) ----------------------------------------------------------------------------

def _require_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise Forbidden("只有管理员可以查看审计日志 / only admins can read the audit log")


def _audit_context(request: Request, session: Session, principal: Principal) -> dict[str, Any]:
    qp = request.query_params
    person, user, outcome = (qp.get("person") or "").strip(), (qp.get("user") or "").strip(), qp.get("outcome") or ""
    try:
        page_no = max(1, int(qp.get("page") or 1))
    except ValueError:
        page_no = 1
    stmt = select(AuditEvent)
    if person:
        stmt = stmt.where(AuditEvent.entity_person_id == person)
    if user:
        stmt = stmt.where(or_(AuditEvent.agent_name == user, AuditEvent.agent_user_id == user))
    if outcome in ("0", "4", "8", "12"):
        stmt = stmt.where(AuditEvent.outcome == outcome)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    events = list(session.scalars(stmt.order_by(AuditEvent.seq.desc())
                                  .offset((page_no - 1) * AUDIT_PAGE_SIZE).limit(AUDIT_PAGE_SIZE)))
    pages = max(1, (total + AUDIT_PAGE_SIZE - 1) // AUDIT_PAGE_SIZE)
    filters = {"person": person, "user": user, "outcome": outcome}
    base = {k: v for k, v in filters.items() if v}

    def page_url(n: int) -> str:
        return "/ui/audit?" + urlencode({**base, "page": n})

    reviews = list(session.scalars(select(BreakGlass).where(BreakGlass.reviewed_at.is_(None))
                                   .order_by(BreakGlass.started_at.desc()).limit(100)))
    users = {u.id: u for u in session.scalars(select(User).where(User.id.in_({b.user_id for b in reviews})))}
    persons = {p.id: p for p in session.scalars(select(Person).where(Person.id.in_({b.person_id for b in reviews})))}
    orgs = _org_names(session, {b.organization_id for b in reviews if b.organization_id}
                      | {e.agent_org_id for e in events if e.agent_org_id})
    return {"events": events, "total": total, "page_no": page_no, "pages": pages, "filters": filters,
            "prev_url": page_url(page_no - 1) if page_no > 1 else None,
            "next_url": page_url(page_no + 1) if page_no < pages else None,
            "reviews": reviews, "users": users, "persons": persons, "orgs": orgs,
            "reasons": access.BREAK_GLASS_REASONS, "now": utcnow(), "as_utc": as_utc}


@router.get("/audit")
@html_errors
def audit_log(request: Request, session: DB, principal: CurrentPrincipal) -> Response:
    _require_admin(principal)
    ctx = _audit_context(request, session, principal)
    # Reading the audit log is itself recorded (who watches the watchers).
    audit.record(session, principal, "search", what=["AuditEvent"],
                 query="&".join(f"{k}={v}" for k, v in ctx["filters"].items() if v) + f"&page={ctx['page_no']}")
    return page(request, "audit.html", session=session, principal=principal, verify=None, **ctx)


@router.post("/audit/verify")
@html_errors
def audit_verify(request: Request, session: DB, principal: CurrentPrincipal) -> Response:
    _require_admin(principal)
    check_origin(request)
    started = dt.datetime.now(dt.UTC)
    checked, problems, checkpoint = audit.verify_with_checkpoint(session)
    verify = {"checked": checked, "problems": problems[:100], "more": max(0, len(problems) - 100),
              "ok": not problems, "seconds": (dt.datetime.now(dt.UTC) - started).total_seconds(),
              "checkpoint": checkpoint}
    if is_htmx(request):
        return page(request, "_verify.html", session=session, principal=principal, verify=verify)
    return page(request, "audit.html", session=session, principal=principal, verify=verify,
                **_audit_context(request, session, principal))


@router.post("/audit/break-glass/{bg_id}/review")
@html_errors
def audit_review(bg_id: str, request: Request, session: DB, principal: CurrentPrincipal,
                 outcome: Annotated[str, Form()] = "", note: Annotated[str, Form()] = "") -> Response:
    _require_admin(principal)
    check_origin(request)
    access.review_break_glass(session, principal, bg_id, outcome, note.strip())
    return RedirectResponse("/ui/audit#reviews", status_code=303)
