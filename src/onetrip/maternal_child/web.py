"""Pages under /ui/maternal-child (server-rendered; same services as /api/maternal-child)."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

from fastapi import (
    APIRouter,
    Request,
)
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from onetrip.api.deps import (
    DB,
    CurrentPrincipal,
    require_scope,
)
from onetrip.api.web import check_origin, html_errors, page
from onetrip.kit import clock
from onetrip.kit.errors import BadRequest, Conflict, NotFound
from onetrip.kit.scopes import allows
from onetrip.maternal_child import (
    child_health,
    growth,
    pregnancy,
    screening,
)
from onetrip.maternal_child.schemas import (
    CaseManagerIn,
    ChildCheckIn,
    DeliveryIn,
    EscalationIn,
    PregnancyBookingIn,
    ScreeningCampaignIn,
    ScreeningFollowupIn,
    ScreeningResultIn,
    VisitIn,
)

router = APIRouter(prefix="/ui/maternal-child", include_in_schema=False)


# --- pregnancy care: booking, visit plan, five-colour risk, case management (issue 21 point 1) ---

PREG_UI = "/ui/maternal-child/pregnancies"
_FLAGS = ("scarred_uterus", "gdm", "twins", "serious_complication", "life_threatening", "hepatitis", "syphilis",
          "hiv", "tb")
_FINDINGS = ("weight_kg", "height_cm", "bp_systolic", "bp_diastolic", "fundal_height_cm", "fetal_heart_rate", "note")
BOOKING_FIELDS = ("patient_id", "lmp", "booked_on", "scan_date", "scan_weeks", "scan_days", "bmi", *_FINDINGS,
                  *_FLAGS)
VISIT_FIELDS = ("kind", "visit_date", "bmi", *_FINDINGS, *_FLAGS)


async def _form(request: Request, fields: tuple[str, ...]) -> dict[str, str]:
    raw = await request.form()
    return {k: str(raw.get(k) or "").strip()[:1000] for k in fields if raw.get(k) not in (None, "")}


def _model(cls, data: dict):
    """The form as the API's body; what does not validate is a 400 naming the field."""
    try:
        return cls.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0] if e.errors() else {"loc": ("form",)}
        key = ".".join(str(x) for x in err["loc"] if x not in ("body",))
        raise BadRequest(f"{key} 无效 / {key} is not valid", expression=[key]) from None


def _facts_and_findings(form: dict[str, str]) -> dict:
    facts = {k: True for k in _FLAGS if form.get(k)}
    if form.get("bmi"):
        facts["bmi"] = form["bmi"]
    return {"facts": facts, "findings": {k: form[k] for k in _FINDINGS if form.get(k)}}


def _list_page(request: Request, session, principal, which: str, form: dict, status: int = 200, **extra
               ) -> Response:
    rows = [r.out() for r in pregnancy.worklist(session, principal, which)]
    return page(request, "maternal_child/pregnancies.html", session=session, principal=principal, status=status,
                rows=rows, which=which, lists=pregnancy.LISTS, form=form, flags=_FLAGS,
                can_write=allows(principal.scopes, "EpisodeOfCare", "c"), **{"error": None, "field": None, **extra})


@router.get("/pregnancies")
@html_errors
def pregnancy_list(request: Request, session: DB, principal: CurrentPrincipal, list: str = "all") -> Response:  # noqa: A002
    """The worklist (all open, overdue visits, case management) with colour badges, and the booking form."""
    require_scope(principal, "EpisodeOfCare", "r")
    return _list_page(request, session, principal, list[:20], {})


