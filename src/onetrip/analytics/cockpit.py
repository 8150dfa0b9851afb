"""What the cockpit (驾驶舱) shows, as one JSON document: KPI tiles with year-on-year and target, monthly
trend lines, an institution ranking and the drill-down table (community → institution → department)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from onetrip.analytics import service
from onetrip.analytics.indicators import COMMUNITY, DEPARTMENT, INDICATORS, ORGANIZATION
from onetrip.analytics.models import AnalyticsCursor
from onetrip.kit.clock import local_date, utcnow
from onetrip.kit.errors import BadRequest
from onetrip.registry.models import MedicalCommunity, Organization

TREND = ("primary_visit_rate", "county_visit_rate", "recognition_rate", "smart_booking_rate")
TREND_COUNTS = ("referrals_up", "referrals_down")
DEFAULT_DRILL = "outpatient_visits"


def month_range(month: str) -> tuple[dt.date, dt.date]:
    if len(month) != 7:
        raise BadRequest("月份格式为 YYYY-MM / month must look like 2026-10", expression=["month"])
    return service.period_bounds(month)


def drill_level(f: service.Filters) -> str:
    if f.organization_id:
        return DEPARTMENT
    if f.community_id:
        return ORGANIZATION
    return COMMUNITY


def cockpit(session: Session, *, start: dt.date, end: dt.date, filters: service.Filters,
            drill: str = DEFAULT_DRILL, months: int = 12) -> dict[str, Any]:
    targets = service.targets(session)
    today = local_date(utcnow())
    # The current month is compared up to today with the same days a year earlier (month to date).
    tiles = service.tiles(session, [i for i in INDICATORS if i.tile], start, end, filters, targets,
                          flow_end=today if start <= today <= end else None)
    m = end.year * 12 + end.month - 1 - (months - 1)
    trend_start = dt.date(m // 12, m % 12 + 1, 1)
    keys = service.periods_between(trend_start, end, "month")
    trend = {}
    for ind_id in TREND + TREND_COUNTS:
        rows = {r["period"]: r["value"] for r in service.values(session, ind_id, period="month", start=trend_start,
                                                                end=end, filters=filters, with_names=False)}
        trend[ind_id] = [rows.get(k) for k in keys]
    drill_ind = service.indicator(drill)
    level = drill_level(filters)
    if level not in drill_ind.dimensions:
        level = ORGANIZATION if ORGANIZATION in drill_ind.dimensions and level == DEPARTMENT else level
    table = []
    if level in drill_ind.dimensions:
        rows = service.values(session, drill, period="year", start=start, end=end, group_by=level, filters=filters)
        merged: dict[str, dict] = {}
        for r in rows:  # the range may straddle a year: add the parts
            m = merged.setdefault(r["group"], {"group": r["group"], "group_name": r.get("group_name"),
                                               "numerator": 0, "denominator": 0, "value": r["value"]})
            m["numerator"] += r["numerator"] or 0
            m["denominator"] = (m["denominator"] or 0) + (r["denominator"] or 0) if r["denominator"] is not None \
                else None
        table = sorted(merged.values(), key=lambda r: (r["value"] is None, -(r["value"] or 0)))
    ranking_ind = "referrals_total"
    ranking = service.values(session, ranking_ind, period="year", start=start, end=end, group_by=ORGANIZATION,
                             filters=service.Filters(community_id=filters.community_id))
    agg: dict[str, dict] = {}
    for r in ranking:
        a = agg.setdefault(r["group"], {"group": r["group"], "group_name": r.get("group_name"), "value": 0})
        a["value"] += r["value"] or 0
    # Every rate for every month of the trend: the figure, or 无数据 with the reason (issue 25) — never a blank.
    rates = [i for i in INDICATORS if i.unit == "ratio"]
    _, monthly = service.monthly(session, rates, trend_start, end, filters)
    cur = session.get(AnalyticsCursor, "outbox")
    return {
        "range": {"from": start.isoformat(), "to": end.isoformat()},
        "filters": {"community": filters.community_id, "organization": filters.organization_id},
        "tiles": tiles, "trend": {"months": keys, "series": trend},
        "monthly": {"months": keys, "rows": [{"id": m["indicator"].id, "cells": m["cells"]} for m in monthly]},
        "drill": {"indicator": drill, "level": level, "rows": table},
        "ranking": {"indicator": ranking_ind, "rows": sorted(agg.values(), key=lambda r: -r["value"])[:15]},
        "updated_at": cur.updated_at.isoformat() if cur else None,
    }


def choices(session: Session) -> dict[str, list[tuple[str, str]]]:
    return {"communities": [(c.id, c.name) for c in session.scalars(select(MedicalCommunity).order_by(
                MedicalCommunity.code))],
            "organizations": [(o.id, o.name, o.community_id) for o in session.scalars(select(Organization).where(
                Organization.org_type != "bureau").order_by(Organization.code))]}
