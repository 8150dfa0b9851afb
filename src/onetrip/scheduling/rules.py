"""Itinerary rules — pure functions over plain data (STYLE 4). Each rule is numbered and its number
is the key of its value in the ``scheduling`` rule table (db/seeds/rules_scheduling.json), so an
operator can change or switch off a rule without a release.

I1  A fasting exam starts in the morning (before ``fasting_latest_start``, local time).
I2  On one day, a fasting exam ends (plus the minimum gap) before an exam that breaks the fast starts.
I3  An abdominal ultrasound comes before GI endoscopy (gas insufflated at endoscopy spoils the image).
I4  No abdominal CT within N days after a barium study (barium residue causes artefacts).
I5  Iodinated contrast doses at least N days apart.
I6  Two exams of one patient on one day are at least N minutes apart (and never overlap).
S1  One site per day: a patient is sent to at most N sites (institutions or campuses) on one day — a
    trip is one visit to one site on one day (issue 17); the patient or scheduler may allow more.
S2  Travel: two exams at different sites on one day are at least the travel time apart (from the sites'
    coordinates where both are known, else a default).

The solver (itinerary.py) builds its constraints from these predicates; ``violations`` checks any
finished itinerary against all of them, so a proposal is verified by the same code that defines it.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from onetrip.kit.clock import local_date, local_hhmm

# Tags in the exam catalogue the rules read.
FASTING, BREAKS_FAST = "fasting", "breaks_fast"
ABDOMINAL_US, GI_ENDOSCOPY = "abdominal_us", "gi_endoscopy"
BARIUM, ABDOMINAL_CT, IODINATED = "barium", "abdominal_ct", "iodinated_contrast"


@dataclass(frozen=True)
class RuleParams:
    fasting_morning: bool = True  # I1
    fasting_latest_start: str = "11:30"  # I1, HH:MM local
    fasting_before_fast_breaking: bool = True  # I2
    us_before_endoscopy: bool = True  # I3
    barium_ct_days: int = 7  # I4 (0 = off)
    contrast_days: int = 7  # I5 (0 = off)
    min_gap_minutes: int = 15  # I6
    max_sites_per_day: int = 1  # S1
    travel_minutes: int = 60  # S2: between two institutions without coordinates
    campus_travel_minutes: int = 30  # S2: between two campuses of one institution without coordinates
    travel_kmh: float = 30.0  # S2: door-to-door speed over the straight-line distance × 1.3

    @classmethod
    def from_rule_values(cls, values: dict[str, object]) -> RuleParams:
        d = cls()
        return cls(
            fasting_morning=bool(values.get("I1_fasting_morning", d.fasting_morning)),
            fasting_latest_start=str(values.get("fasting_latest_start", d.fasting_latest_start)),
            fasting_before_fast_breaking=bool(values.get("I2_fasting_before_fast_breaking",
                                                         d.fasting_before_fast_breaking)),
            us_before_endoscopy=bool(values.get("I3_abdominal_us_before_gi_endoscopy", d.us_before_endoscopy)),
            barium_ct_days=int(values.get("I4_barium_ct_days", d.barium_ct_days)),  # type: ignore[arg-type]
            contrast_days=int(values.get("I5_iodinated_contrast_days", d.contrast_days)),  # type: ignore[arg-type]
            min_gap_minutes=int(values.get("I6_min_gap_minutes", d.min_gap_minutes)),  # type: ignore[arg-type]
            max_sites_per_day=int(values.get("S1_max_sites_per_day", d.max_sites_per_day)),  # type: ignore[arg-type]
            travel_minutes=int(values.get("S2_travel_minutes", d.travel_minutes)),  # type: ignore[arg-type]
            campus_travel_minutes=int(values.get("S2_campus_travel_minutes",  # type: ignore[arg-type]
                                                 d.campus_travel_minutes)),
            travel_kmh=float(values.get("S2_travel_kmh", d.travel_kmh)),  # type: ignore[arg-type]
        )


@dataclass(frozen=True)
class Exam:
    """One exam to place: ``key`` tells two orders of the same exam apart."""

    key: str
    code: str
    duration_minutes: int
    tags: frozenset[str] = field(default_factory=frozenset)
    name: str = ""
    name_en: str = ""


@dataclass(frozen=True)
class Placed:
    """An exam at a time: a proposal, or a past / booked exam of the person (history)."""

    key: str
    tags: frozenset[str]
    start: dt.datetime
    end: dt.datetime
    site: str = ""  # the site key ("" = not known / one place): S1, S2


@dataclass(frozen=True)
class SiteInfo:
    """Where a site is: its organization and coordinates (None where unknown)."""

    key: str
    organization_id: str
    name: str = ""
    latitude: float | None = None
    longitude: float | None = None


def travel_minutes(a: SiteInfo | None, b: SiteInfo | None, p: RuleParams) -> int:
    """S2: minutes to get from site ``a`` to site ``b``. From the coordinates when both are known (the
    straight line × 1.3 at ``travel_kmh``, never under the I6 gap), else the default — shorter between two
    campuses of one institution."""
    if a is None or b is None or a.key == b.key:
        return 0
    if None not in (a.latitude, a.longitude, b.latitude, b.longitude):
        la1, lo1, la2, lo2 = map(math.radians, (a.latitude, a.longitude, b.latitude, b.longitude))  # type: ignore[arg-type]
        h = math.sin((la2 - la1) / 2) ** 2 + math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2
        km = 2 * 6371.0 * math.asin(math.sqrt(h)) * 1.3
        return max(p.min_gap_minutes, math.ceil(km / max(p.travel_kmh, 1.0) * 60))
    return p.campus_travel_minutes if a.organization_id == b.organization_id else p.travel_minutes


@dataclass(frozen=True)
class Violation:
    rule: str
    keys: tuple[str, ...]
    message: str


# --- single-exam rules ------------------------------------------------------------------------------

def i1_morning_ok(tags: frozenset[str], start: dt.datetime, p: RuleParams) -> bool:
    """I1: a fasting exam starts no later than ``fasting_latest_start`` local time."""
    return not (p.fasting_morning and FASTING in tags) or local_hhmm(start) <= p.fasting_latest_start


def i4_after_barium_ok(barium_start: dt.datetime, ct_start: dt.datetime, p: RuleParams) -> bool:
    """I4: an abdominal CT is not in [barium, barium + N days)."""
    if p.barium_ct_days <= 0:
        return True
    return not (barium_start <= ct_start < barium_start + dt.timedelta(days=p.barium_ct_days))


def i5_contrast_ok(a_start: dt.datetime, b_start: dt.datetime, p: RuleParams) -> bool:
    """I5: two iodinated contrast doses at least N days apart (calendar days, local)."""
    if p.contrast_days <= 0:
        return True
    return abs((local_date(a_start) - local_date(b_start)).days) >= p.contrast_days


# --- pair rules, as the solver needs them ------------------------------------------------------------

def i2_applies(first: frozenset[str], then: frozenset[str], p: RuleParams) -> bool:
    """I2: ``first`` (fasting) must precede ``then`` (breaks the fast) when both fall on one day."""
    return p.fasting_before_fast_breaking and FASTING in first and BREAKS_FAST in then


def i3_applies(first: frozenset[str], then: frozenset[str], p: RuleParams) -> bool:
    """I3: ``first`` (abdominal ultrasound) must precede ``then`` (GI endoscopy), on any day."""
    return p.us_before_endoscopy and ABDOMINAL_US in first and GI_ENDOSCOPY in then


def i4_applies(barium: frozenset[str], ct: frozenset[str], p: RuleParams) -> bool:
    return p.barium_ct_days > 0 and BARIUM in barium and ABDOMINAL_CT in ct


def i5_applies(a: frozenset[str], b: frozenset[str], p: RuleParams) -> bool:
    return p.contrast_days > 0 and IODINATED in a and IODINATED in b


def slot_blockers(tags: frozenset[str], start: dt.datetime, p: RuleParams,
                  history: Sequence[Placed]) -> list[tuple[str, Placed | None]]:
    """The rules that forbid one exam to start at ``start`` given the person's other (already booked)
    exams — I1, and I4/I5 against history — each with the booked exam that blocks it (None for I1)."""
    out: list[tuple[str, Placed | None]] = []
    if not i1_morning_ok(tags, start, p):
        out.append(("I1", None))
    for h in history:
        barium_first = i4_applies(h.tags, tags, p) and not i4_after_barium_ok(h.start, start, p)
        if barium_first or (i4_applies(tags, h.tags, p) and not i4_after_barium_ok(start, h.start, p)):
            out.append(("I4", h))
        if i5_applies(tags, h.tags, p) and not i5_contrast_ok(start, h.start, p):
            out.append(("I5", h))
    return out


def slot_allowed(tags: frozenset[str], start: dt.datetime, p: RuleParams, history: Sequence[Placed]) -> bool:
    """Whether one exam may start at ``start`` given the person's other (already booked) exams:
    I1, and I4/I5 against history. Used to prune the solver's candidates and by the greedy fallback."""
    return not slot_blockers(tags, start, p, history)


