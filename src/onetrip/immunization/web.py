"""The vaccination desk (扫码接种) under /ui/immunization: identify the child (certificate QR or Patient id),
today's due doses, the contraindication questions, scan the trace code → every R6.5 check ticked or failed
with its reason, record with site and route, and the 30-minute observation board; the certificate's QR.

Plain forms, no script needed: a keyboard-wedge scanner types the code and Enter, which submits the focused
form — the same as typing by hand. Same services as /api/immunization.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated
from urllib.parse import urlencode

import segno
from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup
from pydantic import ValidationError

from onetrip.api.deps import DB, CurrentPrincipal, require_scope
from onetrip.api.web import check_origin, html_errors, page
from onetrip.immunization import aefi, cold_chain, desk_lookup, programmes, rules, service
from onetrip.immunization.codes import VACCINES
from onetrip.immunization.endpoints import child_out, require_aefi_write
from onetrip.immunization.schemas import AefiIn, CheckIn, ProgrammeIn, RecordIn
from onetrip.kit import clock
from onetrip.kit.errors import BadRequest, Conflict, Forbidden, NotFound
from onetrip.kit.masking import mask_id_number
from onetrip.kit.scopes import allows

router = APIRouter(prefix="/ui/immunization", include_in_schema=False)
SITES = ("left-deltoid", "right-deltoid", "left-thigh", "right-thigh", "left-forearm", "oral")
ROUTES = ("IM", "SC", "ID", "PO")


def _answers(form_answers: dict[str, str]) -> dict[str, bool]:
    return {k: v == "yes" for k, v in form_answers.items() if v in ("yes", "no")}


async def _form_answers(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: str(form.get(f"q_{k}")) for k, _, _ in rules.CONTRAINDICATIONS if form.get(f"q_{k}")}


def _desk(request: Request, session, principal, q: str, **extra) -> Response:
    desk = service.desk_child(session, principal, q) if q else None
    return page(request, "immunization/desk.html", session=session, principal=principal, q=q,
                child=child_out(desk) if desk else None, questions=rules.CONTRAINDICATIONS, vaccines=VACCINES,
                sites=SITES, routes=ROUTES, **{"verdict": None, "answers": {}, "trace_code": "", "error": None,
                                                "lookup_error": None, "q_typed": "",
                                                "id_masked": mask_id_number(desk.record.id_number) if desk else "",
                                                **extra})


@router.get("/desk")
@html_errors
def desk(request: Request, session: DB, principal: CurrentPrincipal, q: str = "") -> Response:
    """Step 1: scan the certificate, type the Patient id or the child's resident ID number; step 2: questions
    and the vaccine's trace code. A resident ID is looked up in the person index (audited) and the page moves
    on to the Patient id, so the number is not kept in the address; a wrong check digit or nobody found is said
    inline, keeping what was typed."""
    require_scope(principal, "Immunization", "c")
    q = q.strip()[:200]
    try:
        if q and desk_lookup.looks_like_resident_id(service.patient_ref(q)):
            record_id = desk_lookup.record_by_resident_id(session, principal, service.patient_ref(q))
            return RedirectResponse(f"/ui/immunization/desk?{urlencode({'q': record_id})}", status_code=303)
        return _desk(request, session, principal, q)
    except (BadRequest, NotFound) as e:
        if e.commit_session:
            session.commit()  # the audited search stays
        else:
            session.rollback()
        return _desk(request, session, principal, "", q_typed=q, lookup_error=e.message)


@router.post("/desk/check")
@html_errors
async def desk_check(request: Request, session: DB, principal: CurrentPrincipal,
                     patient_id: Annotated[str, Form(max_length=200)],
                     trace_code: Annotated[str, Form(max_length=64)] = "") -> Response:
    """Step 3: the checks of R6.5 for the scanned code, each ticked or failed with the reason."""
    check_origin(request)
    require_scope(principal, "Immunization", "c")
    raw = await _form_answers(request)
    data = CheckIn(patient_id=patient_id, trace_code=trace_code, answers=_answers(raw))
    verdict, _, found = service.check(session, principal, data)
    return _desk(request, session, principal, patient_id, verdict=verdict, answers=raw,
                 trace_code=rules.normalise_code(trace_code),
                 product=found[2] if found else None, lot=found[1] if found else None)


@router.post("/desk/record")
@html_errors
async def desk_record(request: Request, session: DB, principal: CurrentPrincipal,
                      patient_id: Annotated[str, Form(max_length=200)],
                      trace_code: Annotated[str, Form(max_length=64)],
                      site: Annotated[str, Form(max_length=32)], route: Annotated[str, Form(max_length=4)]) -> Response:
    """Step 4: record (the checks again, one dose taken from the package), then the observation board."""
    check_origin(request)
    require_scope(principal, "Immunization", "c")
    raw = await _form_answers(request)
    if route not in ROUTES or site not in SITES:
        raise BadRequest("请选择接种部位和途径 / choose the site and the route")
    try:
        v = service.record_vaccination(session, principal, RecordIn(
            patient_id=patient_id, trace_code=trace_code, answers=_answers(raw), site=site, route=route))
    except Conflict as e:
        session.rollback()
        return _desk(request, session, principal, patient_id, error=str(e), answers=raw, trace_code=trace_code)
    return RedirectResponse(f"/ui/immunization/observation?new={v.id}", status_code=303)


@router.get("/observation")
@html_errors
def observation(request: Request, session: DB, principal: CurrentPrincipal, new: str = "") -> Response:
    """The 30-minute observation board (R6.5): who is still under observation and for how long."""
    require_scope(principal, "Immunization", "r")
    rows = service.observation_board(session, principal)
    return page(request, "immunization/observation.html", session=session, principal=principal, rows=rows,
                new=new[:32], vaccines=VACCINES)


@router.get("/certificate/{record_id}")
@html_errors
def certificate(request: Request, session: DB, principal: CurrentPrincipal, record_id: str) -> Response:
    """The QR for the child's vaccination certificate (scanned at the desk), with the doses recorded."""
    require_scope(principal, "Immunization", "r")
    desk = service.desk_child(session, principal, record_id)
    text = service.certificate_qr_text(desk.record.id)
    qr = Markup(segno.make(text, error="m").svg_inline(scale=5, title=text))  # noqa: S704 — segno's own SVG
    doses = service.history(session, desk.record.person_id)
    return page(request, "immunization/certificate.html", session=session, principal=principal,
                child=child_out(desk), qr=qr, qr_text=text, doses=doses, vaccines=VACCINES)


