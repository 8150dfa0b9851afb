"""The R11.3 child check plan as rule data and its pure functions: each check's window and its state on a day
(done / due / overdue / upcoming), at every boundary. The windows come from the seeded rule values
child_checks and child_screenings (read from the seed file, as `onetrip rules seed` inserts them)."""

from __future__ import annotations

import datetime as dt
import json
from importlib import resources

import pytest

from onetrip.maternal_child import rules

BIRTH = dt.date(2024, 1, 31)  # a month-end birthday: months are clipped (29 Feb, 30 Apr …)
D = dt.timedelta(days=1)


def _seed(key: str):
    data = json.loads(resources.files("onetrip.db.seeds").joinpath("rules_maternal_child.json").read_text("utf-8"))
    return next(r["value"] for r in data if r["key"] == key and r["rule_set"] == "maternal_child")


CHECKS, SCREENINGS = _seed("child_checks"), _seed("child_screenings")


def windows(discharge: dt.date | None = None) -> dict[str, rules.ChildCheckWindow]:
    return {w.key: w for w in rules.child_check_windows(BIRTH, CHECKS, SCREENINGS, discharge)}


def state(key: str, on: dt.date, done=(), discharge=None) -> str:
    ws = rules.child_check_windows(BIRTH, CHECKS, SCREENINGS, discharge)
    return next(s for w, s, _ in rules.child_check_states(ws, list(done), on) if w.key == key)


def test_the_plan_has_every_r11_3_check_and_screening():
    assert [c["key"] for c in CHECKS] == ["newborn", "m1", "m3", "m6", "m8", "m12", "m18", "m24", "m30", "m36",
                                          "y4", "y5", "y6"]
    months = {c["key"]: c.get("months") for c in CHECKS}
    assert [months[k] for k in ("m3", "m6", "m8", "m12", "m18", "m24", "m30", "m36", "y4", "y5", "y6")] == \
        [3, 6, 8, 12, 18, 24, 30, 36, 48, 60, 72]
    assert {s["key"]: s["kind"] for s in SCREENINGS} == {
        "hb_6_8": "hb", "hb_18": "hb", "hb_30": "hb",
        "hearing_6": "hearing", "hearing_12": "hearing", "hearing_24": "hearing", "hearing_36": "hearing"}


def test_windows_follow_r11_3():
    w = windows(discharge=dt.date(2024, 2, 3))
    assert (w["newborn"].start, w["newborn"].end) == (dt.date(2024, 2, 3), dt.date(2024, 2, 10))  # within 7 days
    assert (w["m1"].start, w["m1"].end) == (BIRTH + 28 * D, BIRTH + 30 * D)  # 满月 28–30 days
    assert w["m3"].target == dt.date(2024, 4, 30)  # 31 April does not exist
    assert w["m6"].target == dt.date(2024, 7, 31) and w["m24"].target == dt.date(2026, 1, 31)
    assert (w["hb_6_8"].start, w["hb_6_8"].end) == (dt.date(2024, 7, 31), dt.date(2024, 10, 30))  # 6 to 8 months
    assert (w["hb_18"].start, w["hb_18"].end) == (w["m18"].start, w["m18"].end)
    assert (w["hearing_36"].start, w["hearing_36"].end) == (w["m36"].start, w["m36"].end)
    assert w["y6"].target == dt.date(2030, 1, 31)
    # without a discharge date the newborn visit counts from birth
    assert windows()["newborn"].start == BIRTH


@pytest.mark.parametrize("key", [c["key"] for c in CHECKS] + [s["key"] for s in SCREENINGS])
def test_every_boundary(key):
    w = windows()[key]
    assert state(key, w.start - D) == "upcoming"
    assert state(key, w.start) == "due"
    assert state(key, w.end) == "due"
    assert state(key, w.end + D) == "overdue"


def test_newborn_boundaries_from_discharge():
    discharge = dt.date(2024, 2, 5)
    assert state("newborn", discharge - D, discharge=discharge) == "upcoming"
    assert state("newborn", discharge + 7 * D, discharge=discharge) == "due"
    assert state("newborn", discharge + 8 * D, discharge=discharge) == "overdue"


def test_manyue_28_to_30_days():
    assert state("m1", BIRTH + 27 * D) == "upcoming"
    assert state("m1", BIRTH + 28 * D) == "due"
    assert state("m1", BIRTH + 30 * D) == "due"
    assert state("m1", BIRTH + 31 * D) == "overdue"


def test_a_check_recorded_is_done_whenever_it_was():
    w = windows()["m12"]
    late = (("m12", w.end + 10 * D, False, False),)
    assert state("m12", w.end + 20 * D, late) == "done"
    assert state("m18", w.end + 20 * D, late) != "done"  # only its own key
    ws = rules.child_check_windows(BIRTH, CHECKS, SCREENINGS)
    done_on = next(when for x, _s, when in rules.child_check_states(ws, list(late), w.end + 20 * D) if x.key == "m12")
    assert done_on == w.end + 10 * D


def test_a_screening_is_done_by_a_result_from_its_window_until_the_next_screening_of_its_kind():
    w = windows()
    hb_early = ("m3", w["hb_6_8"].start - D, True, False)  # before the window: does not count
    assert state("hb_6_8", w["hb_6_8"].end + D, [hb_early]) == "overdue"
    hb_in = ("m6", w["hb_6_8"].start, True, False)
    assert state("hb_6_8", w["hb_6_8"].end + D, [hb_in]) == "done"
    hb_late = ("m12", w["hb_6_8"].end + 30 * D, True, False)  # late but before hb_18's window
    assert state("hb_6_8", w["hb_6_8"].end + 40 * D, [hb_late]) == "done"
    assert state("hb_18", w["hb_18"].start, [hb_late]) == "due"  # the late Hb does not also count for 18 months
    hb_at_18 = ("m18", w["hb_18"].start, True, False)
    assert state("hb_6_8", w["hb_18"].start, [hb_at_18]) == "overdue"  # in hb_18's window: it is hb_18's
    assert state("hb_18", w["hb_18"].start, [hb_at_18]) == "done"
    # a check without the result does not do a screening; a hearing result does not do an Hb
    assert state("hearing_6", w["m6"].end + D, [("m6", w["m6"].target, True, False)]) == "overdue"
    assert state("hearing_6", w["m6"].end + D, [("m6", w["m6"].target, False, True)]) == "done"


def test_add_months_clips_to_month_end():
    assert rules.add_months_to(dt.date(2024, 1, 31), 1) == dt.date(2024, 2, 29)
    assert rules.add_months_to(dt.date(2023, 1, 31), 1) == dt.date(2023, 2, 28)
    assert rules.add_months_to(dt.date(2024, 3, 15), -12 * 7) == dt.date(2017, 3, 15)
