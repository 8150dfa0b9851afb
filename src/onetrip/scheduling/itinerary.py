"""Multi-exam itinerary (一次就诊，多项检查): place a patient's pending exams into free slots so that
they come as few times (days) as possible, then spend as little time on site as possible, then as
early as possible — honouring the rules in rules.py.

Solved with OR-Tools CP-SAT under a time limit; if CP-SAT proves nothing in time (or is unavailable)
a greedy placement answers instead. Whatever answers, the result is re-checked with
``rules.violations``; a proposal that breaks a rule is never returned.

Pure: the caller (service.py) gathers candidates from the database and passes plain data in.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from onetrip.kit.clock import local_date
from onetrip.scheduling import rules
from onetrip.scheduling.rules import Exam, Placed, RuleParams

# Lexicographic objective weights: trips ≫ minutes on site ≫ lateness (sum of start minutes).
W_TRIPS, W_ONSITE = 1_000_000_000, 100_000


@dataclass(frozen=True)
class Candidate:
    slot_id: str
    start: dt.datetime
    end: dt.datetime
    resource_id: str = ""
    organization_id: str = ""
    free: int = 1  # places this patient may take (general places, or reserved ones for its purpose)


@dataclass
class Proposal:
    placements: dict[str, Candidate]  # exam key → slot
    solver: str  # cp-sat | greedy | none
    status: str  # optimal | feasible | fallback | infeasible
    trips: int = 0
    onsite_minutes: int = 0
    solve_ms: float = 0.0
    explanation: list[dict[str, str]] = field(default_factory=list)
    unplaced: list[str] = field(default_factory=list)


def _placed(exams: Sequence[Exam], placements: dict[str, Candidate]) -> list[Placed]:
    by_key = {e.key: e for e in exams}
    return [Placed(k, by_key[k].tags, c.start, c.end) for k, c in placements.items()]


def measure(placements: dict[str, Candidate]) -> tuple[int, int]:
    """(trips, minutes on site): distinct local days, and per day last end − first start, summed."""
    per_day: dict[dt.date, list[Candidate]] = defaultdict(list)
    for c in placements.values():
        per_day[local_date(c.start)].append(c)
    onsite = sum(int((max(c.end for c in cs) - min(c.start for c in cs)).total_seconds() // 60)
                 for cs in per_day.values())
    return len(per_day), onsite


def _prune(exams: Sequence[Exam], candidates: dict[str, list[Candidate]], p: RuleParams,
           history: Sequence[Placed]) -> dict[str, list[Candidate]]:
    """Drop full slots and slots a single-exam rule forbids; of slots at the same time at the same
    institution (two CT scanners at 08:00) keep the one with most places — they are the same to the
    patient, and the model gets several times smaller."""
    out = {}
    for e in exams:
        best: dict[tuple, Candidate] = {}
        for c in candidates.get(e.key, []):
            if c.free > 0 and rules.slot_allowed(e.tags, c.start, p, history):
                k = (c.start, c.end, c.organization_id)
                if k not in best or c.free > best[k].free:
                    best[k] = c
        out[e.key] = sorted(best.values(), key=lambda c: c.start)
    return out


def _focus(exams: Sequence[Exam], pruned: dict[str, list[Candidate]], p: RuleParams,
           day_window: int) -> dict[str, list[Candidate]] | None:
    """A smaller model: only the days that are among some exam's first ``day_window`` available days.
    Every exam keeps its own earliest days, and any day another exam could also use, so one-trip and
    few-trip itineraries stay reachable. Not used when a rule asks for days apart (I4, I5) — those need
    the whole horizon. None when it would not shrink anything."""
    tags = [e.tags for e in exams]
    if any(rules.i4_applies(a, b, p) or rules.i5_applies(a, b, p)
           for i, a in enumerate(tags) for j, b in enumerate(tags) if i != j):
        return None
    days: set[dt.date] = set()
    for e in exams:
        days |= set(sorted({local_date(c.start) for c in pruned[e.key]})[:day_window])
    focused = {k: [c for c in cs if local_date(c.start) in days] for k, cs in pruned.items()}
    return focused if sum(map(len, focused.values())) < sum(map(len, pruned.values())) else None


def _precedence_rank(e: Exam) -> int:
    """Greedy order: what must come first (fasting, ultrasound, barium) before what must come later."""
    if rules.ABDOMINAL_US in e.tags:
        return 0
    if rules.FASTING in e.tags and rules.BREAKS_FAST not in e.tags:
        return 1
    if rules.BREAKS_FAST in e.tags or rules.BARIUM in e.tags:
        return 2
    if rules.GI_ENDOSCOPY in e.tags:
        return 3
    return 4


def greedy(exams: Sequence[Exam], candidates: dict[str, list[Candidate]], p: RuleParams,
           history: Sequence[Placed] = ()) -> dict[str, Candidate] | None:
    """Place exams one by one, in precedence order, each into the earliest slot that keeps every rule,
    preferring days already chosen (fewer trips). None if some exam cannot be placed."""
    pruned = _prune(exams, candidates, p, history)
    chosen: dict[str, Candidate] = {}
    used: dict[str, int] = defaultdict(int)
    for e in sorted(exams, key=lambda x: (_precedence_rank(x), -x.duration_minutes, x.key)):
        days = {local_date(c.start) for c in chosen.values()}
        options = sorted(pruned[e.key], key=lambda c: (local_date(c.start) not in days, c.start))
        for c in options:
            if used[c.slot_id] >= c.free:
                continue
            trial = {**chosen, e.key: c}
            if not rules.violations(_placed(exams, trial), p, history):
                chosen[e.key] = c
                used[c.slot_id] += 1
                break
        else:
            return None
    return chosen


def first_available(exams: Sequence[Exam], candidates: dict[str, list[Candidate]]) -> dict[str, Candidate]:
    """The baseline a booking desk without an itinerary gives: each exam, in order, in its earliest free
    slot that does not overlap another of the patient's exams — no rules, no trip-minimising."""
    chosen: dict[str, Candidate] = {}
    used: dict[str, int] = defaultdict(int)
    for e in exams:
        for c in sorted(candidates.get(e.key, []), key=lambda c: c.start):
            if c.free - used[c.slot_id] <= 0:
                continue
            if any(not (c.end <= o.start or o.end <= c.start) for o in chosen.values()):
                continue
            chosen[e.key] = c
            used[c.slot_id] += 1
            break
    return chosen