# --- the checker ------------------------------------------------------------------------------------

def violations(placed: Sequence[Placed], p: RuleParams, history: Iterable[Placed] = (),
               sites: Mapping[str, SiteInfo] | None = None) -> list[Violation]:
    """Every rule broken by ``placed`` (the proposal), also against ``history``. Empty = acceptable.
    ``sites`` (site key → SiteInfo) gives S2 its coordinates; without it the default travel applies."""
    out: list[Violation] = []
    hist = list(history)
    sites = sites or {}
    per_day: dict[dt.date, set[str]] = {}
    for e in placed:
        per_day.setdefault(local_date(e.start), set()).add(e.site)
    for d, on_day in sorted(per_day.items()):
        if len(on_day) > max(p.max_sites_per_day, 1):  # S1
            out.append(Violation("S1", tuple(sorted(on_day)), f"{len(on_day)} sites on {d}"))
    for e in placed:
        if not i1_morning_ok(e.tags, e.start, p):
            out.append(Violation("I1", (e.key,), f"{e.key} fasting exam after {p.fasting_latest_start}"))
    everything = list(placed) + hist
    proposal_keys = {e.key for e in placed}
    for i, a in enumerate(everything):
        for b in everything[i + 1:]:
            if a.key not in proposal_keys and b.key not in proposal_keys:
                continue  # two history items: not ours to judge
            same_day = local_date(a.start) == local_date(b.start)
            for x, y in ((a, b), (b, a)):
                if same_day and i2_applies(x.tags, y.tags, p) and \
                        x.end + dt.timedelta(minutes=p.min_gap_minutes) > y.start:
                    out.append(Violation("I2", (x.key, y.key), f"{y.key} breaks the fast before {x.key}"))
                if i3_applies(x.tags, y.tags, p) and x.end + dt.timedelta(minutes=p.min_gap_minutes) > y.start:
                    out.append(Violation("I3", (x.key, y.key), f"{y.key} (endoscopy) not after {x.key} (US)"))
                if i4_applies(x.tags, y.tags, p) and not i4_after_barium_ok(x.start, y.start, p):
                    out.append(Violation("I4", (x.key, y.key), f"{y.key} CT within {p.barium_ct_days} d of barium"))
            if i5_applies(a.tags, b.tags, p) and not i5_contrast_ok(a.start, b.start, p):
                out.append(Violation("I5", (a.key, b.key), f"contrast doses < {p.contrast_days} d apart"))
            if same_day:
                first, second = (a, b) if a.start <= b.start else (b, a)
                if first.end + dt.timedelta(minutes=p.min_gap_minutes) > second.start:
                    out.append(Violation("I6", (first.key, second.key),
                                         f"less than {p.min_gap_minutes} min between {first.key} and {second.key}"))
                elif p.max_sites_per_day > 1 and first.site and second.site and first.site != second.site and \
                        (first.key in proposal_keys and second.key in proposal_keys):  # else S1 already says it
                    need = travel_minutes(_site(sites, first.site), _site(sites, second.site), p)
                    if first.end + dt.timedelta(minutes=need) > second.start:  # S2
                        out.append(Violation("S2", (first.key, second.key),
                                             f"less than {need} min to travel from {first.site} to {second.site}"))
    return out


