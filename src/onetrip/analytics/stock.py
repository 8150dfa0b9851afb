"""Stock indicators (签约率, 管理率, 规范管理率, 控制率) are states on a date, not daily counts. Their
numerators per institution on a day come from the family-doctor projections (``counts``); the facts keep
a snapshot at every month end (``snapshot``) in the monthly roll-up, so the cockpit reads them instead of
recomputing — and month, quarter and year ends are all month ends. The projections mark the earliest
date a change touches (``mark_changed``); the update then refreshes the snapshots from that month on
(``refresh_snapshots``)."""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterable

from sqlalchemy import and_, delete, func, literal, select
from sqlalchemy.orm import Session, aliased

from onetrip.analytics.counts import community_of
from onetrip.analytics.dates import local_day, next_month
from onetrip.analytics.models import (
    AnalyticsContract,
    AnalyticsEnrolment,
    AnalyticsFactMonth,
    AnalyticsFollowup,
)
from onetrip.db.bulk import bulk_insert
from onetrip.kit.clock import utcnow
from onetrip.rules.service import rule_values

PROGRAMMES = ("hypertension", "diabetes")
MARKER = "stock_snapshot"  # one row per snapshotted month: the snapshot exists (value 1)


def measure(kind: str, programme: str | None = None) -> str:
    return f"stock_{kind}" + (f"_{programme}" if programme else "")


STOCK_MEASURES = (measure("contracts"), MARKER) + tuple(
    measure(k, p) for p in PROGRAMMES for k in ("managed", "standard", "controlled"))


def month_end(first: dt.date) -> dt.date:
    return first.replace(day=calendar.monthrange(first.year, first.month)[1])


def counts(session: Session, kind: str, programme: str | None, day: dt.date, minimum: int) -> dict[str, int]:
    """{organization id: n} on ``day``: contracts in force; managed patients (enrolled by then); managed
    with ≥ ``minimum`` follow-ups in the year so far (R3.6 规范管理, R3.2); managed whose latest follow-up
    of the year so far is at target (R3.6 控制率, R3.5 — none in the year = not at target)."""
    if kind == "contracts":
        c = AnalyticsContract
        q = (select(c.organization_id, func.count())
             .where(c.start_date <= day, c.end_date.is_(None) | (c.end_date >= day)).group_by(c.organization_id))
        return dict(session.execute(q).all())
    e, f = AnalyticsEnrolment, AnalyticsFollowup
    managed = and_(e.programme == programme, e.enrolled_on <= day, e.closed_on.is_(None) | (e.closed_on > day))
    if kind == "managed":
        return dict(session.execute(select(e.organization_id, func.count()).where(managed)
                                    .group_by(e.organization_id)).all())
    y0 = dt.date(day.year, 1, 1)
    in_year = and_(f.programme == programme, f.visit_date >= y0, f.visit_date <= day)
    if kind == "standard":
        enough = (select(f.person_id).where(in_year).group_by(f.person_id)
                  .having(func.count() >= minimum).subquery())
        q = (select(e.organization_id, func.count()).join(enough, enough.c.person_id == e.person_id)
             .where(managed).group_by(e.organization_id))
        return dict(session.execute(q).all())
    f2 = aliased(AnalyticsFollowup)
    later = (select(literal(1)).where(
        f2.programme == programme, f2.person_id == f.person_id, f2.visit_date >= y0, f2.visit_date <= day,
        (f2.visit_date > f.visit_date) | and_(f2.visit_date == f.visit_date, f2.followup_id > f.followup_id))
        .exists())
    q = (select(e.organization_id, func.count())
         .join(f, and_(f.programme == e.programme, f.person_id == e.person_id))
         .where(managed, in_year, f.controlled.is_(True), ~later).group_by(e.organization_id))
    return dict(session.execute(q).all())


