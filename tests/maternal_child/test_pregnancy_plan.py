"""Pregnancy dating and the visit plan (RULES R11.1), pure: gestational age, Naegele's EDD corrected by an early
ultrasound, and each window's state on days around every boundary (12w6d/13w0d, 15w6d/16w0d, 20w6d/21w0d,
24w6d/25w0d, 27w6d/28w0d, 36w6d/37w0d, 40w0d/40w6d/41w0d; the postpartum visit on days 7/8 after discharge;
the 42-day check on days 41/42 and its closing day)."""

from __future__ import annotations

import datetime as dt
import json
from importlib import resources

import pytest

from onetrip.maternal_child import rules
from onetrip.maternal_child.rules import DatingScan, Visit

SEED = {r["key"]: r["value"] for r in json.loads(
    resources.files("onetrip.db.seeds").joinpath("rules_maternal_child.json").read_text("utf-8"))}
VISITS = SEED["pregnancy_visits"]
US = SEED["edd_ultrasound"]
LMP = dt.date(2026, 1, 1)
EDD = dt.date(2026, 10, 8)  # LMP + 280 days


def ga(weeks: int, days: int = 0) -> dt.date:
    return LMP + dt.timedelta(days=7 * weeks + days)


def states(today: dt.date, visits: list[Visit] = (), booked_on: dt.date = LMP + dt.timedelta(days=42), **kw
           ) -> dict[str, str]:
    return {w.key: w.state for w in rules.plan(EDD, booked_on, list(visits), today, VISITS, **kw)}


def test_seeded_plan_is_r11_1():
    assert [(w["from_week"], w["to_week"]) for w in VISITS["antenatal"]] == [(0, 12), (16, 20), (21, 24), (28, 36),
                                                                             (37, 40)]
    assert VISITS["min_antenatal"] == 5 and VISITS["postpartum"]["within_days"] == 7
    assert VISITS["day42"]["from_day"] == 42


def test_naegele_and_gestational_age():
    assert rules.naegele(LMP) == EDD
    assert rules.gestational_age(EDD, ga(12, 6)) == (12, 6)
    assert rules.gestational_age(EDD, ga(13)) == (13, 0)
    assert rules.gestational_age(EDD, EDD) == (40, 0)
    assert rules.gestational_age(EDD, LMP) == (0, 0)


@pytest.mark.parametrize(("scan_ga", "scan_on", "source", "edd"), [
    # scan at 9w0d by LMP dating; measured 9w0d: agrees
    ((9, 0), ga(9), "lmp", EDD),
    # measured 10w0d: 7 days more: within tolerance, LMP kept
    ((10, 0), ga(9), "lmp", EDD),
    # measured 10w1d: 8 days more: the ultrasound dates the pregnancy (8 days earlier EDD)
    ((10, 1), ga(9), "ultrasound", EDD - dt.timedelta(days=8)),
    # measured 7w6d at 9w0d by LMP: 8 days less: EDD 8 days later
    ((7, 6), ga(9), "ultrasound", EDD + dt.timedelta(days=8)),
    # measured 8w0d: exactly 7 days less: LMP kept
    ((8, 0), ga(9), "lmp", EDD),
    # a scan at 13w6d measured (before 14 weeks) still dates
    ((13, 6), ga(12), "ultrasound", ga(12) + dt.timedelta(days=280 - 97)),
    # a scan measuring 14w0d is too late to date: LMP kept though 14 days apart
    ((14, 0), ga(12), "lmp", EDD),
])
def test_edd_corrected_by_early_ultrasound(scan_ga, scan_on, source, edd):
    got = rules.due_date(LMP, DatingScan(scan_on, *scan_ga), US)
    assert got == (edd, source)
    if source == "ultrasound":  # on the scan day the new dating gives the measured age
        assert rules.gestational_age(got[0], scan_on) == scan_ga


def test_no_scan_is_naegele():
    assert rules.due_date(LMP, None, US) == (EDD, "lmp")


@pytest.mark.parametrize(("today", "key", "state"), [
    (ga(12, 6), "first", "due"),
    (ga(13, 0), "first", "overdue"),
    (ga(15, 6), "w16_20", "upcoming"),
    (ga(16, 0), "w16_20", "due"),
    (ga(20, 6), "w16_20", "due"),
    (ga(21, 0), "w16_20", "overdue"),
    (ga(20, 6), "w21_24", "upcoming"),
    (ga(21, 0), "w21_24", "due"),
    (ga(24, 6), "w21_24", "due"),
    (ga(25, 0), "w21_24", "overdue"),
    (ga(27, 6), "w28_36", "upcoming"),
    (ga(28, 0), "w28_36", "due"),
    (ga(36, 6), "w28_36", "due"),
    (ga(37, 0), "w28_36", "overdue"),
    (ga(36, 6), "w37_40", "upcoming"),
    (ga(37, 0), "w37_40", "due"),
    (ga(40, 0), "w37_40", "due"),
    (ga(40, 6), "w37_40", "due"),
    (ga(41, 0), "w37_40", "overdue"),
])
def test_antenatal_window_boundaries(today, key, state):
    assert states(today)[key] == state


