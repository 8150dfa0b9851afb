"""Maternal and child figures for the cockpit (issue 21 point 6): 早孕建册率, 产前检查率, 产后访视率,
3 岁以下儿童系统管理率, 7 岁以下儿童健康管理率, 两癌筛查率 and the positives followed to diagnosis — for one
institution (or all) and a period (a year ``2026`` or a month ``2026-10``), each with numerator and denominator.

Pure functions over the plain rows the repository returns (one query per figure family); the thresholds are rule
data (``pregnancy_visits`` R11.1, ``child_checks`` R11.3 and ``mch_figures`` — platform defaults, [U]: the
official formula text was not read). A figure whose denominator is 0 has no rate and says why.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from onetrip.kit import clock
from onetrip.kit.errors import Conflict
from onetrip.maternal_child import repository as repo
from onetrip.maternal_child import rules
from onetrip.rules.service import rule_values

PERIOD = re.compile(r"^(19[0-9]{2}|2[01][0-9]{2})(-(0[1-9]|1[0-2]))?$")  # as the service dates: 1900–2199
RULE_SET = "maternal_child"


def period_bounds(period: str) -> tuple[dt.date, dt.date]:
    """A year (2026) or a month (2026-10) as its first and last day; ValueError otherwise."""
    if not isinstance(period, str) or not PERIOD.match(period):
        raise ValueError(period)
    year = int(period[:4])
    if len(period) == 4:
        return dt.date(year, 1, 1), dt.date(year, 12, 31)
    start = dt.date(year, int(period[5:7]), 1)
    return start, rules.add_months_to(start, 1) - dt.timedelta(days=1)


@dataclass(frozen=True)
class PregnancyRow:
    booked_on: dt.date
    edd: dt.date
    delivery_date: dt.date | None
    discharge_date: dt.date | None
    delivery_outcome: str | None
    antenatal: int  # antenatal checks recorded, the booking check included (as pregnancy.py counts them)
    first_postpartum: dt.date | None


@dataclass(frozen=True)
class ChildRow:
    person_id: str
    birth: dt.date
    done: frozenset[str]  # the check keys recorded by the period's end


@dataclass(frozen=True)
class Figure:
    key: str
    name_zh: str
    name_en: str
    numerator: int
    denominator: int
    confidence: str
    no_data_zh: str
    no_data_en: str

    @property
    def rate(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "name_zh": self.name_zh, "name_en": self.name_en, "numerator": self.numerator,
                "denominator": self.denominator, "rate": self.rate, "confidence": self.confidence,
                "no_data": None if self.denominator else {"zh": self.no_data_zh, "en": self.no_data_en}}


def _in(day: dt.date | None, start: dt.date, end: dt.date) -> bool:
    return day is not None and start <= day <= end


def early_booking(rows: list[PregnancyRow], start: dt.date, end: dt.date, values: dict) -> Figure:
    """早孕建册率 (R11.1: booking before 13+0 weeks): booked in the period before ``early_booking_days`` of
    gestation ÷ booked in the period."""
    booked = [r for r in rows if _in(r.booked_on, start, end)]
    early = sum(1 for r in booked if rules.gestational_days(r.edd, r.booked_on) < int(values["early_booking_days"]))
    return Figure("early_booking", "早孕建册率", "Early booking rate", early, len(booked), "S",
                  "本期无建册孕妇", "no pregnancy booked in the period")


def _delivered(rows: list[PregnancyRow], start: dt.date, end: dt.date, values: dict) -> list[PregnancyRow]:
    outcomes = set(values["delivery_outcomes"])
    return [r for r in rows if _in(r.delivery_date, start, end) and r.delivery_outcome in outcomes]


def antenatal_checks(rows: list[PregnancyRow], start: dt.date, end: dt.date, values: dict,
                     visit_values: dict) -> Figure:
    """产前检查率 (R11.1: at least ``min_antenatal`` checks, the booking check counting as one): delivered in
    the period with that many antenatal checks ÷ delivered in the period."""
    delivered = _delivered(rows, start, end, values)
    need = int(visit_values.get("min_antenatal", 5))
    return Figure("antenatal_checks", "产前检查率（≥5次）", "Antenatal check rate (≥ 5 checks)",
                  sum(1 for r in delivered if r.antenatal >= need), len(delivered), "S",
                  "本期无分娩", "no delivery in the period")


def postpartum_visits(rows: list[PregnancyRow], start: dt.date, end: dt.date, values: dict,
                      visit_values: dict) -> Figure:
    """产后访视率 (R11.1: the home visit within ``postpartum.within_days`` of discharge): delivered in the period
    with a postpartum visit by then ÷ delivered in the period."""
    delivered = _delivered(rows, start, end, values)
    within = int(visit_values.get("postpartum", {}).get("within_days", 7))
    done = sum(1 for r in delivered if r.first_postpartum is not None and r.discharge_date is not None
               and (r.first_postpartum - r.discharge_date).days <= within)
    return Figure("postpartum_visits", "产后访视率", "Postpartum visit rate", done, len(delivered), "S",
                  "本期无分娩", "no delivery in the period")


def child_management(children: list[ChildRow], start: dt.date, end: dt.date, on: dt.date, checks: list[dict],
                     under_months: int, key: str, name_zh: str, name_en: str) -> Figure:
    """Children under ``under_months`` at the period's end with a child-health record (a check recorded) and at
    least one check of the plan (R11.3, rule child_checks) whose target day falls in the period (up to ``on``):
    those with every such check recorded ÷ all of them. A platform definition [U]."""
    last = min(end, on)
    num = den = 0
    for c in children:
        if end >= rules.add_months_to(c.birth, under_months):
            continue  # not under that age at the period's end
        due = [w.key for w in rules.child_check_windows(c.birth, checks, []) if start <= w.target <= last]
        if not due:
            continue
        den += 1
        num += all(k in c.done for k in due)
    return Figure(key, name_zh, name_en, num, den, "U", "本期无应查儿童", "no child with a check due in the period")


def screening_figures(totals: dict[str, Any]) -> list[Figure]:
    """两癌筛查率 (screened ÷ eligible) and positives diagnosed within the deadline ÷ positives, from the
    campaigns' sums (screening.totals)."""
    return [Figure("two_cancers_screening", "两癌筛查率", "Two-cancer screening rate", int(totals["screened"]),
                   int(totals["eligible"]), "U", "无筛查活动或无应筛妇女", "no campaign or no eligible woman"),
            Figure("two_cancers_followup", "两癌阳性按时确诊率", "Positives diagnosed in time",
                   int(totals["followed_in_time"]), int(totals["positives"]), "U", "无阳性", "no positive result")]


