"""The cockpit (驾驶舱) at /ui/cockpit and the report archive at /ui/cockpit/reports — for bureau
managers and admins. Server-rendered (tiles, drill-down and ranking tables work without JavaScript);
ECharts (served locally) draws the trend lines and the ranking from the JSON embedded in the page.
``?wall=1`` is the wall-screen layout: large type, no navigation, reloads itself every ``refresh`` s."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from fastapi import APIRouter, Form, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from onetrip.analytics import cockpit as cockpit_mod
from onetrip.analytics import coverage as coverage_mod
from onetrip.analytics import maternal_child as mch_mod
from onetrip.analytics import reports, service
from onetrip.analytics.indicators import BY_ID, INDICATORS, basis
from onetrip.api.deps import DB, CurrentPrincipal
from onetrip.api.web import check_origin, html_errors, page
from onetrip.kit.clock import local_date, utcnow
from onetrip.kit.errors import BadRequest, Forbidden
from onetrip.kit.principal import Principal

router = APIRouter(prefix="/ui/cockpit", include_in_schema=False)
STATIC = Path(__file__).parent / "static"
ROLES = {"bureau_manager", "admin"}


def _require(principal: Principal) -> None:
    if not (principal.roles & ROLES):
        raise Forbidden("驾驶舱仅对卫健局管理人员和管理员开放 / the cockpit is for bureau managers and admins")


@router.get("/static/{name}")
def asset(name: str) -> Response:
    """cockpit.js / cockpit.css (the app's CSP allows only same-origin scripts and styles)."""
    path = STATIC / name
    if name not in ("cockpit.js", "cockpit.css") or not path.exists():
        return Response(status_code=404)
    media = "text/javascript" if name.endswith(".js") else "text/css"
    return FileResponse(path, media_type=media, headers={"Cache-Control": "max-age=300"})


@router.get("")
@html_errors
def cockpit_page(request: Request, session: DB, principal: CurrentPrincipal, month: str | None = None,
                 community: str | None = None, organization: str | None = None,
                 drill: str = cockpit_mod.DEFAULT_DRILL, wall: int = 0, refresh: int = 300) -> Response:
    _require(principal)
    month = month or service.period_key(local_date(utcnow()), "month")
    start, end = cockpit_mod.month_range(month)
    if drill not in BY_ID:
        drill = cockpit_mod.DEFAULT_DRILL
    data = cockpit_mod.cockpit(session, start=start, end=end, drill=drill,
                               filters=service.Filters(community or None, organization or None))
    ch = cockpit_mod.choices(session)
    comm_name = dict(ch["communities"]).get(community or "")
    org_name = {o[0]: o[1] for o in ch["organizations"]}.get(organization or "")
    charts = {"months": data["trend"]["months"], "series": data["trend"]["series"],
              "names": {i.id: [i.name_zh, i.name_en] for i in INDICATORS},
              "ranking": data["ranking"]["rows"]}
    return page(request, "cockpit/cockpit.html", session=session, principal=principal, data=data, month=month,
                community=community or "", organization=organization or "", community_name=comm_name,
                organization_name=org_name, choices=ch, drill=drill, wall=bool(wall),
                refresh=max(30, min(refresh, 3600)), indicators=INDICATORS, by_id=BY_ID, charts=charts, basis=basis)


@router.get("/reports")
@html_errors
def reports_page(request: Request, session: DB, principal: CurrentPrincipal, made: int | None = None) -> Response:
    _require(principal)
    today = local_date(utcnow())
    return page(request, "cockpit/reports.html", session=session, principal=principal,
                folders=reports.filed(reports.archive(session, limit=200)), made=made,
                last_month=reports.last_period("monthly", today), last_quarter=reports.last_period("quarterly", today))


@router.post("/reports")
@html_errors
def reports_generate(request: Request, session: DB, principal: CurrentPrincipal, kind: str = Form("monthly"),
                     period: str = Form(""), replace: str | None = Form(None)) -> Response:
    check_origin(request)
    _require(principal)
    from onetrip.analytics import facts

    facts.update(session)
    made = reports.generate(session, kind=kind, period=period.strip() or reports.last_period(kind, local_date(utcnow())),
                            by=principal.name, replace=bool(replace))
    return RedirectResponse(f"/ui/cockpit/reports?made={len(made)}", status_code=303)


@router.get("/reports/{report_id}")
@html_errors
def reports_download(request: Request, report_id: str, session: DB, principal: CurrentPrincipal) -> Response:
    _require(principal)
    return reports.file_response(reports.get(session, report_id))


def _coverage_args(date: str | None, cohort: str | None) -> tuple[dt.date, str | None]:
    try:
        day = dt.date.fromisoformat(date) if date else local_date(utcnow())
    except ValueError:
        raise BadRequest("日期格式为 YYYY-MM-DD / the date must look like 2026-12-01", expression=["date"]) from None
    return day, (cohort or "").strip() or None


@router.get("/coverage")
@html_errors
def coverage_page(request: Request, session: DB, principal: CurrentPrincipal, date: str | None = None,
                  cohort: str | None = None, township: str | None = None, by: str = "year") -> Response:
    """The panel 接种率 / Vaccination coverage: dose × township × cohort with numerators and denominators."""
    _require(principal)
    try:
        day, cohort_ = _coverage_args(date, cohort)
        data = coverage_mod.panel(session, assessed=day, cohort=cohort_, township=township, by=by)
    except BadRequest as e:  # shown inline, the filters keep what was typed
        return page(request, "cockpit/coverage.html", session=session, principal=principal, status=400,
                    data=None, error=e.message, date=date or "", cohort=cohort or "", township=township or "",
                    by=by, label=coverage_mod.township_label)
    return page(request, "cockpit/coverage.html", session=session, principal=principal, data=data, error=None,
                date=data["date"], cohort=cohort_ or "", township=township or "", by=data["by"],
                label=coverage_mod.township_label)


@router.get("/coverage/export")
@html_errors
def coverage_export(request: Request, session: DB, principal: CurrentPrincipal, date: str | None = None,
                    cohort: str | None = None, township: str | None = None, by: str = "year",
                    format: str = "xlsx") -> Response:
    _require(principal)
    day, cohort = _coverage_args(date, cohort)
    data = coverage_mod.panel(session, assessed=day, cohort=cohort, township=township, by=by)
    return coverage_mod.export(data, format)


@router.get("/maternal-child")
@html_errors
def maternal_child_page(request: Request, session: DB, principal: CurrentPrincipal, period: str | None = None,
                        organization: str | None = None) -> Response:
    """The panel 妇幼指标 / Maternal and child figures: numerator, denominator and rate of each figure."""
    _require(principal)
    period_ = (period or "").strip() or str(local_date(utcnow()).year)
    ch = cockpit_mod.choices(session)
    try:
        data = mch_mod.panel(session, period=period_, organization=organization or None)
    except BadRequest as e:  # shown inline, the filters keep what was typed
        return page(request, "cockpit/maternal_child.html", session=session, principal=principal, status=400,
                    data=None, error=e.message, period=period or "", organization=organization or "", choices=ch)
    return page(request, "cockpit/maternal_child.html", session=session, principal=principal, data=data, error=None,
                period=period_, organization=organization or "", choices=ch)


@router.get("/maternal-child/export")
@html_errors
def maternal_child_export(request: Request, session: DB, principal: CurrentPrincipal, period: str | None = None,
                          organization: str | None = None, format: str = "xlsx") -> Response:
    _require(principal)
    data = mch_mod.panel(session, period=(period or "").strip() or str(local_date(utcnow()).year),
                         organization=organization or None)
    return mch_mod.export(data, format)
