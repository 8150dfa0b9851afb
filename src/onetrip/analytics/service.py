"""Indicator values by period and dimension, read from the daily facts and projections (never from the
raw tables when a page opens). Used by the API, the cockpit and the report forms."""

from __future__ import annotations

import calendar
import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, func, literal, or_, select
from sqlalchemy.orm import Session

from onetrip.analytics import formulas, stock
from onetrip.analytics.indicators import BY_ID, COMMUNITY, DEPARTMENT, INDICATORS, ORGANIZATION, Indicator
from onetrip.analytics.models import (
    AnalyticsCatchment,
    AnalyticsContract,
    AnalyticsEnrolment,
    AnalyticsFact,
    AnalyticsFactMonth,
)
from onetrip.db.expressions import period_label
from onetrip.kit.errors import BadRequest, NotFound
from onetrip.registry.models import Department, MedicalCommunity, Organization
from onetrip.rules.service import rule_values

PERIODS = ("day", "month", "quarter", "year")
GROUPS = (None, COMMUNITY, ORGANIZATION, DEPARTMENT)


@dataclass(frozen=True)
class Filters:
    community_id: str | None = None
    organization_id: str | None = None


# --- periods ---------------------------------------------------------------------------------------

def period_key(day: dt.date, period: str) -> str:
    if period == "day":
        return day.isoformat()
    if period == "month":
        return f"{day.year}-{day.month:02d}"
    if period == "quarter":
        return f"{day.year}-Q{(day.month + 2) // 3}"
    return str(day.year)


def period_bounds(key: str) -> tuple[dt.date, dt.date]:
    """First and last day of a period key (2026-10-05, 2026-10, 2026-Q4, 2026)."""
    try:
        if len(key) == 10:
            d = dt.date.fromisoformat(key)
            return d, d
        if "-Q" in key:
            y, q = int(key[:4]), int(key[-1])
            if not 1 <= q <= 4:
                raise ValueError(key)
            m0 = 3 * (q - 1) + 1
            return dt.date(y, m0, 1), dt.date(y, m0 + 2, calendar.monthrange(y, m0 + 2)[1])
        if len(key) == 7:
            y, m = int(key[:4]), int(key[5:7])
            return dt.date(y, m, 1), dt.date(y, m, calendar.monthrange(y, m)[1])
        y = int(key)
        return dt.date(y, 1, 1), dt.date(y, 12, 31)
    except ValueError:
        raise BadRequest(f"无效的统计期 / invalid period {key!r} (e.g. 2026-10, 2026-Q4, 2026)") from None


def periods_between(start: dt.date, end: dt.date, period: str) -> list[str]:
    keys, d = [], start
    while d <= end:
        k = period_key(d, period)
        if not keys or keys[-1] != k:
            keys.append(k)
        d = period_bounds(k)[1] + dt.timedelta(days=1)
    return keys


def shift_year(day: dt.date, years: int = -1) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def _month_aligned(ranges: list[tuple[dt.date, dt.date]]) -> bool:
    return all(a.day == 1 and (b + dt.timedelta(days=1)).day == 1 for a, b in ranges)


def _source(ranges: list[tuple[dt.date, dt.date]], period: str = "month"):
    """The monthly roll-up when every range is whole months (and days are not asked for), else the daily
    facts: (table, its date column)."""
    if period != "day" and _month_aligned(ranges):
        t = AnalyticsFactMonth.__table__
        return t, t.c.month
    t = AnalyticsFact.__table__
    return t, t.c.day


# --- names -----------------------------------------------------------------------------------------

def names(session: Session, group_by: str | None) -> dict[str, str]:
    if group_by == COMMUNITY:
        return dict(session.execute(select(MedicalCommunity.id, MedicalCommunity.name)).all())
    if group_by == ORGANIZATION:
        return dict(session.execute(select(Organization.id, Organization.name)).all())
    if group_by == DEPARTMENT:
        return {i: f"{o} · {d}" for i, d, o in session.execute(
            select(Department.id, Department.name, Organization.name).join(
                Organization, Organization.id == Department.organization_id))}
    return {}


# --- values ----------------------------------------------------------------------------------------

def _check(ind: Indicator, period: str, group_by: str | None) -> None:
    if period not in PERIODS:
        raise BadRequest(f"period 须为 {'/'.join(PERIODS)} / period must be one of {PERIODS}", expression=["period"])
    if group_by not in GROUPS:
        raise BadRequest("group_by 须为 community/organization/department / group_by must be community, "
                         "organization or department", expression=["group_by"])
    if group_by and group_by not in ind.dimensions:
        raise BadRequest(f"指标 {ind.id} 不支持按 {group_by} 分组 / {ind.id} has no {group_by} dimension "
                         f"(dimensions: {', '.join(ind.dimensions)})", expression=["group_by"])