def _cp_sat(exams: Sequence[Exam], pruned: dict[str, list[Candidate]], p: RuleParams, time_limit_ms: int,
            hint: dict[str, Candidate] | None) -> tuple[dict[str, Candidate] | None, str]:
    from ortools.sat.python import cp_model

    all_c = [c for cs in pruned.values() for c in cs]
    origin_day = min(local_date(c.start) for c in all_c)
    origin = min(c.start for c in all_c)
    horizon = int((max(c.end for c in all_c) - origin).total_seconds() // 60) + 1
    gap = p.min_gap_minutes

    def minutes(t: dt.datetime) -> int:
        return int((t - origin).total_seconds() // 60)

    def day(c: Candidate) -> int:
        return (local_date(c.start) - origin_day).days

    ndays = max(day(c) for c in all_c) + 1
    m = cp_model.CpModel()
    x: dict[str, list[tuple[object, Candidate]]] = {}
    start, end, dayv = {}, {}, {}
    for e in exams:
        x[e.key] = [(m.NewBoolVar(f"x_{e.key}_{i}"), c) for i, c in enumerate(pruned[e.key])]
        m.AddExactlyOne(v for v, _ in x[e.key])
        start[e.key] = sum(v * minutes(c.start) for v, c in x[e.key])
        end[e.key] = sum(v * minutes(c.end) for v, c in x[e.key])
        dayv[e.key] = sum(v * day(c) for v, c in x[e.key])
    by_slot: dict[str, list] = defaultdict(list)
    free: dict[str, int] = {}
    for e in exams:
        for v, c in x[e.key]:
            by_slot[c.slot_id].append(v)
            free[c.slot_id] = c.free
    for sid, vs in by_slot.items():
        if len(vs) > 1:
            m.Add(sum(vs) <= free[sid])

    keys = [e.key for e in exams]
    tags = {e.key: e.tags for e in exams}
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            sd = m.NewBoolVar(f"sd_{a}_{b}")
            m.Add(dayv[a] == dayv[b]).OnlyEnforceIf(sd)
            m.Add(dayv[a] != dayv[b]).OnlyEnforceIf(sd.Not())
            order = m.NewBoolVar(f"o_{a}_{b}")  # I6: on one day, one after the other with the gap
            m.Add(end[a] + gap <= start[b]).OnlyEnforceIf([sd, order])
            m.Add(end[b] + gap <= start[a]).OnlyEnforceIf([sd, order.Not()])
            for x1, x2 in ((a, b), (b, a)):
                if rules.i2_applies(tags[x1], tags[x2], p):
                    m.Add(end[x1] + gap <= start[x2]).OnlyEnforceIf(sd)
                if rules.i3_applies(tags[x1], tags[x2], p):
                    m.Add(end[x1] + gap <= start[x2])
                if rules.i4_applies(tags[x1], tags[x2], p):
                    before = m.NewBoolVar(f"i4_{x1}_{x2}")
                    m.Add(start[x2] < start[x1]).OnlyEnforceIf(before)
                    m.Add(start[x2] >= start[x1] + p.barium_ct_days * 1440).OnlyEnforceIf(before.Not())
            if rules.i5_applies(tags[a], tags[b], p):
                later = m.NewBoolVar(f"i5_{a}_{b}")
                m.Add(dayv[b] - dayv[a] >= p.contrast_days).OnlyEnforceIf(later)
                m.Add(dayv[a] - dayv[b] >= p.contrast_days).OnlyEnforceIf(later.Not())

    trips, onsite = [], []
    for d in range(ndays):
        on_d = {k: [v for v, c in x[k] if day(c) == d] for k in keys}
        if not any(on_d.values()):
            continue
        used = m.NewBoolVar(f"used_{d}")
        lo, hi = m.NewIntVar(0, horizon, f"lo_{d}"), m.NewIntVar(0, horizon, f"hi_{d}")
        for k in keys:
            if not on_d[k]:
                continue
            y = m.NewBoolVar(f"y_{k}_{d}")
            m.Add(y == sum(on_d[k]))
            m.AddImplication(y, used)
            m.Add(lo <= start[k]).OnlyEnforceIf(y)
            m.Add(hi >= end[k]).OnlyEnforceIf(y)
        m.Add(hi >= lo)
        m.Add(hi == lo).OnlyEnforceIf(used.Not())
        trips.append(used)
        onsite.append(hi - lo)
    m.Minimize(W_TRIPS * sum(trips) + W_ONSITE * sum(onsite) + sum(start[k] for k in keys))
    if hint:
        for k in keys:
            for v, c in x[k]:
                m.AddHint(v, hint.get(k) is not None and hint[k].slot_id == c.slot_id)
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(time_limit_ms, 1) / 1000
    solver.parameters.num_workers = 2
    status = solver.Solve(m)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None, "infeasible" if status == cp_model.INFEASIBLE else "timeout"
    out = {k: next(c for v, c in x[k] if solver.BooleanValue(v)) for k in keys}
    return out, "optimal" if status == cp_model.OPTIMAL else "feasible"


def plan(exams: Sequence[Exam], candidates: dict[str, list[Candidate]], p: RuleParams,
         history: Sequence[Placed] = (), *, time_limit_ms: int = 250, use_cp_sat: bool = True,
         day_window: int = 3) -> Proposal:
    """The best itinerary found for ``exams`` over ``candidates`` (exam key → free slots). The model
    first looks at each exam's first ``day_window`` available days (``_focus``; 0 = whole horizon) and
    widens to the whole horizon only if nothing is found there."""
    t0 = time.perf_counter()
    pruned = _prune(exams, candidates, p, history)
    missing = [e.key for e in exams if not pruned[e.key]]
    names = {e.key: (e.name or e.code, e.name_en or e.code) for e in exams}
    if not exams or missing:
        return Proposal({}, "none", "infeasible", unplaced=missing, solve_ms=(time.perf_counter() - t0) * 1000,
                        explanation=[{"rule": "none", "zh": "以下检查在可预约范围内没有合适号源: " + ", ".join(missing),
                                      "en": "no suitable free slot within the booking horizon for: " + ", ".join(missing)}])
    hint = greedy(exams, candidates, p, history)
    chosen, solver_name, status = None, "none", "infeasible"
    if use_cp_sat:
        try:
            focused = _focus(exams, pruned, p, day_window) if day_window else None
            if focused is not None:
                chosen, status = _cp_sat(exams, focused, p, time_limit_ms, hint)
            if chosen is None:
                chosen, status = _cp_sat(exams, pruned, p, time_limit_ms, hint)
            solver_name = "cp-sat"
        except ImportError:  # pragma: no cover - ortools is a dependency; keep answering without it
            chosen = None
    if chosen is not None and rules.violations(_placed(exams, chosen), p, history):
        chosen = None  # never hand out a rule-breaking proposal, whoever produced it
    if chosen is None and hint is not None:
        chosen, solver_name, status = hint, "greedy", "fallback"
    elapsed = (time.perf_counter() - t0) * 1000
    if chosen is None:
        return Proposal({}, solver_name, "infeasible", solve_ms=elapsed, unplaced=[e.key for e in exams],
                        explanation=[{"rule": "none", "zh": "在规则约束下找不到可行的行程",
                                      "en": "no itinerary keeps every rule within the booking horizon"}])
    trips, onsite = measure(chosen)
    ordered = dict(sorted(chosen.items(), key=lambda kv: kv[1].start))
    return Proposal(ordered, solver_name, status, trips, onsite, elapsed,
                    rules.explain(_placed(exams, ordered), names, p, history))
