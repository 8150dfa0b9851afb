"""REST endpoints under /api/indicators, /api/cockpit and /api/reports — JSON for other systems and for
the cockpit page. Scope: ``MeasureReport`` read (bureau managers, admins, system clients); generating report
forms is a write (``MeasureReport.c``, ``.u`` to replace)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from onetrip.analytics import cockpit as cockpit_mod
from onetrip.analytics import coverage as coverage_mod
from onetrip.analytics import maternal_child as mch_mod
from onetrip.analytics import reports, service
from onetrip.analytics.indicators import INDICATORS
from onetrip.api.deps import DB, SERVICE_DATE, CurrentPrincipal, require_scope
from onetrip.kit.clock import MAX_SERVICE_DATE, MIN_SERVICE_DATE, local_date, utcnow
from onetrip.kit.errors import Forbidden

router = APIRouter(prefix="/api", tags=["indicators"])
REPORT_ROLES = {"bureau_manager", "admin"}  # who may generate the forms (as on /ui/cockpit/reports)


def _default_range(start: dt.date | None, end: dt.date | None) -> tuple[dt.date, dt.date]:
    end = end or local_date(utcnow())
    return start or end.replace(day=1), end


@router.get("/indicators")
def list_indicators(session: DB, principal: CurrentPrincipal) -> list[dict]:
    """The indicator registry: id, names, numerator, denominator, unit, rule, dimensions and target."""
    require_scope(principal, "MeasureReport", "r")
    targets = service.targets(session)
    return [i.as_dict(targets.get(i.id)) for i in INDICATORS]


@router.get("/indicators/{indicator_id}/values")
def indicator_values(
    indicator_id: str, session: DB, principal: CurrentPrincipal,
    period: str = "month",
    from_: Annotated[dt.date | None, Query(alias="from", ge=MIN_SERVICE_DATE, le=MAX_SERVICE_DATE)] = None,
    to: Annotated[dt.date | None, SERVICE_DATE] = None,
    group_by: str | None = None, community: str | None = None, organization: str | None = None,
) -> dict:
    """Values per period (day, month, quarter, year) between ``from`` and ``to`` (default: this month),
    optionally grouped by community, organization or department and filtered by community/organization.
    Each value carries its numerator and denominator."""
    require_scope(principal, "MeasureReport", "r")
    start, end = _default_range(from_, to)
    rows = service.values(session, indicator_id, period=period, start=start, end=end, group_by=group_by or None,
                          filters=service.Filters(community or None, organization or None))
    return {"indicator": indicator_id, "period": period, "from": start.isoformat(), "to": end.isoformat(),
            "group_by": group_by, "values": rows}


@router.get("/cockpit")
def cockpit(session: DB, principal: CurrentPrincipal, month: str | None = None, community: str | None = None,
            organization: str | None = None, drill: str = cockpit_mod.DEFAULT_DRILL) -> dict:
    """Everything the cockpit page draws for one calendar month (default: this month): tiles, trends,
    ranking and the drill-down table for the filters."""
    require_scope(principal, "MeasureReport", "r")
    start, end = cockpit_mod.month_range(month or service.period_key(local_date(utcnow()), "month"))
    return cockpit_mod.cockpit(session, start=start, end=end, drill=drill,
                               filters=service.Filters(community or None, organization or None))


@router.get("/reports")
def list_reports(session: DB, principal: CurrentPrincipal, limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list:
    """The report archive, newest first (no file contents)."""
    require_scope(principal, "MeasureReport", "r")
    return [reports.describe(r) for r in reports.archive(session, limit=limit)]


@router.post("/reports", status_code=201)
def generate_reports(session: DB, principal: CurrentPrincipal, kind: str = "monthly", period: str | None = None,
                     replace: bool = False) -> dict:
    """Generate the report forms of a period (monthly ``2026-10`` or quarterly ``2026-Q4``) for the district
    and every institution, as Excel and CSV; existing ones are kept unless ``replace``. A write: the token
    needs ``MeasureReport.c`` (and ``.u`` to replace), and a user must be a bureau manager or an admin (as
    on the cockpit page); a system client with ``system/MeasureReport.c`` may generate too."""
    require_scope(principal, "MeasureReport", "c")
    if replace:
        require_scope(principal, "MeasureReport", "u")
    if principal.kind == "user" and not (principal.roles & REPORT_ROLES):
        raise Forbidden("仅卫健局管理人员和管理员可生成报表 / only bureau managers and admins may generate reports")
    made = reports.generate(session, kind=kind, period=period or reports.last_period(kind, local_date(utcnow())),
                            by=principal.name, replace=replace)
    return {"generated": [reports.describe(r) for r in made]}


@router.get("/reports/{report_id}")
def download_report(report_id: str, session: DB, principal: CurrentPrincipal) -> Response:
    """One archived report file (xlsx or csv)."""
    require_scope(principal, "MeasureReport", "r")
    r = reports.get(session, report_id)
    return reports.file_response(r)


CohortCut = Literal["year", "month"]  # how cohorts are cut without a cohort filter
# A birth year (2025) or month (2025-03), as the cohorts the panel draws.
Cohort = Annotated[str | None, Query(pattern=r"^[1-9][0-9]{3}(-(0[1-9]|1[0-2]))?$", max_length=7)]
Township = Annotated[str | None, Query(max_length=64, pattern=r"^[^\x00-\x1f\x7f]*$")]  # no control characters


def _coverage_reader(principal) -> None:
    """Coverage figures: MeasureReport read and, for a user, the bureau-manager or admin role (as the page)."""
    require_scope(principal, "MeasureReport", "r")
    if principal.kind == "user" and not (principal.roles & REPORT_ROLES):
        raise Forbidden("接种率仅对卫健局管理人员和管理员开放 / vaccination coverage is for bureau managers and admins")


@router.get("/coverage")
def coverage(session: DB, principal: CurrentPrincipal, date: Annotated[dt.date | None, SERVICE_DATE] = None,
             cohort: Cohort = None, township: Township = None, by: CohortCut = "year") -> dict:
    """累计接种率 and 及时接种率 per vaccine dose × township × birth cohort on ``date`` (default today), each with
    numerator and denominator; ``cohort`` a birth year (2025) or month (2025-03), ``township`` a name or
    ``unknown``; ``by`` year or month (how cohorts are cut without a cohort filter)."""
    _coverage_reader(principal)
    return coverage_mod.panel(session, assessed=date or local_date(utcnow()), cohort=cohort, township=township,
                              by=by)


@router.get("/coverage/export")
def coverage_export(session: DB, principal: CurrentPrincipal, date: Annotated[dt.date | None, SERVICE_DATE] = None,
                    cohort: Cohort = None, township: Township = None, by: CohortCut = "year",
                    format: Literal["xlsx", "csv"] = "xlsx") -> Response:
    """The coverage report form (xlsx or csv) for the same parameters."""
    _coverage_reader(principal)
    data = coverage_mod.panel(session, assessed=date or local_date(utcnow()), cohort=cohort, township=township,
                              by=by)
    return coverage_mod.export(data, format)


# A year (2026) or a month (2026-10).
FiguresPeriod = Annotated[str | None, Query(pattern=r"^(19[0-9]{2}|2[01][0-9]{2})(-(0[1-9]|1[0-2]))?$", max_length=7)]
OrganizationId = Annotated[str | None, Query(max_length=32, pattern=r"^[0-9A-Za-z_-]*$")]


def _mch_reader(principal) -> None:
    """Maternal and child figures: MeasureReport read and, for a user, the bureau-manager or admin role."""
    require_scope(principal, "MeasureReport", "r")
    if principal.kind == "user" and not (principal.roles & REPORT_ROLES):
        raise Forbidden("妇幼指标仅对卫健局管理人员和管理员开放 / maternal and child figures are for bureau managers "
                        "and admins")


@router.get("/maternal-child-figures")
def maternal_child_figures(session: DB, principal: CurrentPrincipal, period: FiguresPeriod = None,
                           organization: OrganizationId = None) -> dict:
    """早孕建册率, 产前检查率, 产后访视率, 3 岁以下儿童系统管理率, 7 岁以下儿童健康管理率, 两癌筛查率 and positives
    diagnosed in time for ``period`` (a year 2026 or a month 2026-10; default this year) and ``organization``
    (an institution's id; default the district), each with numerator, denominator and rate (null with the
    reason when the denominator is 0)."""
    _mch_reader(principal)
    return mch_mod.panel(session, period=period or str(local_date(utcnow()).year), organization=organization)


@router.get("/maternal-child-figures/export")
def maternal_child_figures_export(session: DB, principal: CurrentPrincipal, period: FiguresPeriod = None,
                                  organization: OrganizationId = None,
                                  format: Literal["xlsx", "csv"] = "xlsx") -> Response:
    """The maternal and child report form (xlsx or csv) for the same parameters."""
    _mch_reader(principal)
    data = mch_mod.panel(session, period=period or str(local_date(utcnow()).year), organization=organization)
    return mch_mod.export(data, format)