def compute(pregnancies: list[PregnancyRow], children: list[ChildRow], screening_totals: dict[str, Any],
            start: dt.date, end: dt.date, on: dt.date, values: dict[str, Any]) -> list[Figure]:
    """Every figure from the rows (``values``: the maternal_child rule values)."""
    f, pv, checks = values["mch_figures"], values["pregnancy_visits"], values["child_checks"]
    return [early_booking(pregnancies, start, end, f), antenatal_checks(pregnancies, start, end, f, pv),
            postpartum_visits(pregnancies, start, end, f, pv),
            child_management(children, start, end, on, checks, int(f["system_management_under_months"]),
                             "child_system_management", "3岁以下儿童系统管理率", "Under-3 systematic management rate"),
            child_management(children, start, end, on, checks, int(f["health_management_under_months"]),
                             "child_health_management", "7岁以下儿童健康管理率", "Under-7 health management rate"),
            *screening_figures(screening_totals)]


def _date(v: Any) -> dt.date | None:
    if v is None or isinstance(v, dt.date):
        return v
    return dt.date.fromisoformat(str(v)[:10])


def mch_figures(session: Session, organization_id: str | None, period: str) -> dict[str, Any]:
    """The figures of ``period`` (2026 or 2026-10) for an institution (None: all). No principal: the caller
    checks access. ValueError for a malformed period; the rule values must be seeded."""
    from onetrip.maternal_child.screening import totals

    start, end = period_bounds(period)
    on = clock.local_date(clock.utcnow())
    keys = ("mch_figures", "pregnancy_visits", "child_checks")
    values = rule_values(session, RULE_SET, on=min(end, on))  # the rules in force at the period's end …
    if not all(values.get(k) for k in keys):  # … or, for a period before any rule, today's
        values = rule_values(session, RULE_SET, on=on)
    for k in keys:
        if not values.get(k):
            raise Conflict(f"规则值 maternal_child.{k} 缺失 / the rule value maternal_child.{k} is missing: run "
                           "`onetrip rules seed`")
    preg = [PregnancyRow(_date(r[0]), _date(r[1]), _date(r[2]), _date(r[3]), r[4], int(r[5] or 0), _date(r[6]))
            for r in repo.figure_pregnancy_rows(session, organization_id, start, end)]
    oldest = max(int(values["mch_figures"]["system_management_under_months"]),
                 int(values["mch_figures"]["health_management_under_months"]))
    done: dict[str, set[str]] = {}
    births: dict[str, dt.date] = {}
    for pid, birth, key in repo.figure_child_rows(session, organization_id, rules.add_months_to(end, -oldest), end):
        births[pid] = _date(birth)
        done.setdefault(pid, set()).add(key)
    children = [ChildRow(pid, births[pid], frozenset(keys)) for pid, keys in done.items()]
    figs = compute(preg, children, totals(session, organization_id, min(end, on)), start, end, on, values)
    return {"period": period, "from": start.isoformat(), "to": end.isoformat(), "organization": organization_id,
            "figures": [f.as_dict() for f in figs]}