@router.post("/pregnancies")
@html_errors
async def pregnancy_book(request: Request, session: DB, principal: CurrentPrincipal) -> Response:
    """建册 from the form; an error is shown on the form with everything typed kept."""
    check_origin(request)
    require_scope(principal, "EpisodeOfCare", "c")
    form = await _form(request, BOOKING_FIELDS)
    try:
        body = {"patient_id": form.get("patient_id", ""), "lmp": form.get("lmp"),
                "booked_on": form.get("booked_on"), **_facts_and_findings(form)}
        if form.get("scan_date") or form.get("scan_weeks"):
            body["scan"] = {"date": form.get("scan_date"), "weeks": form.get("scan_weeks"),
                            "days": form.get("scan_days") or 0}
        p = pregnancy.book(session, principal, _model(PregnancyBookingIn, body))
    except (BadRequest, NotFound, Conflict) as e:
        session.rollback()
        return _list_page(request, session, principal, "all", form, status=e.status, error=e.message,
                          field=(e.expression or [None])[0])
    return RedirectResponse(f"{PREG_UI}/{p.id}", status_code=303)


def _detail_page(request: Request, session, principal, v: pregnancy.View, status: int = 200, **extra) -> Response:
    return page(request, "maternal_child/pregnancy.html", session=session, principal=principal, status=status,
                v=v, p=v.pregnancy, ga_text=pregnancy.ga_text, flags=_FLAGS,
                can_write=allows(principal.scopes, "EpisodeOfCare", "u"),
                **{"error": None, "field": None, "form": {}, "which": None, **extra})


@router.get("/pregnancies/{pregnancy_id}")
@html_errors
def pregnancy_detail(request: Request, session: DB, principal: CurrentPrincipal, pregnancy_id: str) -> Response:
    """The plan with each window's state, the grade history, the visits and the forms (visit, case manager,
    delivery)."""
    require_scope(principal, "EpisodeOfCare", "r")
    return _detail_page(request, session, principal, pregnancy.view(session, principal, pregnancy_id[:32]))


async def _pregnancy_post(request: Request, session, principal, pregnancy_id: str, which: str,
                          fields: tuple[str, ...], act) -> Response:
    check_origin(request)
    require_scope(principal, "EpisodeOfCare", "u")
    form = await _form(request, fields)
    try:
        act(form)
    except (BadRequest, NotFound, Conflict) as e:
        session.rollback()
        v = pregnancy.view(session, principal, pregnancy_id[:32])
        return _detail_page(request, session, principal, v, status=e.status, error=e.message, which=which,
                            field=(e.expression or [None])[0], form=form)
    return RedirectResponse(f"{PREG_UI}/{pregnancy_id[:32]}", status_code=303)


@router.post("/pregnancies/{pregnancy_id}/visits")
@html_errors
async def pregnancy_visit(request: Request, session: DB, principal: CurrentPrincipal, pregnancy_id: str
                          ) -> Response:
    """Record a visit (antenatal re-grades; postpartum; the 42-day check)."""
    def act(form: dict[str, str]) -> None:
        body = {"kind": form.get("kind", "antenatal"), "visit_date": form.get("visit_date"),
                **_facts_and_findings(form)}
        if not body["facts"]:
            body.pop("facts")
        pregnancy.record_visit(session, principal, pregnancy_id[:32], _model(VisitIn, body))
    return await _pregnancy_post(request, session, principal, pregnancy_id, "visit", VISIT_FIELDS, act)


@router.post("/pregnancies/{pregnancy_id}/case-manager")
@html_errors
async def pregnancy_case_manager(request: Request, session: DB, principal: CurrentPrincipal, pregnancy_id: str
                                 ) -> Response:
    """Take the case (the caller becomes its manager) with a plan."""
    def act(form: dict[str, str]) -> None:
        pregnancy.assign_case_manager(session, principal, pregnancy_id[:32],
                                      _model(CaseManagerIn, {"plan": form.get("plan", "")}))
    return await _pregnancy_post(request, session, principal, pregnancy_id, "case", ("plan",), act)


@router.post("/pregnancies/{pregnancy_id}/escalate")
@html_errors
async def pregnancy_escalate(request: Request, session: DB, principal: CurrentPrincipal, pregnancy_id: str
                             ) -> Response:
    """Escalate an orange or red case to the lead hospital: an upward referral drafted."""
    require_scope(principal, "Task", "c")

    def act(form: dict[str, str]) -> None:
        pregnancy.escalate(session, principal, pregnancy_id[:32], _model(EscalationIn, {"reason": form.get("reason", "")}))
    return await _pregnancy_post(request, session, principal, pregnancy_id, "escalate", ("reason",), act)


