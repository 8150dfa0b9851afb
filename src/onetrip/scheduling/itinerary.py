"""Multi-exam itinerary (一次就诊，多项检查): place a patient's pending exams into free slots so that
they come as few times as possible — a trip is one visit to one site on one day, so trips are the
distinct (day, site) pairs (issue 17) — then go to the sites the patient and scheduler prefer, then spend
as little time on site as possible, then as early as possible — honouring the rules in rules.py (I1–I6,
S1 one site per day unless allowed, S2 travel between sites).

Solved with OR-Tools CP-SAT under a time limit; if CP-SAT proves nothing in time (or is unavailable)
a greedy placement answers instead. Whatever answers, the result is re-checked with
``rules.violations``; a proposal that breaks a rule is never returned.

Pure: the caller (service.py) gathers candidates from the database and passes plain data in.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from onetrip.kit.clock import local_date
from onetrip.scheduling import rules
from onetrip.scheduling.rules import Exam, Placed, RuleParams, SiteInfo

# Lexicographic objective weights: trips ≫ visits to a site not preferred ≫ minutes on site ≫ lateness
# (sum of start minutes, < 10^5 per exam over 14 days ≈ 20,160 min).
W_TRIPS, W_AWAY, W_ONSITE = 10**13, 10**10, 10**5
# CP-SAT stops once its answer is proven this close to the best: trips, sites and minutes on site exact,
# the sum of start times within an hour — proving the last minutes of waiting is most of the solve time.
GAP_LIMIT = 60


@dataclass(frozen=True)
class Candidate:
    slot_id: str
    start: dt.datetime
    end: dt.datetime
    resource_id: str = ""
    organization_id: str = ""
    free: int = 1  # places this patient may take (general places, or reserved ones for its purpose)
    site: str = ""  # site key: "org" or "org:campus" ("" = the organization's main site)

    @property
    def site_key(self) -> str:
        return self.site or self.organization_id


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
    trip_list: list[tuple[dt.date, str]] = field(default_factory=list)  # the (day, site) pairs, in order
    reasons: list[dict[str, str]] = field(default_factory=list)  # why nothing is feasible (rule, zh, en, …)
    alternative: Proposal | None = None  # the nearest feasible itinerary from a wider search
    sites: dict[str, SiteInfo] = field(default_factory=dict)  # site key → name, coordinates


def _placed(exams: Sequence[Exam], placements: dict[str, Candidate]) -> list[Placed]:
    by_key = {e.key: e for e in exams}
    return [Placed(k, by_key[k].tags, c.start, c.end, c.site_key) for k, c in placements.items()]


def trips_of(placements: dict[str, Candidate]) -> list[tuple[dt.date, str]]:
    """The trips: distinct (local day, site) pairs (issue 17: one visit to one site on one day)."""
    return sorted({(local_date(c.start), c.site_key) for c in placements.values()})


def measure(placements: dict[str, Candidate]) -> tuple[int, int]:
    """(trips, minutes on site): distinct (local day, site) pairs, and per day last end − first start
    (travel between two sites on one day included), summed."""
    per_day: dict[dt.date, list[Candidate]] = defaultdict(list)
    for c in placements.values():
        per_day[local_date(c.start)].append(c)
    onsite = sum(int((max(c.end for c in cs) - min(c.start for c in cs)).total_seconds() // 60)
                 for cs in per_day.values())
    return len(trips_of(placements)), onsite


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
                k = (c.start, c.end, c.site_key)
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


def _score(placements: dict[str, Candidate], preferred: frozenset[str]) -> tuple[int, int, int, float]:
    """The objective, lexicographic: trips, trips to a site not preferred, minutes on site, lateness."""
    trips, onsite = measure(placements)
    away = sum(1 for _d, site in trips_of(placements) if preferred and site not in preferred)
    return trips, away, onsite, sum(c.start.timestamp() for c in placements.values())


def _greedy_once(exams: Sequence[Exam], pruned: dict[str, list[Candidate]], p: RuleParams,
                 history: Sequence[Placed], sites: dict[str, SiteInfo], preferred: frozenset[str]
                 ) -> dict[str, Candidate] | None:
    chosen: dict[str, Candidate] = {}
    used: dict[str, int] = defaultdict(int)
    for e in sorted(exams, key=lambda x: (_precedence_rank(x), -x.duration_minutes, x.key)):
        trips = set(trips_of(chosen))
        options = sorted(pruned[e.key], key=lambda c: ((local_date(c.start), c.site_key) not in trips,
                                                       bool(preferred) and c.site_key not in preferred, c.start))
        for c in options:
            if used[c.slot_id] >= c.free:
                continue
            trial = {**chosen, e.key: c}
            if not rules.violations(_placed(exams, trial), p, history, sites):
                chosen[e.key] = c
                used[c.slot_id] += 1
                break
        else:
            return None
    return chosen


def greedy(exams: Sequence[Exam], candidates: dict[str, list[Candidate]], p: RuleParams,
           history: Sequence[Placed] = (), sites: dict[str, SiteInfo] | None = None,
           preferred: frozenset[str] = frozenset(), max_single_sites: int = 6) -> dict[str, Candidate] | None:
    """Place exams one by one, in precedence order, each into the earliest slot that keeps every rule,
    preferring trips (day, site) already chosen, then preferred sites. Tried first within each single
    site that offers every exam (preferred sites first; one site is the default — issue 17), then over
    all sites; the best by the objective wins. None if some exam cannot be placed."""
    pruned = _prune(exams, candidates, p, history)
    sites = sites or {}
    if any(not pruned[e.key] for e in exams):
        return None
    common = set.intersection(*({c.site_key for c in pruned[e.key]} for e in exams)) if exams else set()
    earliest = {s: min(c.start for e in exams for c in pruned[e.key] if c.site_key == s) for s in common}
    runs = [{k: [c for c in cs if c.site_key == s] for k, cs in pruned.items()}
            for s in sorted(common, key=lambda s: (s not in preferred, earliest[s]))[:max_single_sites]]
    runs.append(pruned)
    best, best_score = None, None
    for run in runs:
        got = _greedy_once(exams, run, p, history, sites, preferred)
        if got is not None and (best_score is None or _score(got, preferred) < best_score):
            best, best_score = got, _score(got, preferred)
    return best


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
            hint: dict[str, Candidate] | None, sites: dict[str, SiteInfo] | None = None,
            preferred: frozenset[str] = frozenset(), deadline: float | None = None
            ) -> tuple[dict[str, Candidate] | None, str]:
    """CP-SAT over ``pruned``; stops after ``time_limit_ms`` of search, or at ``deadline``
    (``time.perf_counter()``) counting the time to build the model."""
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
    site_keys = sorted({c.site_key for c in all_c})
    site_idx = {k: i for i, k in enumerate(site_keys)}
    # S2: two sites on one day only when S1 allows it; then the gap is at least the longest travel
    # between two candidate sites (conservative; rules.violations checks the real one).
    sites = sites or {}
    travel = 0
    if p.max_sites_per_day > 1 and len(site_keys) > 1:
        travel = max(rules.travel_minutes(rules._site(sites, a), rules._site(sites, b), p)
                     for a in site_keys for b in site_keys if a != b)
        sitev = {k: sum(v * site_idx[c.site_key] for v, c in x[k]) for k in keys}
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            sd = m.NewBoolVar(f"sd_{a}_{b}")
            m.Add(dayv[a] == dayv[b]).OnlyEnforceIf(sd)
            m.Add(dayv[a] != dayv[b]).OnlyEnforceIf(sd.Not())
            order = m.NewBoolVar(f"o_{a}_{b}")  # I6: on one day, one after the other with the gap
            m.Add(end[a] + gap <= start[b]).OnlyEnforceIf([sd, order])
            m.Add(end[b] + gap <= start[a]).OnlyEnforceIf([sd, order.Not()])
            if travel > gap:  # S2
                ds = m.NewBoolVar(f"ds_{a}_{b}")
                m.Add(sitev[a] != sitev[b]).OnlyEnforceIf(ds)
                m.Add(sitev[a] == sitev[b]).OnlyEnforceIf(ds.Not())
                m.Add(end[a] + travel <= start[b]).OnlyEnforceIf([sd, order, ds])
                m.Add(end[b] + travel <= start[a]).OnlyEnforceIf([sd, order.Not(), ds])
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

    trips, away, onsite = [], [], []
    for d in range(ndays):
        on_d = {k: [v for v, c in x[k] if day(c) == d] for k in keys}
        if not any(on_d.values()):
            continue
        lo, hi = m.NewIntVar(0, horizon, f"lo_{d}"), m.NewIntVar(0, horizon, f"hi_{d}")
        any_used = m.NewBoolVar(f"any_{d}")
        day_trips = []
        for st in site_keys:
            on_ds = {k: [v for v, c in x[k] if day(c) == d and c.site_key == st] for k in keys}
            if not any(on_ds.values()):
                continue
            used = m.NewBoolVar(f"used_{d}_{site_idx[st]}")  # a trip: this site on this day
            for k in keys:
                for v in on_ds[k]:
                    m.AddImplication(v, used)
            m.AddImplication(used, any_used)
            day_trips.append(used)
            trips.append(used)
            if preferred and st not in preferred:
                away.append(used)
        m.Add(sum(day_trips) <= max(p.max_sites_per_day, 1))  # S1
        for k in keys:
            if not on_d[k]:
                continue
            y = m.NewBoolVar(f"y_{k}_{d}")
            m.Add(y == sum(on_d[k]))
            m.Add(lo <= start[k]).OnlyEnforceIf(y)
            m.Add(hi >= end[k]).OnlyEnforceIf(y)
        m.Add(hi >= lo)
        m.Add(hi == lo).OnlyEnforceIf(any_used.Not())
        onsite.append(hi - lo)
    m.Minimize(W_TRIPS * sum(trips) + W_AWAY * sum(away) + W_ONSITE * sum(onsite) + sum(start[k] for k in keys))
    if hint:
        for k in keys:
            for v, c in x[k]:
                m.AddHint(v, hint.get(k) is not None and hint[k].slot_id == c.slot_id)
    solver = cp_model.CpSolver()
    limit_ms = min(time_limit_ms, _left_ms(deadline)) if deadline is not None else time_limit_ms
    solver.parameters.max_time_in_seconds = max(limit_ms, 1) / 1000
    solver.parameters.num_workers = 1  # the server's other requests share the cores; faster under load
    solver.parameters.absolute_gap_limit = GAP_LIMIT
    status = solver.Solve(m)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None, "infeasible" if status == cp_model.INFEASIBLE else "timeout"
    out = {k: next(c for v, c in x[k] if solver.BooleanValue(v)) for k in keys}
    return out, "optimal" if status == cp_model.OPTIMAL else "feasible"


def _left_ms(deadline: float) -> int:
    return max(int((deadline - time.perf_counter()) * 1000), 1)


def _one_trip(exams: Sequence[Exam], pruned: dict[str, list[Candidate]], preferred: frozenset[str],
              window: int) -> dict[str, list[Candidate]]:
    """Only the candidates on a (day, site) where every exam has one — when one trip is possible, the
    answer is among them — and of those (0 = all) the first ``window`` pairs, preferred sites first, then
    by day: the model stays small (like ``_focus``)."""
    pairs = set.intersection(*({(local_date(c.start), c.site_key) for c in pruned[e.key]} for e in exams))
    if window:
        pairs = set(sorted(pairs, key=lambda ds: (bool(preferred) and ds[1] not in preferred, ds[0]))[:window])
    return {k: [c for c in cs if (local_date(c.start), c.site_key) in pairs] for k, cs in pruned.items()}


def plan(exams: Sequence[Exam], candidates: dict[str, list[Candidate]], p: RuleParams,
         history: Sequence[Placed] = (), *, time_limit_ms: int = 250, use_cp_sat: bool = True,
         day_window: int = 3, sites: dict[str, SiteInfo] | None = None, preferred: frozenset[str] = frozenset(),
         horizon_days: int | None = None, scope: str = "") -> Proposal:
    """The best itinerary found for ``exams`` over ``candidates`` (exam key → free slots). The model
    first looks at each exam's first ``day_window`` available days (``_focus``; 0 = whole horizon) and
    widens to the whole horizon only if nothing is found there. ``sites`` names the sites and gives
    their coordinates (S2); ``preferred`` are the sites to use when trips are equal; ``scope`` and
    ``horizon_days`` word the reasons when nothing is feasible."""
    t0 = time.perf_counter()
    sites = sites or {}
    pruned = _prune(exams, candidates, p, history)
    missing = [e.key for e in exams if not pruned[e.key]]
    names = {e.key: (e.name or e.code, e.name_en or e.code) for e in exams}
    if not exams or missing:
        reasons = diagnose(exams, candidates, p, history, sites=sites, horizon_days=horizon_days, scope=scope)
        return Proposal({}, "none", "infeasible", unplaced=missing, solve_ms=(time.perf_counter() - t0) * 1000,
                        explanation=[{"rule": "none", "zh": "以下检查在可预约范围内没有合适号源: " + ", ".join(missing),
                                      "en": "no suitable free slot within the booking horizon for: " + ", ".join(missing)},
                                     *reasons], reasons=reasons)
    hint = greedy(exams, candidates, p, history, sites, preferred)
    chosen, solver_name, status = None, "none", "infeasible"
    if use_cp_sat:
        try:
            deadline = t0 + time_limit_ms / 1000  # one budget for both models
            if hint is not None and measure(hint)[0] == 1:
                # One trip is the least there is: only the (day, site) pairs where every exam can be done
                # can hold an answer as good; the first few of them make the model.
                pruned = _one_trip(exams, pruned, preferred, day_window)
            focused = _focus(exams, pruned, p, day_window) if day_window else None
            if focused is not None:
                chosen, status = _cp_sat(exams, focused, p, time_limit_ms, hint, sites, preferred, deadline)
            if chosen is None and _left_ms(deadline) > 20:
                chosen, status = _cp_sat(exams, pruned, p, time_limit_ms, hint, sites, preferred, deadline)
            solver_name = "cp-sat"
        except ImportError:  # pragma: no cover - ortools is a dependency; keep answering without it
            chosen = None
    if chosen is not None and rules.violations(_placed(exams, chosen), p, history, sites):
        chosen = None  # never hand out a rule-breaking proposal, whoever produced it
    if chosen is not None and hint is not None and _score(hint, preferred) < _score(chosen, preferred):
        chosen, status = hint, "feasible"  # CP-SAT stopped by its time limit before reaching the hint
    if chosen is None and hint is not None:
        chosen, solver_name, status = hint, "greedy", "fallback"
    elapsed = (time.perf_counter() - t0) * 1000
    if chosen is None:
        reasons = diagnose(exams, candidates, p, history, sites=sites, horizon_days=horizon_days, scope=scope)
        return Proposal({}, solver_name, "infeasible", solve_ms=elapsed, unplaced=[e.key for e in exams],
                        explanation=[{"rule": "none", "zh": "在规则约束下找不到可行的行程",
                                      "en": "no itinerary keeps every rule within the booking horizon"}, *reasons],
                        reasons=reasons)
    trips, onsite = measure(chosen)
    ordered = dict(sorted(chosen.items(), key=lambda kv: kv[1].start))
    return Proposal(ordered, solver_name, status, trips, onsite, elapsed,
                    rules.explain(_placed(exams, ordered), names, p, history, sites), trip_list=trips_of(ordered))


# --- why nothing is feasible ------------------------------------------------------------------------

_RELAX = (("I2", {"fasting_before_fast_breaking": False}), ("I3", {"us_before_endoscopy": False}),
          ("I4", {"barium_ct_days": 0}), ("I5", {"contrast_days": 0}), ("S1", {"max_sites_per_day": 99}),
          ("I6", {"min_gap_minutes": 0}))
_RULE_TEXT = {"I1": ("空腹检查须在上午", "a fasting exam must start in the morning"),
              "I2": ("同日空腹检查须在破坏空腹的检查之前", "a fasting exam must come before one that breaks the fast"),
              "I3": ("腹部超声须在胃肠镜之前", "abdominal ultrasound must come before GI endoscopy"),
              "I4": ("钡剂检查后若干天内不做腹部CT", "no abdominal CT within days after a barium study"),
              "I5": ("两次碘对比剂检查须间隔若干天", "iodinated contrast doses must be days apart"),
              "S1": ("同一天只去一个院区", "one site per day"),
              "I6": ("同日两项检查之间须留间隔", "two exams on one day need a gap")}


def diagnose(exams: Sequence[Exam], candidates: dict[str, list[Candidate]], p: RuleParams,
             history: Sequence[Placed] = (), *, sites: dict[str, SiteInfo] | None = None,
             horizon_days: int | None = None, scope: str = "") -> list[dict[str, str]]:
    """Why no itinerary exists, one reason per cause, naming the blocking rule or the missing capacity
    (e.g. "CT with contrast: no place within 14 days at 区人民医院"). Reasons carry ``rule`` (a rule
    number, or ``capacity``), ``exam`` (the exam code, where one exam is the cause), ``zh``/``en`` and,
    for a rule against a booked exam, ``earliest`` (the first date that rule allows)."""
    sites = sites or {}
    within_zh = f"{horizon_days} 天内" if horizon_days else "可预约范围内"
    within_en = f"within {horizon_days} days" if horizon_days else "within the booking horizon"
    at_zh = f"在{scope}" if scope else ""
    at_en = f" at {scope}" if scope else ""
    out: list[dict[str, str]] = []
    for e in exams:
        zh, en = e.name or e.code, e.name_en or e.code
        free = [c for c in candidates.get(e.key, []) if c.free > 0]
        if not free:
            out.append({"rule": "capacity", "exam": e.code, "zh": f"{zh}：{within_zh}{at_zh}没有可预约的号源",
                        "en": f"{en}: no place {within_en}{at_en}"})
            continue
        blocks = [rules.slot_blockers(e.tags, c.start, p, history) for c in free]
        if all(blocks):
            by_rule: dict[str, list[Placed | None]] = defaultdict(list)
            for bl in blocks:
                for rule, h in bl:
                    by_rule[rule].append(h)
            if any(h is not None for hs in by_rule.values() for h in hs):  # a booked exam is the cause; I1
                by_rule = {r: hs for r, hs in by_rule.items() if r != "I1"}  # alone just rules out afternoons
            for rule, hs in sorted(by_rule.items()):
                reason = {"rule": rule, "exam": e.code,
                          "zh": f"{zh}：{_RULE_TEXT[rule][0]}，{within_zh}{at_zh}没有符合的号源",
                          "en": f"{en}: {_RULE_TEXT[rule][1]}; no place that allows it {within_en}{at_en}"}
                booked = [h for h in hs if h is not None]
                if booked:
                    days = p.contrast_days if rule == "I5" else p.barium_ct_days
                    last = max(h.start for h in booked)
                    earliest = (local_date(last) + dt.timedelta(days=days)).isoformat()
                    reason["earliest"] = earliest
                    reason["zh"] += f"（已预约 {local_date(last).isoformat()} 的检查，最早可约 {earliest}）"
                    reason["en"] += f" (an exam is booked on {local_date(last).isoformat()}; earliest {earliest})"
                out.append(reason)
    if out:
        return out
    for rule, change in _RELAX:
        relaxed = dataclasses.replace(p, **change)
        if greedy(exams, candidates, relaxed, history, sites) is not None:
            return [{"rule": rule, "zh": f"{_RULE_TEXT[rule][0]}：{within_zh}{at_zh}排不出符合该规则的行程",
                     "en": f"{_RULE_TEXT[rule][1]}: no itinerary {within_en}{at_en} keeps it"}]
    return [{"rule": "capacity", "zh": f"{within_zh}{at_zh}号源不足以同时安排全部检查",
             "en": f"not enough free places {within_en}{at_en} for all the exams together"}]
