"""Stock indicators (签约率, 管理率, 规范管理率, 控制率) are states on a date, not daily counts. Their
numerators per institution on a day come from the family-doctor projections (``counts``); the facts keep
a snapshot at every month end (``snapshot``) in the monthly roll-up, so the cockpit reads them instead of
recomputing — and month, quarter and year ends are all month ends."""

from __future__ import annotations

import calendar
import datetime as dt

from sqlalchemy import and_, delete, func, literal, select
from sqlalchemy.orm import Session, aliased

from onetrip.analytics.models import (
    AnalyticsContract,
    AnalyticsEnrolment,
    AnalyticsFactMonth,
    AnalyticsFollowup,
)

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
    from onetrip.analytics.facts import bulk_insert

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