def indicator(indicator_id: str) -> Indicator:
    ind = BY_ID.get(indicator_id)
    if ind is None:
        raise NotFound(f"指标不存在 / unknown indicator {indicator_id!r}")
    return ind


def targets(session: Session) -> dict[str, Any]:
    rules = rule_values(session, "analytics")
    return {i.id: rules.get(i.target_key) for i in INDICATORS}


def _fact_sums(session: Session, measures: set[str], start: dt.date, end: dt.date, period: str,
               group_by: str | None, f: Filters) -> dict[tuple[str, str, str, int], int]:
    """{(period key, group, measure, bucket): Σ value}."""
    t, day = _source([(start, end)], period)
    pk = period_label(session, period, day)
    group_col = {COMMUNITY: t.c.community_id, ORGANIZATION: t.c.organization_id,
                 DEPARTMENT: t.c.department_id, None: literal("")}[group_by]
    stmt = (select(pk, group_col, t.c.measure, t.c.bucket, func.sum(t.c.value))
            .where(t.c.measure.in_(sorted(measures)), day >= start, day <= end)
            .group_by(pk, group_col, t.c.measure, t.c.bucket))
    if f.community_id:
        stmt = stmt.where(t.c.community_id == f.community_id)
    if f.organization_id:
        stmt = stmt.where(t.c.organization_id == f.organization_id)
    return {(str(p), g or "", m, b): int(v) for p, g, m, b, v in session.execute(stmt)}


def _flow_values(session: Session, ind: Indicator, start: dt.date, end: dt.date, period: str,
                 group_by: str | None, f: Filters) -> list[dict]:
    sums = _fact_sums(session, set(ind.numerator) | set(ind.denominator), start, end, period, group_by, f)
    cells: dict[tuple[str, str], dict[str, Any]] = defaultdict(lambda: {"num": 0, "den": 0, "hist": defaultdict(int)})
    for (p, g, m, b), v in sums.items():
        c = cells[(p, g)]
        if m in ind.numerator:
            c["num"] += v
            c["hist"][b] += v
        if m in ind.denominator:
            c["den"] += v
    out = []
    for (p, g), c in sorted(cells.items()):
        if ind.kind == "count":
            value: float | None = c["num"]
            row = {"numerator": c["num"], "denominator": None}
        elif ind.kind == "median":
            value = formulas.median_from_histogram(c["hist"])
            row = {"numerator": c["num"], "denominator": None}
        else:
            value = formulas.rate(c["num"], c["den"])
            row = {"numerator": c["num"], "denominator": c["den"]}
        if ind.kind != "ratio" or c["den"]:
            out.append({"period": p, "group": g, **row, "value": value})
    return out


def _org_filter(session: Session, f: Filters) -> dict[str, str]:
    """organization id → community id, restricted by the filters."""
    rows = session.execute(select(Organization.id, Organization.community_id)).all()
    return {o: c or "" for o, c in rows if (not f.community_id or c == f.community_id)
            and (not f.organization_id or o == f.organization_id)}


def _stock_at(session: Session, ind: Indicator, day: dt.date, orgs: dict[str, str]) -> dict[str, tuple[int, int]]:
    """{organization id: (numerator, denominator)} of a stock indicator on ``day``."""
    cache = session.info.setdefault("analytics_stock", {})  # per session (= per request / command)

    def memo(key, fn):
        if key not in cache:
            cache[key] = fn()
        return cache[key]

    rules = memo(("rules", day), lambda: rule_values(session, "analytics", on=day))
    source = AnalyticsContract if ind.id == "contract_rate" else AnalyticsEnrolment
    has_data = select(literal(1)).select_from(source)
    if ind.programme:
        has_data = has_data.where(AnalyticsEnrolment.programme == ind.programme)
    if memo(("has", ind.programme or "contract"), lambda: session.scalar(has_data.limit(1))) is None:
        return {}  # no contract / registry events at all yet: no figure rather than a misleading 0 %
    num: dict[str, int] = defaultdict(int)
    den: dict[str, int] = defaultdict(int)
    catch = memo("catchments", lambda: {c.organization_id: c for c in session.scalars(select(AnalyticsCatchment))})
    minimum = int(rules.get("standard_followups_per_year") or 4)

    def numerator(kind: str, prog: str | None) -> dict[str, int]:
        def compute() -> dict[str, int]:
            snap = stock.read_snapshot(session, kind, prog, day)
            return snap if snap is not None else stock.counts(session, kind, prog, day, minimum)
        return memo((kind, prog, day), compute)

    if ind.id == "contract_rate":
        num.update(numerator("contracts", None))
        den.update({o: c.residents for o, c in catch.items()})
    else:
        prog = ind.programme
        managed = numerator("managed", prog)
        if ind.id.endswith("management_rate"):
            share = float(rules.get(f"{prog}_share_of_residents") or 0)
            num.update(managed)
            for o, c in catch.items():
                est = c.hypertension_estimated if prog == "hypertension" else c.diabetes_estimated
                den[o] = formulas.estimated_patients(c.residents, share, est)
        else:
            num.update(numerator("standard" if ind.id.endswith("standard_rate") else "controlled", prog))
            den.update(managed)
            den.update(managed)
    keys = set(num) | set(den)
    return {o: (num.get(o, 0), den.get(o, 0)) for o in keys if o in orgs}