def snapshot(session: Session, months: list[dt.date], minimum: int, community_of: dict[str, str]) -> int:
    """Recompute the month-end snapshots of ``months`` (first days) into the monthly roll-up."""
    rows = []
    for first in months:
        day = month_end(first)
        session.execute(delete(AnalyticsFactMonth).where(AnalyticsFactMonth.measure.in_(STOCK_MEASURES),
                                                          AnalyticsFactMonth.month == first))
        found = {measure("contracts"): counts(session, "contracts", None, day, minimum)}
        for p in PROGRAMMES:
            for k in ("managed", "standard", "controlled"):
                found[measure(k, p)] = counts(session, k, p, day, minimum)
        for m, per_org in found.items():
            rows += [{"measure": m, "month": first, "community_id": community_of.get(o, ""), "organization_id": o,
                      "department_id": "", "bucket": 0, "value": n} for o, n in per_org.items() if n]
        rows.append({"measure": MARKER, "month": first, "community_id": "", "organization_id": "",
                     "department_id": "", "bucket": 0, "value": 1})
    bulk_insert(session, AnalyticsFactMonth.__table__, rows)
    return len(rows)


def read_snapshot(session: Session, kind: str, programme: str | None, day: dt.date) -> dict[str, int] | None:
    """The snapshot of ``day`` if it is a month end that has one, else None (compute live)."""
    first = day.replace(day=1)
    if day != month_end(first):
        return None
    fm = AnalyticsFactMonth
    rows = session.execute(select(fm.measure, fm.organization_id, fm.value).where(
        fm.month == first, fm.measure.in_((MARKER, measure(kind, programme))))).all()
    if not any(m == MARKER for m, _, _ in rows):
        return None
    return {o: int(v) for m, o, v in rows if m != MARKER}


# --- keeping the snapshots current ---------------------------------------------------------------

STOCK_DATES = ("start_date", "end_date", "enrolled_on", "closed_on", "visit_date")


def mark_changed(session: Session, rows: Iterable[dict]) -> None:
    """Remember the earliest date a family-doctor change touches: month-end snapshots from its month on
    are recomputed by ``update``."""
    dates = [r[k] for r in rows for k in STOCK_DATES if r.get(k)]
    if dates:
        cur = session.info.get("analytics_stock_from")
        session.info["analytics_stock_from"] = min([*dates, *([cur] if cur else [])])


def refresh_snapshots(session: Session, since: dt.date | None) -> int:
    """Month-end stock snapshots from ``since``'s month (all when None) to the current month."""
    this_month = local_day(utcnow()).replace(day=1)
    if since is None:
        session.execute(delete(AnalyticsFactMonth).where(AnalyticsFactMonth.measure.in_(STOCK_MEASURES)))
        firsts = [session.scalar(select(func.min(c))) for c in (
            AnalyticsContract.start_date, AnalyticsEnrolment.enrolled_on, AnalyticsFollowup.visit_date)]
        firsts = [d for d in firsts if d]
        if not firsts:
            return 0
        since = min(firsts)
    elif session.scalar(select(AnalyticsEnrolment.person_id).limit(1)) is None and \
            session.scalar(select(AnalyticsContract.contract_id).limit(1)) is None:
        return 0  # no family-doctor data at all
    m, months = max(since, this_month.replace(year=this_month.year - 10)).replace(day=1), []
    while m <= this_month:
        months.append(m)
        m = next_month(m)
    minimum = int(rule_values(session, "analytics").get("standard_followups_per_year") or 4)
    return snapshot(session, months, minimum, community_of(session))


def refresh_changed(session: Session) -> int:
    """After an update: the snapshots from the earliest month ``mark_changed`` saw, or this month's when it
    has none yet (a new month began); nothing otherwise."""
    since = session.info.pop("analytics_stock_from", None)
    this_month = local_day(utcnow()).replace(day=1)
    if since is None and session.scalar(select(AnalyticsFactMonth.value).where(
            AnalyticsFactMonth.measure == MARKER, AnalyticsFactMonth.month == this_month)) is None:
        since = this_month  # a new month: its snapshot does not exist yet
    if since is None:
        return 0
    return refresh_snapshots(session, min(since, this_month))


def refresh_all(session: Session) -> int:
    """After a rebuild: every month-end snapshot."""
    session.info.pop("analytics_stock_from", None)
    return refresh_snapshots(session, None)