@router.post("/pregnancies/{pregnancy_id}/delivery")
@html_errors
async def pregnancy_delivery(request: Request, session: DB, principal: CurrentPrincipal, pregnancy_id: str
                             ) -> Response:
    """Record the delivery and the discharge day."""
    def act(form: dict[str, str]) -> None:
        pregnancy.record_delivery(session, principal, pregnancy_id[:32], _model(DeliveryIn, {
            "delivery_date": form.get("delivery_date"), "discharge_date": form.get("discharge_date"),
            "outcome": form.get("outcome") or "live_birth", "mode": form.get("mode") or None}))
    return await _pregnancy_post(request, session, principal, pregnancy_id, "delivery",
                                 ("delivery_date", "discharge_date", "outcome", "mode"), act)


# --- child health 0-6: check plan, WHO growth z-scores, screening reminders (issue 21 point 2) ---

# The growth charts: the WHO curves −3 … +3 SD from the LMS tables with the child's points, drawn server-side as
# inline SVG (no script), and the same numbers as a table for screen readers.
_CHART_W, _CHART_H, _PAD_L, _PAD_R, _PAD_T, _PAD_B = 640, 360, 52, 16, 14, 40
_SD_CLASS = {-3: "sd3", -2: "sd2", -1: "sd1", 0: "sd0", 1: "sd1", 2: "sd2", 3: "sd3"}
_GROWTH_CHARTS = (  # indicator, title, unit, the check's value
    ("wfa", "Weight-for-age", "kg", lambda c: c.weight_kg),
    ("lhfa", "Length/height-for-age", "cm", lambda c: (c.zscores or {}).get("length_used_cm")),
    ("wflh", "Weight-for-length/height", "kg", lambda c: c.weight_kg),
    ("bmifa", "BMI-for-age", "kg/m²", lambda c: (c.zscores or {}).get("bmi")),
    ("hcfa", "Head circumference-for-age", "cm", lambda c: c.head_cm),
)
_Z_OF = {"wfa": "waz", "lhfa": "lhaz", "wflh": "whz", "bmifa": "bmiz", "hcfa": "hcz"}