# --- AEFI reports (issue 20 point 5) ---
# The worklist (overdue first, time left or past), the report form (from a dose on the observation board, or a
# patient and vaccine; errors shown inline keeping what was typed) and a report's page (report it, close it).

def _form_time(text: str, field: str, zh: str, en: str) -> dt.datetime:
    """A datetime-local field (China Standard Time, no zone)."""
    try:
        return dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadRequest(f"请填写{zh}（年-月-日 时:分）/ give the {en} (date and time)", expression=[field]) from None


def _aefi_form(request: Request, session, principal, form: dict, *, error: str | None = None,
               field: str | None = None, dose=None, status: int = 200) -> Response:
    return page(request, "immunization/aefi_form.html", session=session, principal=principal, form=form,
                error=error, field=field, dose=dose, vaccines=VACCINES, symptoms=rules.AEFI_SYMPTOMS,
                severities=rules.AEFI_SEVERITIES, status=status)


def _aefi_page(request: Request, session, principal, report_id: str, **extra) -> Response:
    report = aefi.get(session, principal, report_id)  # audited; another clinic's through the access policy
    return page(request, "immunization/aefi_detail.html", session=session, principal=principal,
                row=aefi.row(session, report), vaccines=VACCINES, symptoms=dict((k, (zh, en)) for k, zh, en in
                                                                               rules.AEFI_SYMPTOMS),
                own=principal.is_operator or report.organization_id == principal.organization_id,
                **{"error": None, "note": "", **extra})


@router.get("/aefi")
@html_errors
def aefi_list(request: Request, session: DB, principal: CurrentPrincipal, status: str = "") -> Response:
    """The clinic's AEFI worklist: overdue drafts first (marked), the time left or past the deadline."""
    require_scope(principal, "AdverseEvent", "r")
    status = status if status in aefi.WORKLIST_FILTERS else ""
    return page(request, "immunization/aefi_list.html", session=session, principal=principal,
                rows=aefi.worklist(session, principal, status or None), current=status,
                filters=aefi.WORKLIST_FILTERS, vaccines=VACCINES)