def _stock_values(session: Session, ind: Indicator, start: dt.date, end: dt.date, period: str,
                  group_by: str | None, f: Filters) -> list[dict]:
    orgs = _org_filter(session, f)
    out = []
    for key in periods_between(start, end, period):
        day = min(period_bounds(key)[1], end)
        per_org = _stock_at(session, ind, day, orgs)
        groups: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for o, (n, d) in per_org.items():
            g = {COMMUNITY: orgs.get(o, ""), ORGANIZATION: o}.get(group_by or "", "")
            groups[g][0] += n
            groups[g][1] += d
        for g, (n, d) in sorted(groups.items()):
            if d:
                out.append({"period": key, "group": g, "numerator": n, "denominator": d,
                            "value": formulas.rate(n, d)})
    return out


def values(session: Session, indicator_id: str, *, period: str = "month", start: dt.date, end: dt.date,
           group_by: str | None = None, filters: Filters | None = None, with_names: bool = True) -> list[dict]:
    """The indicator's values per period (and group), each with numerator and denominator."""
    ind = indicator(indicator_id)
    _check(ind, period, group_by)
    if start > end:
        raise BadRequest("from 不能晚于 to / from must not be after to", expression=["from"])
    if (end - start).days > 366 * 10:
        raise BadRequest("时间范围过长（最多10年） / range too long (at most 10 years)", expression=["from"])
    f = filters or Filters()
    rows = (_stock_values if ind.kind == "stock" else _flow_values)(session, ind, start, end, period, group_by, f)
    if with_names and group_by:
        nm = names(session, group_by)
        for r in rows:
            r["group_name"] = nm.get(r["group"], r["group"] or "—")
    return rows


def total(session: Session, indicator_id: str, start: dt.date, end: dt.date,
          filters: Filters | None = None) -> dict | None:
    """One figure for the whole range (a KPI tile): the range treated as one period."""
    ind = indicator(indicator_id)
    f = filters or Filters()
    if ind.kind == "stock":
        per = _stock_at(session, ind, end, _org_filter(session, f))
        n, d = sum(x for x, _ in per.values()), sum(y for _, y in per.values())
        return {"numerator": n, "denominator": d, "value": formulas.rate(n, d)} if d else None
    measures = set(ind.numerator) | set(ind.denominator)
    t, day = _source([(start, end)])
    stmt = (select(t.c.measure, t.c.bucket, func.sum(t.c.value))
            .where(t.c.measure.in_(sorted(measures)), day >= start, day <= end)
            .group_by(t.c.measure, t.c.bucket))
    if f.community_id:
        stmt = stmt.where(t.c.community_id == f.community_id)
    if f.organization_id:
        stmt = stmt.where(t.c.organization_id == f.organization_id)
    num = den = 0
    hist: dict[int, int] = defaultdict(int)
    for m, b, v in session.execute(stmt):
        if m in ind.numerator:
            num += int(v)
            hist[b] += int(v)
        if m in ind.denominator:
            den += int(v)
    if ind.kind == "count":
        return {"numerator": num, "denominator": None, "value": num}
    if ind.kind == "median":
        return {"numerator": num, "denominator": None, "value": formulas.median_from_histogram(hist)}
    return {"numerator": num, "denominator": den, "value": formulas.rate(num, den)} if den else None


def _figure(ind: Indicator, num: int, den: int, hist: dict[int, int]) -> dict | None:
    if ind.kind == "count":
        return {"numerator": num, "denominator": None, "value": num}
    if ind.kind == "median":
        return {"numerator": num, "denominator": None, "value": formulas.median_from_histogram(hist)}
    return {"numerator": num, "denominator": den, "value": formulas.rate(num, den)} if den else None