def _site(sites: Mapping[str, SiteInfo], key: str) -> SiteInfo:
    return sites.get(key) or SiteInfo(key, key.split(":")[0])


# --- the explanation ("why this order") --------------------------------------------------------------

def explain(placed: Sequence[Placed], names: dict[str, tuple[str, str]], p: RuleParams,
            history: Sequence[Placed] = (), sites: Mapping[str, SiteInfo] | None = None) -> list[dict[str, str]]:
    """Bilingual reasons for the proposal's shape: the trips it takes (a trip = one site on one day,
    S1), the travel between sites, and which rules shaped it. ``names`` maps an exam key to (Chinese
    name, English name); ``sites`` a site key to its SiteInfo (for its name and S2's travel)."""
    out: list[dict[str, str]] = []
    sites = sites or {}
    days = sorted({local_date(e.start) for e in placed})
    trips = sorted({(local_date(e.start), e.site) for e in placed})
    onsite = 0
    for d in days:
        todays = [e for e in placed if local_date(e.start) == d]
        onsite += int((max(e.end for e in todays) - min(e.start for e in todays)).total_seconds() // 60)

    def site_name(key: str) -> str:
        return _site(sites, key).name or key

    where = "；".join(f"{d.isoformat()} {site_name(k)}" for d, k in trips)
    where_en = "; ".join(f"{d.isoformat()} at {site_name(k)}" for d, k in trips)
    out.append({"rule": "trips", "zh": f"共需到院 {len(trips)} 次（{where}），院内约 {onsite} 分钟",
                "en": f"{len(trips)} trip(s) ({where_en}), about {onsite} minutes on site"})
    for d in days:
        todays = sorted((e for e in placed if local_date(e.start) == d), key=lambda e: e.start)
        for a, b in zip(todays, todays[1:], strict=False):
            if a.site != b.site:
                t = travel_minutes(_site(sites, a.site), _site(sites, b.site), p)
                out.append({"rule": "S2", "zh": f"{d.isoformat()} 从{site_name(a.site)}前往{site_name(b.site)}，"
                                                f"路程约 {t} 分钟",
                            "en": f"{d.isoformat()}: travel from {site_name(a.site)} to {site_name(b.site)}, "
                                  f"about {t} minutes"})

    def nm(k: str) -> tuple[str, str]:
        return names.get(k, (k, k))

    for e in placed:
        if p.fasting_morning and FASTING in e.tags:
            out.append({"rule": "I1", "zh": f"{nm(e.key)[0]}需空腹，安排在上午 {local_hhmm(e.start)}",
                        "en": f"{nm(e.key)[1]} needs fasting, so it is in the morning ({local_hhmm(e.start)})"})
    for a in placed:
        for b in placed:
            if a is b:
                continue
            if i2_applies(a.tags, b.tags, p) and local_date(a.start) == local_date(b.start):
                out.append({"rule": "I2", "zh": f"{nm(a.key)[0]}（空腹）排在{nm(b.key)[0]}之前，以免破坏空腹",
                            "en": f"{nm(a.key)[1]} (fasting) comes before {nm(b.key)[1]}, which breaks the fast"})
            if i3_applies(a.tags, b.tags, p):
                out.append({"rule": "I3", "zh": f"{nm(a.key)[0]}排在{nm(b.key)[0]}之前（内镜充气影响超声）",
                            "en": f"{nm(a.key)[1]} comes before {nm(b.key)[1]} (endoscopy gas spoils ultrasound)"})
            if i4_applies(a.tags, b.tags, p):
                out.append({"rule": "I4", "zh": f"{nm(b.key)[0]}不安排在{nm(a.key)[0]}后 {p.barium_ct_days} 天内",
                            "en": f"{nm(b.key)[1]} is not within {p.barium_ct_days} days after {nm(a.key)[1]}"})
    contrast = [e for e in placed if IODINATED in e.tags]
    if p.contrast_days > 0 and (len(contrast) > 1 or (contrast and any(IODINATED in h.tags for h in history))):
        out.append({"rule": "I5", "zh": f"两次碘对比剂检查间隔至少 {p.contrast_days} 天",
                    "en": f"iodinated contrast doses are at least {p.contrast_days} days apart"})
    if len(placed) > 1:
        out.append({"rule": "I6", "zh": f"同日两项检查间隔至少 {p.min_gap_minutes} 分钟",
                    "en": f"at least {p.min_gap_minutes} minutes between two exams on one day"})
    return out