@router.get("/aefi/new")
@html_errors
def aefi_new(request: Request, session: DB, principal: CurrentPrincipal, vaccination: str = "",
             patient: str = "") -> Response:
    """The report form; from a dose (the observation board's link) the person and vaccine come from it."""
    require_aefi_write(principal)
    now = dt.datetime.now(clock.LOCAL_TZ).strftime("%Y-%m-%dT%H:%M")
    form = {"vaccination_id": vaccination.strip()[:32], "patient_id": patient.strip()[:32], "vaccine_code": "",
            "onset_at": "", "discovered_at": now, "severity": "general", "cluster": False, "symptoms": [],
            "description": ""}
    try:
        dose = service.get_vaccination(session, principal, form["vaccination_id"]) if form["vaccination_id"] else None
    except NotFound as e:
        return _aefi_form(request, session, principal, form, error=e.message, field="vaccination_id", status=404)
    if dose is not None:
        form["vaccine_code"] = dose.vaccine_code
    return _aefi_form(request, session, principal, form, dose=dose)


@router.post("/aefi/new")
@html_errors
def aefi_create(request: Request, session: DB, principal: CurrentPrincipal,
                onset_at: Annotated[str, Form(max_length=32)] = "",
                discovered_at: Annotated[str, Form(max_length=32)] = "",
                vaccination_id: Annotated[str, Form(max_length=32)] = "",
                patient_id: Annotated[str, Form(max_length=32)] = "",
                vaccine_code: Annotated[str, Form(max_length=16)] = "",
                severity: Annotated[str, Form(max_length=16)] = "general",
                cluster: Annotated[str, Form(max_length=8)] = "",
                symptoms: Annotated[list[str] | None, Form()] = None,
                description: Annotated[str, Form(max_length=2000)] = "") -> Response:
    """Store the draft and open its page; an error is shown on the form with everything typed kept."""
    check_origin(request)
    require_aefi_write(principal)
    form = {"vaccination_id": vaccination_id.strip(), "patient_id": patient_id.strip(), "vaccine_code": vaccine_code,
            "onset_at": onset_at, "discovered_at": discovered_at, "severity": severity, "cluster": cluster == "yes",
            "symptoms": [x for x in symptoms or [] if x in {k for k, _, _ in rules.AEFI_SYMPTOMS}],
            "description": description}
    try:
        if severity not in rules.AEFI_SEVERITIES or (vaccine_code and vaccine_code not in VACCINES):
            raise BadRequest("请选择严重程度和疫苗 / choose the severity and the vaccine", expression=["severity"])
        data = AefiIn(vaccination_id=form["vaccination_id"] or None, patient_id=form["patient_id"] or None,
                      vaccine_code=vaccine_code or None,
                      onset_at=_form_time(onset_at, "onset_at", "发生时间", "onset time"),
                      discovered_at=_form_time(discovered_at, "discovered_at", "发现时间", "discovery time"),
                      severity=severity, cluster=form["cluster"], symptoms=form["symptoms"],
                      description=description or None)
        report = aefi.create(session, principal, data)
    except (BadRequest, NotFound, Conflict) as e:
        session.rollback()
        return _aefi_form(request, session, principal, form, error=e.message,
                          field=(e.expression or [None])[0], status=e.status)
    return RedirectResponse(f"/ui/immunization/aefi/{report.id}", status_code=303)


@router.get("/aefi/{report_id}")
@html_errors
def aefi_detail(request: Request, session: DB, principal: CurrentPrincipal, report_id: str) -> Response:
    """One report: the facts, the deadline and time left; report it, or close it with the outcome."""
    require_scope(principal, "AdverseEvent", "r")
    return _aefi_page(request, session, principal, report_id[:32])


@router.post("/aefi/{report_id}/report")
@html_errors
def aefi_submit(request: Request, session: DB, principal: CurrentPrincipal, report_id: str) -> Response:
    check_origin(request)
    require_aefi_write(principal)
    aefi.submit(session, principal, report_id[:32])
    return RedirectResponse(f"/ui/immunization/aefi/{report_id[:32]}", status_code=303)


