"""Referral figures (issue 6 §8): upward / downward counts per month with year-on-year change, time to
acceptance, acceptance / rejection / completion rates, reserved-slot use (of the referrals that got an appointment, the share booked on a place held for
referrals, 号源下沉 R2.4).

A referral counts in the period its ``submitted_at`` falls in (local dates, Asia/Shanghai); drafts never
count. Year on year compares with the same dates one year earlier (29 February → 28 February).
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import Counter
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from onetrip.kit.clock import LOCAL_TZ, MAX_SERVICE_DATE, MIN_SERVICE_DATE
from onetrip.kit.errors import BadRequest, Forbidden
from onetrip.kit.principal import Principal
from onetrip.referral.models import Referral
from onetrip.referral.rules import change

MAX_DAYS = 3 * 366


def _year_before(d: dt.date) -> dt.date:
    try:
        return d.replace(year=d.year - 1)
    except ValueError:
        return d.replace(year=d.year - 1, day=28)


def _bounds(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    return (dt.datetime.combine(start, dt.time(), LOCAL_TZ).astimezone(dt.UTC),
            dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), LOCAL_TZ).astimezone(dt.UTC))


def _where(q, organization_id: str | None, start: dt.date, end: dt.date):
    lo, hi = _bounds(start, end)
    q = q.where(Referral.submitted_at >= lo, Referral.submitted_at < hi)
    if organization_id:
        q = q.where(or_(Referral.from_organization_id == organization_id,
                        Referral.to_organization_id == organization_id))
    return q


def _tally(session: Session, organization_id: str | None, start: dt.date, end: dt.date) -> Counter:
    """Counts by (direction, status, accepted?, scheduled?, reserved slot?) — one GROUP BY."""
    keys = (Referral.direction, Referral.status, Referral.accepted_at.is_not(None),
            Referral.scheduled_at.is_not(None), Referral.reserved_slot)
    q = _where(select(*keys, func.count()).group_by(*keys), organization_id, start, end)
    out: Counter = Counter()
    for direction, status, accepted, scheduled, reserved, n in session.execute(q):
        out[(direction, status, bool(accepted), bool(scheduled), bool(reserved))] += n
    return out


def _times(session: Session, organization_id: str | None, start: dt.date, end: dt.date):
    return session.execute(_where(select(Referral.direction, Referral.submitted_at, Referral.accepted_at),
                                  organization_id, start, end)).all()


def _pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    k = min(len(values) - 1, max(0, round(p * (len(values) - 1))))
    return round(values[k], 1)


def compute(session: Session, principal: Principal, *, organization_id: str | None, start: dt.date,
            end: dt.date) -> dict[str, Any]:
    if not (MIN_SERVICE_DATE <= start <= end <= MAX_SERVICE_DATE):
        raise BadRequest("日期范围无效 / start must not be after end (dates 1900–2200)", expression=["start", "end"])
    if (end - start).days > MAX_DAYS:
        raise BadRequest("统计区间最长三年 / the period may be three years at most", expression=["end"])
    overseer = principal.is_operator or "bureau_manager" in principal.roles
    if not overseer:
        if organization_id not in (None, principal.organization_id):
            raise Forbidden("只能查看本机构的转诊统计 / only your own institution's referral figures")
        organization_id = principal.organization_id
    cur, prev = _tally(session, organization_id, start, end), _tally(
        session, organization_id, _year_before(start), _year_before(end))

    def total(t: Counter, **match) -> int:
        idx = {"direction": 0, "status": 1, "accepted": 2, "scheduled": 3, "reserved": 4}
        return sum(n for k, n in t.items() if all(k[idx[f]] in (v if isinstance(v, tuple) else (v,))
                                                   for f, v in match.items()))

    c = {d: total(cur, direction=d) for d in ("up", "down")}
    p = {d: total(prev, direction=d) for d in ("up", "down")}
    months: dict[str, Counter] = {}
    prev_months: dict[str, Counter] = {}
    hours = []
    for rows, into, shift in ((_times(session, organization_id, start, end), months, 0),
                              (_times(session, organization_id, _year_before(start), _year_before(end)),
                               prev_months, 1)):
        for direction, submitted, accepted in rows:
            local = submitted.astimezone(LOCAL_TZ)
            into.setdefault(f"{local.year + shift:04d}-{local.month:02d}", Counter())[direction] += 1
            if shift == 0 and accepted is not None:
                hours.append((accepted - submitted).total_seconds() / 3600)
    series = [{"month": k, "up": months[k]["up"], "down": months[k]["down"],
               "up_previous": prev_months.get(k, Counter())["up"], "down_previous": prev_months.get(k, Counter())["down"],
               "up_change": change(months[k]["up"], prev_months.get(k, Counter())["up"]),
               "down_change": change(months[k]["down"], prev_months.get(k, Counter())["down"])}
              for k in sorted(months)]
    n = c["up"] + c["down"]
    accepted = total(cur, accepted=True)
    rejected = total(cur, status="rejected")
    expired = total(cur, status="expired")
    completed = total(cur, status="completed")
    closed_after_accept = total(cur, accepted=True, status=("completed", "cancelled"))
    with_appt = total(cur, scheduled=True)  # referrals that got an appointment
    reserved = total(cur, scheduled=True, reserved=True)
    return {
        "start": start.isoformat(), "end": end.isoformat(), "organization_id": organization_id,
        "previous_start": _year_before(start).isoformat(), "previous_end": _year_before(end).isoformat(),
        "counts": {d: {"current": c[d], "previous": p[d], "change": change(c[d], p[d])} for d in ("up", "down")},
        "total": {"current": n, "previous": p["up"] + p["down"], "change": change(n, p["up"] + p["down"])},
        "series": series,
        "hours_to_acceptance": {"n": len(hours), "median": round(statistics.median(hours), 1) if hours else None,
                                "p90": _pct(hours, 0.9)},
        "acceptance_rate": round(accepted / n, 4) if n else None,
        "rejection_rate": round(rejected / n, 4) if n else None,
        "expiry_rate": round(expired / n, 4) if n else None,
        # Of the accepted referrals that have closed (completed or cancelled), the share completed.
        "completion_rate": round(completed / closed_after_accept, 4) if closed_after_accept else None,
        "reserved_slot": {"with_appointment": with_appt, "reserved": reserved},
        "reserved_slot_share": round(reserved / with_appt, 4) if with_appt else None,
    }