def flow_totals(session: Session, inds: list[Indicator], ranges: list[tuple[dt.date, dt.date]],
                filters: Filters | None = None) -> list[dict[str, dict | None]]:
    """Totals of many flow indicators over several date ranges in ONE query (the cockpit's tiles)."""
    f = filters or Filters()
    measures = sorted({m for i in inds for m in (*i.numerator, *i.denominator)})
    t, day = _source(ranges)
    which = case(*[(and_(day >= a, day <= b), n) for n, (a, b) in enumerate(ranges)], else_=-1)
    stmt = (select(which, t.c.measure, t.c.bucket, func.sum(t.c.value))
            .where(t.c.measure.in_(measures), or_(*[and_(day >= a, day <= b) for a, b in ranges]))
            .group_by(which, t.c.measure, t.c.bucket))
    if f.community_id:
        stmt = stmt.where(t.c.community_id == f.community_id)
    if f.organization_id:
        stmt = stmt.where(t.c.organization_id == f.organization_id)
    sums: dict[int, dict[str, dict[int, int]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    for n, m, b, v in session.execute(stmt):
        sums[n][m][b] += int(v)
    out = []
    for n in range(len(ranges)):
        per: dict[str, dict | None] = {}
        for ind in inds:
            num = sum(sum(sums[n][m].values()) for m in ind.numerator)
            den = sum(sum(sums[n][m].values()) for m in ind.denominator)
            hist: dict[int, int] = defaultdict(int)
            for m in ind.numerator:
                for b, v in sums[n][m].items():
                    hist[b] += v
            per[ind.id] = _figure(ind, num, den, hist)
        out.append(per)
    return out


def tiles(session: Session, inds: list[Indicator], start: dt.date, end: dt.date, filters: Filters | None,
          targets: dict[str, Any], *, flow_end: dt.date | None = None) -> list[dict]:
    """KPI tiles of many indicators: flow ones from one query over both years (up to ``flow_end`` — e.g.
    today in the current month, so this year's first 23 days compare with last year's), stock ones each."""
    flows = [i for i in inds if i.kind != "stock"]
    fe = min(end, flow_end) if flow_end else end
    cur, prev = flow_totals(session, flows, [(start, fe), (shift_year(start), shift_year(fe))], filters)
    out = []
    for ind in inds:
        if ind.kind == "stock":
            out.append(tile(session, ind, start, end, filters, targets.get(ind.id)))
        else:
            out.append(_tile(ind, cur[ind.id], prev[ind.id], targets.get(ind.id)))
    return out


def tile(session: Session, ind: Indicator, start: dt.date, end: dt.date, filters: Filters | None,
         target: Any) -> dict:
    """A KPI tile: the figure, the same range a year earlier, the change and the target."""
    cur = total(session, ind.id, start, end, filters)
    prev = total(session, ind.id, shift_year(start), shift_year(end), filters)
    return _tile(ind, cur, prev, target)


def no_data(ind: Indicator) -> dict[str, str]:
    """Why an indicator has no figure for a period (shown as 无数据 / no data with this reason)."""
    if ind.kind == "median":
        return {"zh": f"本期没有可计算的记录（{ind.numerator_zh}）",
                "en": f"nothing to compute in this period ({ind.numerator_en})"}
    return {"zh": f"本期分母为 0：没有{ind.denominator_zh}", "en": f"the denominator is 0: no {ind.denominator_en}"}


def monthly(session: Session, inds: list[Indicator], start: dt.date, end: dt.date,
            filters: Filters | None = None) -> tuple[list[str], list[dict]]:
    """Every month from ``start`` to ``end`` for each indicator: the figure, or None with the reason
    (``no_data``) when the month has nothing to compute it from — never a silent blank."""
    keys = periods_between(start, end, "month")
    out = []
    for ind in inds:
        got = {r["period"]: r for r in values(session, ind.id, period="month", start=start, end=end,
                                              filters=filters, with_names=False)}
        cells = []
        for k in keys:
            r = got.get(k)
            v = r["value"] if r else None
            cells.append({"period": k, "value": v, "numerator": r["numerator"] if r else None,
                          "denominator": r["denominator"] if r else None,
                          "no_data": None if v is not None else no_data(ind)})
        out.append({"indicator": ind, "cells": cells})
    return keys, out


def _tile(ind: Indicator, cur: dict | None, prev: dict | None, target: Any) -> dict:
    cv, pv = (cur or {}).get("value"), (prev or {}).get("value")
    change, change_kind = formulas.change(cv, pv, relative=ind.unit in ("count", "days"))
    met = None
    if cv is not None and target is not None:
        met = cv >= target if ind.higher_is_better else cv <= target
    return {"id": ind.id, "name_zh": ind.name_zh, "name_en": ind.name_en, "unit": ind.unit, "value": cv,
            "numerator": (cur or {}).get("numerator"), "denominator": (cur or {}).get("denominator"),
            "previous": pv, "change": change, "change_kind": change_kind, "no_data": None if cv is not None else no_data(ind),
            "target": target, "met": met, "higher_is_better": ind.higher_is_better}