@router.post("/aefi/{report_id}/close")
@html_errors
def aefi_close(request: Request, session: DB, principal: CurrentPrincipal, report_id: str,
               note: Annotated[str, Form(max_length=2000)] = "") -> Response:
    check_origin(request)
    require_aefi_write(principal)
    try:
        aefi.close(session, principal, report_id[:32], note)
    except (BadRequest, Conflict) as e:
        session.rollback()
        return _aefi_page(request, session, principal, report_id[:32], error=e.message, note=note)
    return RedirectResponse(f"/ui/immunization/aefi/{report_id[:32]}", status_code=303)


# --- programmes and coverage (issue 20 point 6) ---

PROGRAMME_FIELDS = ("code", "name_zh", "name_en", "kind", "vaccine_code", "min_age_years", "max_age_years",
                    "reference_date", "sex", "township", "start_date", "end_date")


def _programmes_page(request: Request, session, principal, form: dict, status: int = 200, **extra) -> Response:
    return page(request, "immunization/programmes.html", session=session, principal=principal, status=status,
                programmes=programmes.listing(session, principal), form=form, vaccines=VACCINES,
                can_write=allows(principal.scopes, "Immunization", "c"), **{"error": None, "field": None, **extra})


@router.get("/programmes")
@html_errors
def programme_list(request: Request, session: DB, principal: CurrentPrincipal) -> Response:
    """The institution's programmes and the form for a new one (campaign or cohort)."""
    require_scope(principal, "Immunization", "r")
    return _programmes_page(request, session, principal, {"kind": "campaign"})


def _programme_in(form: dict[str, str]) -> ProgrammeIn:
    """The form as the API's body; a value that does not parse is a 400 naming the field."""
    def day(key: str, required: bool) -> dt.date | None:
        if not form.get(key):
            if required:
                raise BadRequest(f"请填写 {key} / {key} is required", expression=[key])
            return None
        try:
            return dt.date.fromisoformat(form[key])
        except ValueError:
            raise BadRequest(f"{key} 须为日期 YYYY-MM-DD / {key} must be a date YYYY-MM-DD", expression=[key]) from None

    def number(key: str) -> int | None:
        if not form.get(key):
            return None
        if not form[key].isdigit() or int(form[key]) > 130:
            raise BadRequest(f"{key} 须为 0–130 的整数 / {key} must be a whole number 0–130", expression=[key])
        return int(form[key])

    for key in ("code", "name_zh", "name_en"):
        if not form.get(key):
            raise BadRequest(f"请填写 {key} / {key} is required", expression=[key])
    if form.get("kind") not in ("campaign", "cohort") or (form.get("vaccine_code") and
                                                          form["vaccine_code"] not in VACCINES):
        raise BadRequest("请选择项目类型和疫苗 / choose the kind and the vaccine", expression=["kind"])
    if form.get("sex") not in ("", None, "female", "male"):
        raise BadRequest("性别无效 / sex must be female or male", expression=["sex"])
    if not all(c.isalnum() or c in "_.-" for c in form["code"]):
        raise BadRequest("项目代码只能含字母、数字和 _.- / the code may hold letters, digits and _.- only",
                         expression=["code"])
    values = {"min_age_years": number("min_age_years"), "max_age_years": number("max_age_years"),
              "reference_date": day("reference_date", False), "start_date": day("start_date", True),
              "end_date": day("end_date", True)}
    try:
        return ProgrammeIn(code=form["code"], name_zh=form["name_zh"], name_en=form["name_en"], kind=form["kind"],
                           vaccine_code=form.get("vaccine_code") or None, sex=form.get("sex") or None,
                           township=form.get("township") or None, **values)
    except ValidationError as e:
        key = str(e.errors()[0]["loc"][0]) if e.errors() and e.errors()[0]["loc"] else "code"
        raise BadRequest(f"{key} 无效（过长或格式不符）/ {key} is not valid (too long or malformed)",
                         expression=[key]) from None


