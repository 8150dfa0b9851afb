"""Web pages for scheduling under /ui/scheduling: the day/week board per resource (a click on a slot opens it:
its bookings with their actions, and booking a patient found by name, ID or phone), a patient's booking
screen with the itinerary suggestion (sites, reasons) and the appointment actions (cancel with a reason,
reschedule keeping the itinerary rules, check in, no-show), and the printable slip (masked name, QR code
for the kiosk, A5). Same services as the API; UI strings are English ``_()`` in the templates, translated
via the web catalogue (``scheduling.po``; zh_CN by default)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Annotated, Any
from urllib.parse import quote

import segno
from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session

from onetrip.api.deps import DB, CurrentPrincipal, require_scope
from onetrip.api.i18n import pick
from onetrip.api.web import check_origin, html_errors, locale_of, page
from onetrip.identity import service as identity
from onetrip.identity.schemas import SearchParams
from onetrip.kit.clock import LOCAL_TZ, local_date, local_hhmm, utcnow
from onetrip.kit.errors import ApiError, BadRequest, Conflict, NotFound, Unprocessable
from onetrip.kit.identifiers import IdentifierError, normalize_phone, parse_resident_id
from onetrip.kit.principal import Principal
from onetrip.kit.scopes import allows
from onetrip.persons.models import PatientRecord
from onetrip.registry.models import Department, Organization
from onetrip.scheduling import models, service
from onetrip.scheduling import repository as repo
from onetrip.scheduling.calendar import holiday_name, template_weekday
from onetrip.scheduling.models import Appointment, Resource, Slot
from onetrip.scheduling.rules import Placed, violations

router = APIRouter(prefix="/ui/scheduling", include_in_schema=False)

ACTIVE = ("pending", "booked")
CANCEL_REASONS = ("patient-request", "clinical", "duplicate", "resource-unavailable", "other")
CHANNELS = ("clinic", "phone", "kiosk", "web", "app")


# --- helpers -------------------------------------------------------------------------------------------

def _started(slot: Any, now: dt.datetime) -> bool:
    """A slot that has started cannot be booked (the repository's flag where present, else its start)."""
    flag = getattr(repo, "started", None)
    return bool(flag(slot, now)) if callable(flag) else slot.start <= now


class Places:
    """Where an exam is: the site (院区: a Site row, else the organization), the department and the room
    (the resource) — cached per request."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._orgs: dict[str, Organization | None] = {}
        self._res: dict[str, Resource | None] = {}
        self._sites: dict[tuple[str, str], str] = {}

    def org(self, org_id: str | None) -> Organization | None:
        if org_id and org_id not in self._orgs:
            self._orgs[org_id] = self.session.get(Organization, org_id)
        return self._orgs.get(org_id or "")

    def resource(self, resource_id: str | None) -> Resource | None:
        if resource_id and resource_id not in self._res:
            self._res[resource_id] = self.session.get(Resource, resource_id)
        return self._res.get(resource_id or "")

    def site(self, organization_id: str | None, resource_id: str | None = None, item: Any = None) -> str:
        """The site's name: the Site row of the itinerary item's site key (``org`` or ``org:campus``) where
        it carries one, else of the resource's campus; without a row the organization's name (and campus)."""
        key = getattr(item, "site", None)
        res = self.resource(resource_id)
        if isinstance(key, str) and key:
            org_id, _, campus = key.partition(":")
        else:
            org_id = organization_id or (res.organization_id if res else None)
            campus = (getattr(res, "campus", None) or "") if res else ""
        key = (org_id or "", campus)
        if key not in self._sites:
            name = None
            site_model = getattr(models, "Site", None)
            if site_model is not None and org_id:
                name = self.session.scalar(select(site_model.name).where(
                    site_model.organization_id == org_id, site_model.campus == campus))
            org = self.org(org_id)
            self._sites[key] = name or ((org.name if org else "") + (f" · {campus}" if campus else ""))
        return self._sites[key]

    def room(self, resource_id: str | None) -> str:
        res = self.resource(resource_id)
        if res is None:
            return ""
        dept = self.session.get(Department, res.department_id) if res.department_id else None
        return " · ".join(x for x in ((dept.name if dept else None), res.name) if x)


def _age(rec: PatientRecord, today: dt.date) -> int | None:
    born = rec.birth_date
    if born is None and rec.id_number:
        try:
            born = parse_resident_id(rec.id_number).birth_date
        except (IdentifierError, AttributeError):
            born = None
    if born is None:
        return None
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def _qr_svg(appointment_id: str) -> Markup:
    """The appointment's QR code (what the kiosk scans to check in) as inline SVG — no script, no style."""
    return Markup(segno.make(f"onetrip:appointment:{appointment_id}", error="m").svg_inline(  # noqa: S704
        scale=3, border=2, title="QR", svgclass="qr", lineclass="qr-line", omitsize=True))


def _back(target: str | None, default: str) -> str:
    """Redirect only within the scheduling pages (no open redirect)."""
    t = (target or "").strip()
    if t.startswith("/ui/scheduling/") and not t.startswith("//") and "\\" not in t and "://" not in t:
        return t
    return default


def _message(request: Request, exc: ApiError) -> str:
    return pick(exc.message, locale_of(request))


def _search(session: Session, principal: Principal, q: str) -> tuple[list[PatientRecord], str | None]:
    """Patients by name (or pinyin), resident ID, phone or MRN, as the patient search box does."""
    s = q.strip()[:64]
    if not s:
        return [], None
    compact = s.replace(" ", "").replace("-", "")
    if len(compact) in (15, 18) and compact[:15].isdigit():
        p = SearchParams(identifier=compact.upper(), count=20)
    elif compact.startswith("+86") or (compact.isdigit() and len(compact) == 11):
        try:
            p = SearchParams(phone=normalize_phone(compact), count=20)
        except IdentifierError as e:
            return [], str(e)
    elif s.isascii() and any(ch.isdigit() for ch in s):
        p = SearchParams(identifier=compact, count=20)
    else:
        p = SearchParams(name=" ".join(s.split()), count=20)
    return identity.search(session, principal, p, query_text=s).records, None


def _slot_or_404(session: Session, slot_id: str) -> Slot:
    slot = session.get(Slot, slot_id)
    if slot is None:
        raise NotFound("号源不存在 / slot not found")
    return slot


def _may(principal: Principal, resource: str, permission: str) -> bool:
    return allows(principal.scopes, resource, permission)


# --- the board -----------------------------------------------------------------------------------------

@router.get("/board")
@html_errors
def board(request: Request, session: DB, principal: CurrentPrincipal, organization: str | None = None,
          date: dt.date | None = None, view: str = "day") -> Response:
    """Day view: each resource's slots with booked/capacity (a slot opens its page; started slots are grey).
    Week view: places booked per resource and day."""
    require_scope(principal, "Slot", "s")
    org_id = organization or principal.organization_id
    orgs = [o for o in session.scalars(select(Organization).order_by(Organization.code))
            if repo.resources(session, organization_id=o.id)] if principal.is_operator else []
    if org_id is None and orgs:
        org_id = orgs[0].id
    day = date or local_date(utcnow())
    days = 7 if view == "week" else 1
    start = dt.datetime.combine(day, dt.time(0), LOCAL_TZ).astimezone(dt.UTC)
    resources = repo.resources(session, organization_id=org_id) if org_id else []
    slots = repo.slots(session, resource_ids=[r.id for r in resources], start=start,
                       end=start + dt.timedelta(days=days), limit=50_000) if resources else []
    by_res = defaultdict(list)
    week = defaultdict(lambda: [0, 0])
    for s in slots:
        by_res[s.resource_id].append(s)
        cell = week[(s.resource_id, local_date(s.start))]
        cell[0] += s.booked
        cell[1] += 0 if s.blocked else s.capacity
    dates = [day + dt.timedelta(days=i) for i in range(days)]
    now = utcnow()
    return page(request, "scheduling/board.html", session=session, principal=principal, view=view, day=day,
                dates=dates, resources=resources, by_res=by_res, week=week, orgs=orgs, org_id=org_id,
                hhmm=local_hhmm, prev=day - dt.timedelta(days=days), next=day + dt.timedelta(days=days),
                started=lambda s: _started(s, now), bookable=lambda s: repo.free_places(s, None, now) > 0,
                holiday=lambda d: (holiday_name(d) if template_weekday(d) is None else None),
                adjusted=lambda d: d.weekday() >= 5 and template_weekday(d) == 0)


# --- one slot: its bookings, and booking a patient into it --------------------------------------------

def _slot_page(request: Request, session: Session, principal: Principal, slot_id: str, *, q: str = "",
               record_id: str = "", exam_code: str = "", channel: str = "clinic", error: str | None = None,
               status: int = 200) -> Response:
    slot = _slot_or_404(session, slot_id)
    places = Places(session)
    res = places.resource(slot.resource_id)
    org = places.org(slot.organization_id)
    appts = [a for a in repo.appointments(session, organization_id=slot.organization_id, start=slot.start,
                                          end=slot.start + dt.timedelta(seconds=1), limit=500)
             if a.slot_id == slot.id]
    patients = {a.patient_record_id: session.get(PatientRecord, a.patient_record_id) for a in appts}
    found, search_error = _search(session, principal, q) if q else ([], None)
    if record_id and all(r.id != record_id for r in found):
        chosen = session.get(PatientRecord, record_id)
        if chosen is not None and chosen.deleted_at is None:
            found = [chosen, *found]
    types = repo.exam_types(session, list(res.exam_codes or [])) if res else {}
    now = utcnow()
    return page(request, "scheduling/slot.html", session=session, principal=principal, status=status,
                slot=slot, res=res, org=org, site=places.site(slot.organization_id, slot.resource_id),
                appts=appts, patients=patients, found=found, q=q, record_id=record_id,
                exam_code=exam_code or (next(iter(types)) if types else ""), channel=channel, types=types,
                channels=CHANNELS, reasons=CANCEL_REASONS, error=error, search_error=search_error,
                started=_started(slot, now), free=repo.free_places(slot, None, now), hhmm=local_hhmm, ldate=local_date,
                can_book=_may(principal, "Appointment", "c"), now=now)


@router.get("/slots/{slot_id}")
@html_errors
def slot_page(request: Request, slot_id: str, session: DB, principal: CurrentPrincipal, q: str = "",
              record_id: str = "") -> Response:
    """A slot of the board: who is booked (with check-in, no-show, cancel) and, while a place is free and
    the slot has not started, booking a patient found by name, resident ID or phone."""
    require_scope(principal, "Appointment", "s")
    return _slot_page(request, session, principal, slot_id, q=q, record_id=record_id)


@router.post("/slots/{slot_id}/book")
@html_errors
def slot_book(request: Request, slot_id: str, session: DB, principal: CurrentPrincipal,
              record_id: Annotated[str, Form()] = "", exam_code: Annotated[str, Form()] = "",
              channel: Annotated[str, Form()] = "clinic", q: Annotated[str, Form()] = "") -> Response:
    """Book the chosen patient into this slot. A missing choice or a refused booking (real-name, full,
    started) comes back on the same page, with what was typed kept."""
    check_origin(request)
    require_scope(principal, "Appointment", "c")
    _slot_or_404(session, slot_id)
    keep = {"q": q, "record_id": record_id, "exam_code": exam_code, "channel": channel}
    if not record_id:
        return _slot_page(request, session, principal, slot_id, **keep, status=422,
                          error=pick("请先查找并选择患者 / find and choose a patient first", locale_of(request)))
    try:
        a = service.book(session, principal, slot_id=slot_id, patient_record_id=record_id, exam_code=exam_code,
                         channel=channel)
    except ApiError as e:
        session.rollback()
        if e.status in (401, 403):
            raise
        return _slot_page(request, session, principal, slot_id, **keep, status=e.status, error=_message(request, e))
    session.commit()
    return RedirectResponse(f"/ui/scheduling/patients/{record_id}/slip?a={quote(a.id)}", status_code=303)


# --- the patient's booking screen ----------------------------------------------------------------------

def _patient_page(request: Request, session: Session, principal: Principal, record_id: str, *,
                  exams: str | None = None, error: str | None = None, channel: str = "clinic",
                  status: int = 200) -> Response:
    rec = service._patient(session, principal, record_id)
    appts = repo.appointments(session, patient_record_id=record_id)
    codes = [c.strip() for c in (exams or "").split(",") if c.strip()] or None
    proposal = types = code_of = None
    proposal_error = None
    if codes or repo.pending_orders(session, rec.person_id):
        try:
            proposal, types, _order_of, code_of = service.propose_itinerary(session, principal, record_id,
                                                                             exam_codes=codes)
        except BadRequest as e:  # an unknown exam typed in: say so beside the box, keep what was typed
            proposal_error, status = _message(request, e), max(status, 400)
    all_types = repo.exam_types(session)
    places = Places(session)
    now = utcnow()
    return page(request, "scheduling/patient.html", session=session, principal=principal, status=status, rec=rec,
                appts=appts, proposal=proposal, types=types or all_types, all_types=all_types, code_of=code_of or {},
                exams=exams or "", places=places, error=error, proposal_error=proposal_error, channel=channel,
                channels=CHANNELS, reasons=CANCEL_REASONS, active=ACTIVE, hhmm=local_hhmm, ldate=local_date,
                now=now, back=f"/ui/scheduling/patients/{record_id}")


@router.get("/patients/{record_id}")
@html_errors
def patient_screen(request: Request, record_id: str, session: DB, principal: CurrentPrincipal,
                   exams: str | None = None) -> Response:
    """The booking screen: the patient's appointments with their actions, and the suggested itinerary for
    their pending orders (or the exams typed in), with the site of each exam and "why this order"."""
    require_scope(principal, "Appointment", "s")
    return _patient_page(request, session, principal, record_id, exams=exams)


@router.post("/patients/{record_id}/book")
@html_errors
def book(request: Request, record_id: str, session: DB, principal: CurrentPrincipal,
         item: Annotated[list[str] | None, Form()] = None, channel: Annotated[str, Form()] = "clinic",
         exams: Annotated[str, Form()] = "") -> Response:
    """Book the suggested itinerary (all or nothing). Each ``item`` is ``slot_id|exam_code|order_id``.
    A refusal (a place gone meanwhile, a broken rule) comes back on the booking screen with its reason."""
    check_origin(request)
    require_scope(principal, "Appointment", "c")
    items = []
    for raw in item or []:
        slot_id, code, order = (raw.split("|") + ["", ""])[:3]
        items.append((slot_id, code, order or None))
    try:
        booked = service.book_itinerary(session, principal, record_id, items, channel)
    except ApiError as e:
        session.rollback()
        if e.status in (401, 403) or (isinstance(e, NotFound) and session.get(PatientRecord, record_id) is None):
            raise
        return _patient_page(request, session, principal, record_id, exams=exams, channel=channel,
                             status=e.status, error=_message(request, e))
    session.commit()
    return RedirectResponse(f"/ui/scheduling/patients/{record_id}/slip?" + "&".join(f"a={quote(a.id)}" for a in booked),
                            status_code=303)


# --- appointment actions ---------------------------------------------------------------------------------

def _act(request: Request, session: Session, principal: Principal, appointment_id: str, back: str | None,
         action) -> Response:
    """Run one action; on a refusal (e.g. no-show before the start) show the patient's screen with why."""
    check_origin(request)
    require_scope(principal, "Appointment", "u")
    appt = session.get(Appointment, appointment_id)
    if appt is None:
        raise NotFound("预约不存在 / appointment not found")
    default = f"/ui/scheduling/patients/{appt.patient_record_id}"
    record_id = appt.patient_record_id
    try:
        action()
    except ApiError as e:
        session.rollback()
        if e.status in (401, 403, 404):
            raise
        return _patient_page(request, session, principal, record_id, status=e.status, error=_message(request, e))
    session.commit()
    return RedirectResponse(_back(back, default), status_code=303)


@router.post("/appointments/{appointment_id}/cancel")
@html_errors
def cancel(request: Request, appointment_id: str, session: DB, principal: CurrentPrincipal,
           reason: Annotated[str, Form()] = "", back: Annotated[str, Form()] = "") -> Response:
    """Cancel with a reason (one of the listed ones); the place goes back to the slot."""
    if reason not in CANCEL_REASONS:
        check_origin(request)
        require_scope(principal, "Appointment", "u")
        appt = session.get(Appointment, appointment_id)
        if appt is None:
            raise NotFound("预约不存在 / appointment not found")
        return _patient_page(request, session, principal, appt.patient_record_id, status=422,
                             error=pick("请选择取消原因 / choose a reason for the cancellation", locale_of(request)))
    return _act(request, session, principal, appointment_id, back,
                lambda: service.cancel(session, principal, appointment_id, reason))


@router.post("/appointments/{appointment_id}/check-in")
@html_errors
def check_in(request: Request, appointment_id: str, session: DB, principal: CurrentPrincipal,
             back: Annotated[str, Form()] = "") -> Response:
    return _act(request, session, principal, appointment_id, back,
                lambda: service.check_in(session, principal, appointment_id))


@router.post("/appointments/{appointment_id}/no-show")
@html_errors
def no_show(request: Request, appointment_id: str, session: DB, principal: CurrentPrincipal,
            back: Annotated[str, Form()] = "") -> Response:
    return _act(request, session, principal, appointment_id, back,
                lambda: service.no_show(session, principal, appointment_id))


def _reschedule_options(session: Session, appt: Appointment) -> tuple[list[tuple[Slot, Resource, int]], set[str]]:
    """Free slots for the same exam in the booking horizon, and those that would break an itinerary rule
    against the patient's other booked exams (offered greyed, refused on submit)."""
    cfg = service.settings(session)
    now = utcnow()
    cands = service.find_candidates(session, appt.exam_code, now,
                                    now + dt.timedelta(days=int(cfg.get("horizon_days", 14))),  # type: ignore[arg-type]
                                    purpose=appt.purpose, now=now)
    cands = [c for c in cands if c[0].id != appt.slot_id][:200]
    return cands, _breaking(session, appt, [c[0] for c in cands])


def _breaking(session: Session, appt: Appointment, slots: list[Slot]) -> set[str]:
    types = repo.exam_types(session)
    exam = types.get(appt.exam_code)
    tags = frozenset((exam.tags if exam else None) or [])
    params = service.rule_params(session)
    others = [Placed(f"booked:{a.id}", frozenset(types[a.exam_code].tags or []), a.start, a.end)
              for a in repo.appointments_of_person(session, appt.person_id)
              if a.id != appt.id and a.exam_code in types]
    return {s.id for s in slots if violations([Placed(appt.exam_code, tags, s.start, s.end)], params, others)}


def _reschedule_page(request: Request, session: Session, principal: Principal, appointment_id: str, *,
                     error: str | None = None, chosen: str = "", status: int = 200) -> Response:
    appt = service.read_appointment(session, principal, appointment_id)
    rec = session.get(PatientRecord, appt.patient_record_id)
    cands, breaking = _reschedule_options(session, appt)
    exam = repo.exam_types(session, [appt.exam_code]).get(appt.exam_code)
    return page(request, "scheduling/reschedule.html", session=session, principal=principal, status=status,
                a=appt, rec=rec, exam=exam, cands=cands, breaking=breaking, places=Places(session), error=error,
                chosen=chosen, hhmm=local_hhmm, ldate=local_date)


@router.get("/appointments/{appointment_id}/reschedule")
@html_errors
def reschedule_form(request: Request, appointment_id: str, session: DB, principal: CurrentPrincipal) -> Response:
    """Choose another slot for the same exam; slots that would break the itinerary rules against the
    patient's other exams are shown greyed with no choice."""
    require_scope(principal, "Appointment", "u")
    return _reschedule_page(request, session, principal, appointment_id)


@router.post("/appointments/{appointment_id}/reschedule")
@html_errors
def reschedule(request: Request, appointment_id: str, session: DB, principal: CurrentPrincipal,
               slot_id: Annotated[str, Form()] = "") -> Response:
    check_origin(request)
    require_scope(principal, "Appointment", "u")
    appt = service._appointment(session, principal, appointment_id, lock=False)
    loc = locale_of(request)
    if not slot_id:
        return _reschedule_page(request, session, principal, appointment_id, status=422,
                                error=pick("请选择新的时间 / choose the new time", loc))
    slot = session.get(Slot, slot_id)
    if slot is None:
        return _reschedule_page(request, session, principal, appointment_id, status=422,
                                error=pick("号源不存在 / slot not found", loc))
    if _breaking(session, appt, [slot]):
        return _reschedule_page(request, session, principal, appointment_id, status=422, chosen=slot_id,
                                error=pick("该时间违反检查顺序规则 / this time breaks an itinerary rule", loc))
    try:
        new = service.reschedule(session, principal, appointment_id, slot_id)
    except (Conflict, Unprocessable, BadRequest) as e:
        session.rollback()
        return _reschedule_page(request, session, principal, appointment_id, status=e.status, chosen=slot_id,
                                error=_message(request, e))
    session.commit()
    return RedirectResponse(f"/ui/scheduling/patients/{new.patient_record_id}/slip?a={quote(new.id)}",
                            status_code=303)


# --- the slip --------------------------------------------------------------------------------------------

def _slip(request: Request, session: Session, principal: Principal, rec: PatientRecord,
          appts: list[Appointment]) -> Response:
    types = repo.exam_types(session, list({a.exam_code for a in appts}))
    places = Places(session)
    items = [{"a": a, "exam": types.get(a.exam_code), "site": places.site(a.organization_id, a.resource_id),
              "room": places.room(a.resource_id), "qr": _qr_svg(a.id)} for a in appts]
    today = local_date(utcnow())
    return page(request, "scheduling/slip.html", session=session, principal=principal, rec=rec, items=items,
                age=_age(rec, today), today=today, hhmm=local_hhmm, ldate=local_date)


@router.get("/patients/{record_id}/slip")
@html_errors
def patient_slip(request: Request, record_id: str, session: DB, principal: CurrentPrincipal) -> Response:
    """The slip for the given appointments (``?a=id&a=id``), or every upcoming active one of the patient."""
    require_scope(principal, "Appointment", "r")
    rec = service._patient(session, principal, record_id)
    wanted = request.query_params.getlist("a")
    if wanted:
        appts = [service.read_appointment(session, principal, i) for i in wanted[:20]]
        if any(x.patient_record_id != record_id for x in appts):
            raise NotFound("预约不存在 / appointment not found")
    else:
        now = utcnow()
        appts = [x for x in repo.appointments(session, patient_record_id=record_id)
                 if x.status in ACTIVE and x.end > now]
    return _slip(request, session, principal, rec, appts)


@router.get("/appointments/{appointment_id}/slip")
@html_errors
def slip(request: Request, appointment_id: str, session: DB, principal: CurrentPrincipal) -> Response:
    """The printable slip of one appointment."""
    require_scope(principal, "Appointment", "r")
    appt = service.read_appointment(session, principal, appointment_id)
    rec = session.get(PatientRecord, appt.patient_record_id)
    if rec is None:
        raise NotFound("患者记录不存在 / patient record not found")
    return _slip(request, session, principal, rec, [appt])


# --- the section on the staff site's patient page ---------------------------------------------------------

def patient_summary(session: Session, principal: Principal, record: PatientRecord) -> dict[str, Any] | None:
    """Pending exam orders and upcoming appointments of the person, for the patient page's "检查预约"
    section (None when the user may not book). The page itself has already checked and audited access."""
    if not _may(principal, "Appointment", "s"):
        return None
    now = utcnow()
    orders = repo.pending_orders(session, record.person_id)
    appts = [a for a in repo.appointments_of_person(session, record.person_id) if a.end > now]
    types = repo.exam_types(session, list({o.exam_code for o in orders} | {a.exam_code for a in appts}))
    places = Places(session)
    return {"orders": orders, "appts": appts, "types": types, "places": places, "hhmm": local_hhmm,
            "ldate": local_date, "reasons": CANCEL_REASONS, "can_book": _may(principal, "Appointment", "c")}