@pytest.mark.parametrize(("visit_on", "key", "done"), [
    (ga(12, 6), "first", True), (ga(13, 0), "first", False),
    (ga(15, 6), "w16_20", False), (ga(16, 0), "w16_20", True), (ga(20, 6), "w16_20", True),
    (ga(21, 0), "w16_20", False), (ga(21, 0), "w21_24", True), (ga(24, 6), "w21_24", True),
    (ga(27, 6), "w28_36", False), (ga(28, 0), "w28_36", True), (ga(36, 6), "w28_36", True),
    (ga(37, 0), "w28_36", False), (ga(37, 0), "w37_40", True), (ga(40, 0), "w37_40", True),
])
def test_a_visit_completes_only_its_window(visit_on, key, done):
    got = {w.key: w for w in rules.plan(EDD, ga(6), [Visit("antenatal", visit_on)], ga(41, 1), VISITS)}
    assert (got[key].state == "done") is done
    assert (got[key].visit_date == visit_on) is done


def test_window_ended_before_booking_is_missed_not_overdue():
    # booked at 22w0d: the first check and 16–20 ended before booking
    s = states(ga(22, 0), booked_on=ga(22, 0))
    assert s["first"] == "missed" and s["w16_20"] == "missed" and s["w21_24"] == "due"
    # booked on the last day of 16–20: that window can still be done
    assert states(ga(20, 6), booked_on=ga(20, 6))["w16_20"] == "due"


def test_postpartum_windows_follow_discharge_and_delivery():
    delivered, discharged = ga(39, 2), ga(39, 5)
    before = states(ga(39, 0))
    assert before["postpartum"] == "upcoming" and before["day42"] == "upcoming"
    kw = {"delivered_on": delivered, "discharged_on": discharged}
    day = lambda n: discharged + dt.timedelta(days=n)  # noqa: E731
    assert states(day(0), **kw)["postpartum"] == "due"
    assert states(day(7), **kw)["postpartum"] == "due"
    assert states(day(8), **kw)["postpartum"] == "overdue"
    done = rules.plan(EDD, ga(6), [Visit("postpartum", day(7))], day(8), VISITS, **kw)
    assert {w.key: w.state for w in done}["postpartum"] == "done"
    late = rules.plan(EDD, ga(6), [Visit("postpartum", day(8))], day(9), VISITS, **kw)
    assert {w.key: w.state for w in late}["postpartum"] == "overdue"
    after = lambda n: delivered + dt.timedelta(days=n)  # noqa: E731
    assert states(after(41), **kw)["day42"] == "upcoming"
    assert states(after(42), **kw)["day42"] == "due"
    last = VISITS["day42"]["to_day"]
    assert states(after(last), **kw)["day42"] == "due"
    assert states(after(last + 1), **kw)["day42"] == "overdue"
    d42 = rules.plan(EDD, ga(6), [Visit("day42", after(42))], after(60), VISITS, **kw)
    assert {w.key: w.state for w in d42}["day42"] == "done"
    # antenatal windows: the undone 37–40 window the delivery fell in is not needed; none is overdue
    s = states(after(1), **kw)
    assert s["w37_40"] == "not_needed" and "overdue" not in {s[k] for k in ("first", "w16_20", "w37_40")}


def test_preterm_delivery_makes_later_windows_not_needed():
    s = states(ga(31), delivered_on=ga(30), discharged_on=ga(30, 3), visits=[Visit("antenatal", ga(29))])
    assert s["w28_36"] == "done" and s["w37_40"] == "not_needed"


def test_five_antenatal_checks():
    v = [Visit("antenatal", ga(w)) for w in (10, 18, 22, 30)]
    assert not rules.antenatal_count_met(v, VISITS)
    assert rules.antenatal_count_met([*v, Visit("antenatal", ga(38))], VISITS)
    assert not rules.antenatal_count_met([*v, Visit("postpartum", ga(41))], VISITS)


def test_lmp_problems():
    today = dt.date(2026, 6, 1)
    assert rules.lmp_problem(today + dt.timedelta(days=1), today, 44) == "future"
    assert rules.lmp_problem(today, today, 44) is None
    assert rules.lmp_problem(today - dt.timedelta(days=44 * 7), today, 44) is None
    assert rules.lmp_problem(today - dt.timedelta(days=44 * 7 + 1), today, 44) == "too_old"


def test_age_on_birthday():
    assert rules.age_on(dt.date(1991, 3, 10), dt.date(2026, 3, 9)) == 34
    assert rules.age_on(dt.date(1991, 3, 10), dt.date(2026, 3, 10)) == 35