def _ticks(low: float, high: float, n: int = 6) -> list[float]:
    raw = (high - low) / n
    step = next(s for s in (0.5, 1, 2, 5, 10, 20, 50) if s >= raw)
    first = int(low // step + 1) * step
    return [round(first + i * step, 1) for i in range(int((high - first) / step) + 1)]


def growth_chart(indicator: str, sex: str, age_days_max: int, checks: list) -> dict | None:
    """One chart: SVG paths of the WHO SD curves, axis ticks and the child's points (check id, x, y, z)."""
    title, unit, value_of = next((t, u, f) for i, t, u, f in _GROWTH_CHARTS if i == indicator)
    older = age_days_max >= growth.SWITCH_DAYS
    if indicator == "wflh":
        table = "wfh" if older else "wfl"
        x_from, x_to, step = (65.0, 120.0, 0.5) if older else (45.0, 110.0, 0.5)
        pts = [(c, (c.zscores or {}).get("length_used_cm"), value_of(c)) for c in checks
               if (c.zscores or {}).get("wh_table") == table]
        x_unit = "cm"
    else:
        table = indicator
        end = growth.DAILY_TABLE_LAST_DAY if indicator == "hcfa" else 2191
        months = 24 if age_days_max < growth.SWITCH_DAYS else (60 if age_days_max <= growth.DAILY_TABLE_LAST_DAY
                                                                else 72)
        x_from, x_to = 0.0, min(months * growth.DAYS_PER_MONTH, end)
        step = 7.0 if months == 24 else 30.0
        pts = [(c, c.age_days / growth.DAYS_PER_MONTH, value_of(c)) for c in checks if c.age_days <= x_to]
        x_unit = "months"
    curve = growth.curves(table, sex, x_from, x_to, step)
    if not curve:
        return None
    if indicator != "wflh":
        curve = [(t / growth.DAYS_PER_MONTH, v) for t, v in curve]
        x_from, x_to = x_from / growth.DAYS_PER_MONTH, x_to / growth.DAYS_PER_MONTH
    pts = [(c, x, y) for c, x, y in pts if x is not None and y is not None and x_from <= x <= x_to]
    y_lo = min([v[0] for _t, v in curve] + [y for _c, _x, y in pts])
    y_hi = max([v[-1] for _t, v in curve] + [y for _c, _x, y in pts])
    y_lo, y_hi = y_lo - (y_hi - y_lo) * 0.03, y_hi + (y_hi - y_lo) * 0.03

    def sx(x: float) -> float:
        return round(_PAD_L + (x - x_from) / (x_to - x_from) * (_CHART_W - _PAD_L - _PAD_R), 1)

    def sy(y: float) -> float:
        return round(_CHART_H - _PAD_B - (y - y_lo) / (y_hi - y_lo) * (_CHART_H - _PAD_T - _PAD_B), 1)

    lines = [{"z": z, "cls": _SD_CLASS[z], "d": "M" + " L".join(f"{sx(t)},{sy(v[i])}" for t, v in curve),
              "label_x": sx(curve[-1][0]) - 4, "label_y": sy(curve[-1][1][i]) - 3}
             for i, z in enumerate((-3, -2, -1, 0, 1, 2, 3))]
    z_name = _Z_OF[indicator]
    points = [{"id": c.id, "cx": sx(x), "cy": sy(y), "x": round(x, 1), "y": round(y, 2), "date": c.check_date,
               "z": (c.zscores or {}).get(z_name), "flags": c.flags or []} for c, x, y in pts]
    return {"key": indicator, "title": title, "unit": unit, "x_unit": x_unit, "table": table, "lines": lines,
            "points": points, "w": _CHART_W, "h": _CHART_H, "pad_l": _PAD_L, "pad_b": _PAD_B, "pad_t": _PAD_T,
            "x_ticks": [{"v": t, "x": sx(t)} for t in _ticks(x_from, x_to)],
            "y_ticks": [{"v": t, "y": sy(t)} for t in _ticks(y_lo, y_hi)],
            "polyline": " ".join(f"{p['cx']},{p['cy']}" for p in points)}


@router.get("/children")
@html_errors
def children_worklist(request: Request, session: DB, principal: CurrentPrincipal) -> Response:
    """Child health 0–6: the institution's overdue checks and Hb / hearing screenings (R11.3), names masked, each
    linking to the child's growth charts."""
    require_scope(principal, "CarePlan", "r")
    rows = child_health.overdue_worklist(session, principal)
    return page(request, "maternal_child/children.html", session=session, principal=principal, rows=rows)


CHECK_FORM_FIELDS = ("check_key", "check_date", "weight_kg", "length_cm", "position", "head_cm", "hb_g_l", "hearing")


def _growth_page(request: Request, session, principal, patient_id: str, *, form: dict | None = None,
                 error: str | None = None, field: str | None = None, new: str = "", status: int = 200) -> Response:
    from onetrip.kit.identifiers import SEX_TO_FHIR
    from onetrip.kit.masking import mask_name

    rec, checks = child_health.list_checks(session, principal, patient_id[:32])
    sex = SEX_TO_FHIR.get(rec.sex, "unknown")
    today = clock.local_date(clock.utcnow())
    age_now = (today - rec.birth_date).days
    charts = []
    if sex in (growth.MALE, growth.FEMALE):
        oldest = max([age_now] + [c.age_days for c in checks])
        charts = [ch for ch in (growth_chart(i, sex, oldest, checks) for i, *_r in _GROWTH_CHARTS) if ch]
    plan = None
    if allows(principal.scopes, "CarePlan", "r"):
        plan = child_health.plan(session, principal, patient_id[:32], today)
    can_write = allows(principal.scopes, "Observation", "c")
    due_key = next((w.key for w, st, _ in (plan.items if plan else []) if w.kind == "check" and st == "due"), "")
    return page(request, "maternal_child/child_growth.html", session=session, principal=principal, status=status,
                record=rec, name=mask_name(rec.name or ""), sex=sex, age_days=age_now, checks=checks, charts=charts,
                plan=plan, can_write=can_write, error=error, field=field, new=new,
                check_keys=[w.key for w, _s, _d in (plan.items if plan else []) if w.kind == "check"],
                form=form or {"check_key": due_key, "check_date": today.isoformat()})


@router.get("/children/{patient_id}/growth")
@html_errors
def child_growth(request: Request, patient_id: str, session: DB, principal: CurrentPrincipal,
                 new: str = "") -> Response:
    """The child's growth charts on the WHO Child Growth Standards, the checks as a table, the check plan and the
    form to record a check."""
    require_scope(principal, "Observation", "r")
    return _growth_page(request, session, principal, patient_id, new=new[:32])


def _check_in(form: dict[str, str]) -> ChildCheckIn:
    values: dict = {}
    for key in ("weight_kg", "length_cm", "head_cm", "hb_g_l"):
        if form.get(key):
            try:
                values[key] = float(form[key])
            except ValueError:
                raise BadRequest(f"{key} 须为数字 / {key} must be a number", expression=[key]) from None
    try:
        day = dt.date.fromisoformat(form.get("check_date", ""))
    except ValueError:
        raise BadRequest("体检日期须为 YYYY-MM-DD / check_date must be a date YYYY-MM-DD",
                         expression=["check_date"]) from None
    try:
        return ChildCheckIn(check_key=form.get("check_key") or "", check_date=day,
                            position=form.get("position") or None, hearing=form.get("hearing") or None, **values)
    except ValidationError as e:
        key = str(e.errors()[0]["loc"][0]) if e.errors() and e.errors()[0]["loc"] else "check_key"
        raise BadRequest(f"{key} 无效或超出范围 / {key} is not valid or out of range", expression=[key]) from None


@router.post("/children/{patient_id}/checks")
@html_errors
async def child_check_create(request: Request, patient_id: str, session: DB, principal: CurrentPrincipal
                             ) -> Response:
    """Record a check from the page; an error (an implausible value, a missing position …) is shown on the form
    with everything typed kept and the field marked."""
    check_origin(request)
    require_scope(principal, "Observation", "c")
    raw = await request.form()
    form = {k: str(raw.get(k) or "").strip()[:32] for k in CHECK_FORM_FIELDS}
    try:
        c = child_health.record_check(session, principal, patient_id[:32], _check_in(form))
    except BadRequest as e:
        session.rollback()
        return _growth_page(request, session, principal, patient_id, form=form, error=e.message,
                            field=(e.expression or [None])[0], status=e.status)
    return RedirectResponse(f"/ui/maternal-child/children/{c.patient_record_id}/growth?new={c.id}", status_code=303)


# --- 两癌 screening campaign (issue 21 point 5) ---

CAMPAIGN_FIELDS = ("code", "name", "township", "start_date", "end_date", "reference_date", "min_age", "max_age",
                   "interval_years")
RESULT_FIELDS = ("person_id", "cervical_method", "cervical_result", "cervical_date", "breast_method", "breast_result",
                 "breast_birads", "breast_date")
FOLLOWUP_FIELDS = ("diagnosis_date", "diagnosis_result", "treatment_date", "lost", "note")


def _screening_form(raw, fields: tuple[str, ...]) -> dict[str, str]:
    return {k: str(raw.get(k) or "").strip()[:128] for k in fields}


def _screening_model(model, form: dict[str, str], dates: tuple[str, ...], numbers: tuple[str, ...]):
    """The form as the API's body; a value that does not parse is a 400 naming the field."""
    values: dict[str, object] = {}
    for key, text in form.items():
        if not text:
            continue
        if key in dates:
            try:
                values[key] = dt.date.fromisoformat(text)
            except ValueError:
                raise BadRequest(f"{key} 须为日期 YYYY-MM-DD / {key} must be a date YYYY-MM-DD",
                                 expression=[key]) from None
        elif key in numbers:
            if not text.isdigit():
                raise BadRequest(f"{key} 须为整数 / {key} must be a whole number", expression=[key])
            values[key] = int(text)
        elif key == "lost":
            values[key] = text in ("1", "on", "true", "yes")
        else:
            values[key] = text
    try:
        return model(**values)
    except ValidationError as e:
        errors = e.errors()
        key = str(errors[0]["loc"][0]) if errors and errors[0]["loc"] else next(iter(form))
        raise BadRequest(f"{key} 无效或缺失 / {key} is missing or not valid", expression=[key]) from None


def _campaigns_page(request: Request, session, principal, form: dict, status: int = 200, **extra) -> Response:
    return page(request, "maternal_child/screening.html", session=session, principal=principal, status=status,
                campaigns=screening.listing(session, principal), form=form,
                can_write=allows(principal.scopes, "CarePlan", "c"), **{"error": None, "field": None, **extra})


@router.get("/screening")
@html_errors
def screening_campaigns(request: Request, session: DB, principal: CurrentPrincipal) -> Response:
    """The institution's 两癌 screening campaigns and the form for a new one."""
    require_scope(principal, "CarePlan", "r")
    return _campaigns_page(request, session, principal, {})


@router.post("/screening")
@html_errors
async def screening_campaign_create(request: Request, session: DB, principal: CurrentPrincipal) -> Response:
    """Create the campaign and open its page; an error is shown on the form with everything typed kept."""
    check_origin(request)
    require_scope(principal, "CarePlan", "c")
    form = _screening_form(await request.form(), CAMPAIGN_FIELDS)
    try:
        c = screening.create(session, principal, _screening_model(
            ScreeningCampaignIn, form, ("start_date", "end_date", "reference_date"),
            ("min_age", "max_age", "interval_years")))
    except (BadRequest, NotFound, Conflict) as e:
        session.rollback()
        return _campaigns_page(request, session, principal, form, status=e.status, error=e.message,
                               field=(e.expression or [None])[0])
    return RedirectResponse(f"/ui/maternal-child/screening/{c.id}", status_code=303)


SCREENING_PAGE_SIZE = 200  # eligible women per page (a campaign may hold tens of thousands)


def _campaign_page(request: Request, session, principal, campaign_id: str, form: dict, status: int = 200,
                   page_no: int = 1, **extra) -> Response:
    page_no = max(1, min(page_no, 10_000))
    c, rows, total = screening.eligible_list(session, principal, campaign_id, (page_no - 1) * SCREENING_PAGE_SIZE,
                                             SCREENING_PAGE_SIZE)
    return page(request, "maternal_child/screening_campaign.html", session=session, principal=principal,
                status=status, c=c, figures=screening.figures(session, c), rows=rows, total=total, page_no=page_no,
                pages=max(1, -(-total // SCREENING_PAGE_SIZE)),
                results=screening.screening_rows(session, principal, c.id), form=form,
                can_write=allows(principal.scopes, "CarePlan", "c"),
                can_record=allows(principal.scopes, "Observation", "c"),
                **{"error": None, "field": None, "invited": None, **extra})


@router.get("/screening/{campaign_id}")
@html_errors
def screening_campaign(request: Request, session: DB, principal: CurrentPrincipal, campaign_id: str,
                       sent: int | None = None, already: int | None = None, no_contact: int | None = None,
                       saved: str | None = None, page_no: int = 1) -> Response:
    """Figures (eligible, screened, 两癌筛查率, positives, followed in time), the invite button, the result entry
    and the eligible list (masked, ``SCREENING_PAGE_SIZE`` women a page)."""
    require_scope(principal, "CarePlan", "r")
    invited = {"sent": sent, "already": already or 0, "no_contact": no_contact or 0} if sent is not None else None
    return _campaign_page(request, session, principal, campaign_id[:32], {}, page_no=page_no, invited=invited,
                          saved=saved)


@router.post("/screening/{campaign_id}/invite")
@html_errors
def screening_invite(request: Request, session: DB, principal: CurrentPrincipal, campaign_id: str) -> Response:
    """Invite the eligible women not invited yet (nothing is sent twice), then back to the campaign."""
    check_origin(request)
    require_scope(principal, "CarePlan", "c")
    out = screening.invite(session, principal, campaign_id[:32])
    return RedirectResponse(f"/ui/maternal-child/screening/{campaign_id[:32]}?{urlencode(out)}", status_code=303)


@router.post("/screening/{campaign_id}/results")
@html_errors
async def screening_result(request: Request, session: DB, principal: CurrentPrincipal, campaign_id: str
                           ) -> Response:
    """Record a result; an error is shown next to the form with everything typed kept."""
    check_origin(request)
    require_scope(principal, "Observation", "c")
    raw = await request.form()
    form = _screening_form(raw, RESULT_FIELDS)
    page_no = int(str(raw.get("page_no") or "1")[:5]) if str(raw.get("page_no") or "1")[:5].isdigit() else 1
    try:
        s = screening.record_result(session, principal, campaign_id[:32], _screening_model(
            ScreeningResultIn, form, ("cervical_date", "breast_date"), ("breast_birads",)))
    except (BadRequest, Conflict) as e:
        session.rollback()
        return _campaign_page(request, session, principal, campaign_id[:32], form, status=e.status,
                              page_no=page_no, error=e.message, field=(e.expression or [None])[0])
    query = urlencode({"saved": s.id, "page_no": page_no})
    return RedirectResponse(f"/ui/maternal-child/screening/{campaign_id[:32]}?{query}", status_code=303)


def _worklist_page(request: Request, session, principal, campaign_id: str, which: str, status: int = 200,
                   **extra) -> Response:
    c, rows = screening.worklist(session, principal, campaign_id, which)
    return page(request, "maternal_child/screening_worklist.html", session=session, principal=principal,
                status=status, c=c, rows=rows, which=which, can_update=allows(principal.scopes, "CarePlan", "u"),
                **{"error": None, "field": None, "row_id": None, "form": {}, **extra})


@router.get("/screening/{campaign_id}/worklist")
@html_errors
def screening_worklist(request: Request, session: DB, principal: CurrentPrincipal, campaign_id: str,
                       list: str = "positives-open") -> Response:  # noqa: A002 — the query's name
    """The positives to follow (overdue marked in words) with the follow-up form of each."""
    require_scope(principal, "CarePlan", "r")
    return _worklist_page(request, session, principal, campaign_id[:32], list[:32])


@router.post("/screening/{campaign_id}/worklist/{screening_id}")
@html_errors
async def screening_followup(request: Request, session: DB, principal: CurrentPrincipal, campaign_id: str,
                             screening_id: str) -> Response:
    """A positive's follow-up from the worklist; an error is shown on that row's form, what was typed kept."""
    check_origin(request)
    require_scope(principal, "CarePlan", "u")
    raw = await request.form()
    form = _screening_form(raw, FOLLOWUP_FIELDS)
    which = str(raw.get("list") or "positives-open")[:32]
    try:
        screening.followup(session, principal, screening_id[:32], _screening_model(
            ScreeningFollowupIn, form, ("diagnosis_date", "treatment_date"), ()))
    except (BadRequest, Conflict) as e:
        session.rollback()
        return _worklist_page(request, session, principal, campaign_id[:32], which, status=e.status,
                              error=e.message, field=(e.expression or [None])[0], row_id=screening_id[:32],
                              form=form)
    return RedirectResponse(f"/ui/maternal-child/screening/{campaign_id[:32]}/worklist?"
                            f"{urlencode({'list': which})}", status_code=303)