@router.post("/programmes")
@html_errors
async def programme_create(request: Request, session: DB, principal: CurrentPrincipal) -> Response:
    """Create the programme and open its page; an error is shown on the form with everything typed kept."""
    check_origin(request)
    require_scope(principal, "Immunization", "c")
    raw = await request.form()
    form = {k: str(raw.get(k) or "").strip()[:128] for k in PROGRAMME_FIELDS}
    try:
        p = programmes.create(session, principal, _programme_in(form))
    except (BadRequest, NotFound, Conflict) as e:
        session.rollback()
        return _programmes_page(request, session, principal, form, status=e.status, error=e.message,
                                field=(e.expression or [None])[0])
    return RedirectResponse(f"/ui/immunization/programmes/{p.id}", status_code=303)


@router.get("/programmes/{programme_id}")
@html_errors
def programme_detail(request: Request, session: DB, principal: CurrentPrincipal, programme_id: str,
                     sent: int | None = None, already: int | None = None, no_contact: int | None = None) -> Response:
    """Coverage (eligible, invited, vaccinated, percent) and the eligible list (masked) with each invitation and,
    for HPV2, the forecaster's next dose."""
    require_scope(principal, "Immunization", "r")
    p, rows = programmes.eligible_list(session, principal, programme_id[:32])
    result = {"sent": sent, "already": already, "no_contact": no_contact} if sent is not None else None
    return page(request, "immunization/programme.html", session=session, principal=principal, p=p,
                coverage=programmes.coverage(session, p), rows=[r.out() for r in rows], vaccines=VACCINES,
                result=result, can_write=allows(principal.scopes, "Immunization", "c"))


@router.post("/programmes/{programme_id}/invite")
@html_errors
def programme_invite(request: Request, session: DB, principal: CurrentPrincipal, programme_id: str) -> Response:
    """Invite the eligible residents not invited yet (nothing is sent twice), then back to the programme."""
    check_origin(request)
    require_scope(principal, "Immunization", "c")
    out = programmes.invite(session, principal, programme_id[:32])
    query = urlencode({k: out[k] for k in ("sent", "already", "no_contact")})
    return RedirectResponse(f"/ui/immunization/programmes/{programme_id[:32]}?{query}", status_code=303)


# --- cold chain pages and the manual-record check; desk lookup by ID; alternatives (issue 20 point 4) ---

def _cold_chain(request: Request, session, principal, status: int = 200, **extra) -> Response:
    """The cold-chain page; ``extra`` carries a form's errors and what was typed."""
    now = clock.utcnow()
    return page(request, "immunization/cold_chain.html", session=session, principal=principal, status=status,
                fridges=cold_chain.overview(session, principal, now), now_hhmm=clock.local_hhmm(now),
                may_record=allows(principal.scopes, "Immunization", "c"), may_add_fridge=principal.is_admin,
                **{"reading_error": None, "reading_form": {}, "reading_field": "", "release_error": None, "release_alarm": "",
                   "release_note": "", "fridge_error": None, "fridge_form": {}, "sensor_key": None, "done": "",
                   **extra})


@router.get("/cold-chain")
@html_errors
def cold_chain_page(request: Request, session: DB, principal: CurrentPrincipal, done: str = "") -> Response:
    """Each fridge of the clinic: range, last reading, today's manual morning / afternoon record (R6.7), open
    alarms with the lots they hold in quarantine; the manual-record form and the release of an alarm."""
    require_scope(principal, "Immunization", "r")
    return _cold_chain(request, session, principal, done=done[:16])


def _local_time_today(hhmm: str) -> dt.datetime:
    """``HH:MM`` today (Asia/Shanghai) as aware UTC; BadRequest naming the field otherwise."""
    try:
        h, m = (int(x) for x in hhmm.strip().split(":"))
        return clock.local_datetime(clock.local_date(clock.utcnow()), f"{dt.time(h, m):%H:%M}")
    except (ValueError, TypeError):
        raise BadRequest("请按 时:分 填写测量时间，如 08:30 / give the time measured as HH:MM, e.g. 08:30",
                         expression=["measured_at"]) from None


