"""Itinerary rules I1–I6: each has a scenario where the best itinerary *without* the rule breaks it —
so the test fails if the rule is removed (the rule-off run shows the scenario bites) — and a property
test that CP-SAT's answers never break a rule."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onetrip.kit.clock import local_datetime, local_hhmm
from onetrip.scheduling import itinerary, rules
from onetrip.scheduling.itinerary import Candidate, plan
from onetrip.scheduling.rules import Exam, Placed, RuleParams

D0 = dt.date(2026, 12, 1)
ON = RuleParams()


def at(day: int, hhmm: str, minutes: int, sid: str | None = None) -> Candidate:
    start = local_datetime(D0 + dt.timedelta(days=day), hhmm)
    return Candidate(sid or f"{day}-{hhmm}-{minutes}", start, start + dt.timedelta(minutes=minutes), "r", "o", 1)


def exam(key: str, *tags: str, minutes: int = 20) -> Exam:
    return Exam(key, key, minutes, frozenset(tags))


def solve(exams, cands, p=ON):
    out = plan(exams, cands, p, time_limit_ms=2000)
    assert out.solver == "cp-sat" and out.placements, out
    return out


def test_i1_fasting_exam_in_the_morning():
    exams = [exam("us", "fasting"), exam("ct")]
    cands = {"us": [at(0, "14:00", 15), at(1, "08:00", 15)], "ct": [at(0, "14:30", 20)]}
    off = solve(exams, cands, dataclasses.replace(ON, fasting_morning=False))
    assert off.trips == 1 and local_hhmm(off.placements["us"].start) == "14:00"  # the scenario bites
    on = solve(exams, cands)
    assert local_hhmm(on.placements["us"].start) <= ON.fasting_latest_start and on.trips == 2
    assert any(e["rule"] == "I1" for e in on.explanation)


def test_i2_fasting_exam_before_the_fast_is_broken():
    exams = [exam("fast", "fasting"), exam("meal", "breaks_fast")]
    cands = {"meal": [at(0, "08:00", 20)], "fast": [at(0, "08:40", 15), at(1, "08:00", 15)]}
    off = solve(exams, cands, dataclasses.replace(ON, fasting_before_fast_breaking=False))
    assert off.trips == 1
    on = solve(exams, cands)
    assert on.placements["fast"].start.date() != on.placements["meal"].start.date()
    assert not rules.violations([Placed(k, e.tags, on.placements[k].start, on.placements[k].end)
                                 for k, e in {x.key: x for x in exams}.items()], ON)


def test_i3_abdominal_ultrasound_before_gi_endoscopy():
    exams = [exam("us", "abdominal_us"), exam("es", "gi_endoscopy", minutes=30)]
    cands = {"es": [at(0, "08:00", 30), at(1, "09:00", 30)], "us": [at(0, "09:00", 15), at(1, "08:00", 15)]}
    off = solve(exams, cands, dataclasses.replace(ON, us_before_endoscopy=False))
    assert off.placements["es"].start < off.placements["us"].start
    on = solve(exams, cands)
    assert on.placements["us"].end <= on.placements["es"].start and on.trips == 1
    assert any(e["rule"] == "I3" for e in on.explanation)


def test_i4_no_abdominal_ct_within_days_after_barium():
    exams = [exam("ba", "barium"), exam("ct", "abdominal_ct")]
    cands = {"ba": [at(0, "08:00", 20)], "ct": [at(0, "09:00", 20), at(3, "08:00", 20), at(8, "08:00", 20)]}
    off = solve(exams, cands, dataclasses.replace(ON, barium_ct_days=0))
    assert off.trips == 1
    on = solve(exams, cands)
    assert on.placements["ct"].start >= on.placements["ba"].start + dt.timedelta(days=7)


def test_i4_against_a_booked_barium_study():
    history = [Placed("old", frozenset({"barium"}), at(0, "08:00", 20).start, at(0, "08:00", 20).end)]
    exams = [exam("ct", "abdominal_ct")]
    out = plan(exams, {"ct": [at(2, "08:00", 20), at(9, "08:00", 20)]}, ON, history)
    assert out.placements["ct"].start.date() == at(9, "08:00", 20).start.date()


def test_i5_iodinated_contrast_days_apart():
    exams = [exam("c1", "iodinated_contrast"), exam("c2", "iodinated_contrast")]
    cands = {k: [at(0, "08:00", 20, f"{k}a"), at(0, "09:00", 20, f"{k}b"), at(8, "08:00", 20, f"{k}c")]
             for k in ("c1", "c2")}
    off = solve(exams, cands, dataclasses.replace(ON, contrast_days=0))
    assert off.trips == 1
    on = solve(exams, cands)
    assert abs((on.placements["c1"].start - on.placements["c2"].start).days) >= 7 and on.trips == 2


def test_i5_against_a_booked_contrast_dose():
    history = [Placed("old", frozenset({"iodinated_contrast"}), at(0, "08:00", 20).start, at(0, "08:00", 20).end)]
    out = plan([exam("c", "iodinated_contrast")], {"c": [at(3, "08:00", 20), at(7, "08:00", 20)]}, ON, history)
    assert out.placements["c"].start == at(7, "08:00", 20).start


def test_i6_minimum_gap_between_exams():
    exams = [exam("a"), exam("b")]
    cands = {"a": [at(0, "08:00", 20)], "b": [at(0, "08:25", 15), at(0, "08:40", 15)]}
    off = solve(exams, cands, dataclasses.replace(ON, min_gap_minutes=0))
    assert local_hhmm(off.placements["b"].start) == "08:25"
    on = solve(exams, cands)
    assert local_hhmm(on.placements["b"].start) == "08:40"


def test_fewest_trips_then_least_time_on_site():
    exams = [exam("a"), exam("b"), exam("c")]
    cands = {"a": [at(0, "08:00", 20), at(1, "08:00", 20)], "b": [at(0, "10:00", 20), at(1, "08:40", 20)],
             "c": [at(1, "09:20", 20), at(2, "08:00", 20)]}
    out = solve(exams, cands)
    assert out.trips == 1 and out.onsite_minutes == 100  # all on day 1: 08:00 → 09:40
    assert out.explanation[0]["rule"] == "trips" and "1" in out.explanation[0]["en"]


def test_infeasible_and_greedy_fallback():
    exams = [exam("c1", "iodinated_contrast"), exam("c2", "iodinated_contrast")]
    cands = {k: [at(0, "08:00", 20, f"{k}a"), at(1, "08:00", 20, f"{k}b")] for k in ("c1", "c2")}
    out = plan(exams, cands, ON)
    assert not out.placements and out.status == "infeasible" and out.explanation
    g = plan([exam("a"), exam("b")], {"a": [at(0, "08:00", 20)], "b": [at(0, "09:00", 20)]}, ON, use_cp_sat=False)
    assert g.solver == "greedy" and g.trips == 1


def test_first_available_baseline_ignores_rules():
    exams = [exam("es", "gi_endoscopy"), exam("us", "abdominal_us")]
    cands = {"es": [at(0, "08:00", 30)], "us": [at(0, "09:00", 15)]}
    chosen = itinerary.first_available(exams, cands)
    placed = [Placed(k, e.tags, chosen[k].start, chosen[k].end) for k, e in {x.key: x for x in exams}.items()]
    assert [v.rule for v in rules.violations(placed, ON)] == ["I3"]


# --- property: CP-SAT never returns an itinerary that breaks a rule --------------------------------------

TAG_SETS = [(), ("fasting",), ("fasting", "abdominal_us"), ("fasting", "gi_endoscopy"), ("gi_endoscopy",),
            ("fasting", "barium", "breaks_fast"), ("abdominal_ct", "iodinated_contrast", "fasting"),
            ("iodinated_contrast",), ("breaks_fast",)]
TIMES = ["08:00", "08:20", "08:40", "09:00", "09:30", "10:00", "11:00", "13:30", "14:00", "15:00", "16:00"]


@st.composite
def problems(draw):
    n = draw(st.integers(1, 4))
    exams = [Exam(f"e{i}", f"X{i}", 20, frozenset(draw(st.sampled_from(TAG_SETS)))) for i in range(n)]
    shared = [at(d, t, 20, f"s{d}{t}") for d in range(12) for t in TIMES]
    cands = {e.key: draw(st.lists(st.sampled_from(shared), min_size=1, max_size=25, unique=True)) for e in exams}
    p = RuleParams(fasting_morning=draw(st.booleans()), fasting_before_fast_breaking=draw(st.booleans()),
                   us_before_endoscopy=draw(st.booleans()), barium_ct_days=draw(st.sampled_from([0, 3, 7])),
                   contrast_days=draw(st.sampled_from([0, 7])), min_gap_minutes=draw(st.sampled_from([0, 15, 30])))
    return exams, cands, p


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_cp_sat_never_breaks_a_rule(problem):
    exams, cands, p = problem
    pruned = itinerary._prune(exams, cands, p, [])
    if any(not v for v in pruned.values()):
        return
    chosen, _status = itinerary._cp_sat(exams, pruned, p, 500, None)
    for result in (chosen, itinerary.greedy(exams, cands, p)):
        if result is None:
            continue
        placed = [Placed(e.key, e.tags, result[e.key].start, result[e.key].end) for e in exams]
        assert rules.violations(placed, p) == []
        slots = [c.slot_id for c in result.values()]
        assert len(slots) == len(set(slots))  # one place per slot here (free = 1)
        for e in exams:
            assert result[e.key] in cands[e.key]


@pytest.mark.parametrize("values,expected", [
    ({}, RuleParams()),
    ({"I4_barium_ct_days": 0, "I6_min_gap_minutes": 5}, RuleParams(barium_ct_days=0, min_gap_minutes=5)),
])
def test_params_from_rule_table(values, expected):
    assert RuleParams.from_rule_values(values) == expected