@router.post("/cold-chain/readings")
@html_errors
def cold_chain_reading(request: Request, session: DB, principal: CurrentPrincipal,
                       fridge_id: Annotated[str, Form(max_length=32)] = "",
                       celsius: Annotated[str, Form(max_length=16)] = "",
                       measured_at: Annotated[str, Form(max_length=8)] = "") -> Response:
    """The manual morning / afternoon record (R6.7): fridge, temperature, time today. Errors are shown next to
    the form, keeping what was typed; an excursion opens the alarm as a sensor's would."""
    check_origin(request)
    require_scope(principal, "Immunization", "c")
    typed = {"fridge_id": fridge_id, "celsius": celsius, "measured_at": measured_at}
    try:
        if not fridge_id:
            raise BadRequest("请选择冰箱 / choose the fridge", expression=["fridge_id"])
        try:
            value = float(celsius.strip().replace(",", ".").replace("−", "-"))
        except ValueError:
            raise BadRequest("请填写温度（°C），如 4.5 / give the temperature in °C, e.g. 4.5",
                             expression=["celsius"]) from None
        if not -90 <= value <= 60:
            raise BadRequest("温度须在 −90 至 60 °C 之间 / the temperature must be between −90 and 60 °C",
                             expression=["celsius"])
        when = _local_time_today(measured_at) if measured_at.strip() else None
        reading, alarm = service.manual_reading(session, principal, fridge_id, value, when)
    except (BadRequest, NotFound) as e:
        session.rollback()
        return _cold_chain(request, session, principal, status=400, reading_error=e.message, reading_form=typed,
                           reading_field=(e.expression or [""])[0])
    return RedirectResponse(f"/ui/immunization/cold-chain?done={'alarm' if alarm else 'reading'}", status_code=303)


@router.post("/cold-chain/alarms/{alarm_id}/release")
@html_errors
def cold_chain_release(request: Request, session: DB, principal: CurrentPrincipal, alarm_id: str,
                       note: Annotated[str, Form(max_length=2000)] = "") -> Response:
    """Release an alarm's quarantined lots with a note (required: why the vaccines are still usable)."""
    check_origin(request)
    require_scope(principal, "Immunization", "c")
    try:
        service.release_alarm(session, principal, alarm_id, note)
    except (BadRequest, Conflict) as e:
        session.rollback()
        return _cold_chain(request, session, principal, status=400, release_error=e.message,
                           release_alarm=alarm_id, release_note=note)
    return RedirectResponse("/ui/immunization/cold-chain?done=released", status_code=303)


@router.post("/cold-chain/fridges")
@html_errors
def cold_chain_add_fridge(request: Request, session: DB, principal: CurrentPrincipal,
                          name: Annotated[str, Form(max_length=64)] = "",
                          frozen: Annotated[str, Form(max_length=8)] = "") -> Response:
    """Add a fridge (administrator): the sensor's key is shown once on the page that answers."""
    check_origin(request)
    require_scope(principal, "Immunization", "c")
    if not principal.is_admin:
        raise Forbidden("只有管理员可以添加冰箱 / only an administrator may add a fridge")
    try:
        if not name.strip():
            raise BadRequest("请填写冰箱名称 / give the fridge's name", expression=["name"])
        fridge, key = service.create_fridge(session, principal, None, name.strip(), frozen == "yes")
    except (BadRequest, Conflict, Forbidden, NotFound) as e:
        session.rollback()
        return _cold_chain(request, session, principal, status=400, fridge_error=e.message,
                           fridge_form={"name": name, "frozen": frozen})
    return _cold_chain(request, session, principal, status=201, sensor_key=(fridge.name, key))


@router.get("/nav")
def cold_chain_nav(request: Request, session: DB, principal: CurrentPrincipal) -> Response:
    """The main nav's cold-chain link (HTMX) for clinicians and nurses: shown when their clinic has a fridge."""
    has = (allows(principal.scopes, "Immunization", "r")
           and cold_chain.clinic_has_fridge(session, principal.organization_id))
    return page(request, "immunization/cold_chain_nav.html", session=session, principal=principal, has_fridge=has)


@router.get("/cold-chain/fridges/{fridge_id}")
@html_errors
def cold_chain_fridge(request: Request, session: DB, principal: CurrentPrincipal, fridge_id: str) -> Response:
    """One fridge: the readings of the last days (table and an inline SVG line) and each day's manual check."""
    require_scope(principal, "Immunization", "r")
    h = cold_chain.fridge_history(session, principal, fridge_id)
    return page(request, "immunization/cold_chain_fridge.html", session=session, principal=principal, h=h,
                spark=cold_chain.sparkline(h.readings, h.range, h.fridge.frozen))
