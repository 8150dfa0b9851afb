"""The immunisation forecaster: pure functions over plain data (RULES §6, issue 20 point 1).

Input: birth date, sex, assessment date, the dose history (vaccine code, date) and the schedule rows (one row per
vaccine dose, per edition; ``schedule.py`` reads them from the database or the seed). Output: per series the next
dose number and vaccine, its earliest, due and complete-before (latest) dates and a status — ``complete``,
``due``, ``overdue`` or ``notdue`` — with machine-readable reason codes (never rule numbers: those are in the
comments here, not in anything a user sees).

The conventions (issue 20; tests and FHIR clients rely on them):

- "n m" = the birth date plus n calendar months, same day of month, or that month's last day when the day does
  not exist (2025-08-31 + 6 m = 2026-02-28); "n y" likewise in years; "n d" adds days. Intervals add to the
  date of the earlier dose the same way.
- Earliest date of the next dose = the latest of its minimum age (R6.1), every interval from earlier doses of
  the series (R6.2) and, for an injectable live vaccine, 28 days after each recorded dose of another injectable
  live vaccine (R6.2). Pending live doses due together may be given the same day, so they never push each other.
- Due date = the earliest date: RULES §6 gives each dose one age, both minimum and recommended (R6.1).
- Status: ``complete`` when every dose of the series is recorded; ``notdue`` when the earliest date is after the
  assessment date; ``overdue`` when it is not and the assessment date is on or after the dose's complete-before
  date (R6.1); otherwise ``due`` (a dose without a complete-before age is never overdue).
- Every recorded dose counts, in date order, whatever the edition it was given under (R6.4: catch-up gives only
  the missing doses, nothing restarts).
- The edition in force on the assessment date is used; a ``Transition`` (an operator's rule value) may give
  children born before a date another edition for one series (DTaP from 2025-01-01).
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

COMPLETE, DUE, OVERDUE, NOTDUE = "complete", "due", "overdue", "notdue"
STATUSES = (COMPLETE, DUE, OVERDUE, NOTDUE)
LIVE_SPACING_DAYS = 28  # R6.2: two injectable live vaccines the same day or >= 28 days apart


# --- dates ------------------------------------------------------------------------------------------------

def add_months(day: dt.date, months: int) -> dt.date:
    """Calendar months, same day of month or the month's last day (the issue's convention)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@lru_cache(maxsize=256)
def parse_age(spec: str) -> tuple[int, str]:
    """"28d" → (28, "d"); "6m"; "2y"; "birth" = "0d". ValueError for anything else."""
    text = spec.strip().lower()
    if text == "birth":
        return 0, "d"
    number, unit = text[:-1], text[-1:]
    if unit not in ("d", "m", "y") or not number.isascii() or not number.isdigit():
        raise ValueError(f"age or interval must look like 28d, 6m or 2y: {spec!r}")
    return int(number), unit


def add_age(start: dt.date, spec: str) -> dt.date:
    """``start`` plus an age or interval written "n d", "n m" or "n y" (no spaces: "28d", "6m", "2y")."""
    n, unit = parse_age(spec)
    if unit == "d":
        return start + dt.timedelta(days=n)
    return add_months(start, n if unit == "m" else 12 * n)


# --- data -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Interval:
    """The dose must be at least ``min`` after dose ``from_dose`` of the same series (R6.2)."""

    from_dose: int
    min: str


@dataclass(frozen=True)
class ScheduleRow:
    """One dose of one series in one edition of the programme (RULES §6)."""

    edition: str
    effective_from: dt.date
    series: str
    dose_number: int
    vaccine_code: str
    min_age: str  # R6.1 minimum age ("0d" = birth)
    complete_before: str | None = None  # R6.1 complete-before age; None: never overdue
    intervals: tuple[Interval, ...] = ()  # R6.2
    live_injectable: bool = False  # R6.2 live spacing (MMR, JE-L, HepA-L)
    sex: str | None = None  # "female" for HPV2 (2025 edition); None: everyone
    alt_group: str | None = None  # "JE" (JE-L / JE-I), "HepA" (HepA-L / HepA-I)
    alt_rank: int = 1  # within a group: the lowest rank is forecast until a product is chosen


@dataclass(frozen=True)
class Dose:
    """A recorded dose: the vaccine code (the CodeSystem's abbreviations, RULES §6) and the date given."""

    vaccine: str
    date: dt.date


@dataclass(frozen=True)
class Transition:
    """Children born before ``born_before`` follow ``edition`` for ``series`` (once that edition is in force)."""

    series: str
    born_before: dt.date
    edition: str


@dataclass(frozen=True)
class SeriesForecast:
    series: str
    vaccine: str  # of the next dose; of the last dose when complete
    dose: int | None  # next dose number within the series; None when complete
    status: str
    earliest: dt.date | None
    due: dt.date | None
    latest: dt.date | None  # the complete-before date: overdue from this date on
    edition: str
    doses_recorded: int
    reasons: tuple[str, ...]


class Schedule:
    """The rows indexed once (a forecast of many children reuses it)."""

    def __init__(self, rows: Iterable[ScheduleRow]) -> None:
        self.rows = tuple(rows)
        if not self.rows:
            raise ValueError("the immunisation schedule has no rows")
        self.editions: dict[str, dt.date] = {}
        self.by_edition: dict[str, dict[str, list[ScheduleRow]]] = {}
        self.series_of: dict[str, str] = {}
        self.live: set[str] = set()
        for r in self.rows:
            eff = self.editions.get(r.edition)
            self.editions[r.edition] = r.effective_from if eff is None else min(eff, r.effective_from)
            self.by_edition.setdefault(r.edition, {}).setdefault(r.series, []).append(r)
            self.series_of.setdefault(r.vaccine_code, r.series)
            if r.live_injectable:
                self.live.add(r.vaccine_code)
        for series in self.by_edition.values():
            for doses in series.values():
                doses.sort(key=lambda r: r.dose_number)
        self._ordered = sorted(self.editions.items(), key=lambda e: e[1])

    def edition_on(self, day: dt.date) -> str:
        """The edition in force on ``day``: the latest effective on or before it (else the first one)."""
        chosen = self._ordered[0][0]
        for name, eff in self._ordered:
            if eff <= day:
                chosen = name
        return chosen


def as_schedule(schedule: Schedule | Sequence[ScheduleRow]) -> Schedule:
    return schedule if isinstance(schedule, Schedule) else Schedule(schedule)


# --- the forecast -----------------------------------------------------------------------------------------

def forecast(birth: dt.date, sex: str, assessed: dt.date, history: Iterable[Dose],
             schedule: Schedule | Sequence[ScheduleRow], *, transitions: Iterable[Transition] = (),
             live_spacing_days: int = LIVE_SPACING_DAYS, choose: Iterable[str] = ()) -> list[SeriesForecast]:
    """Every series that applies to the child, in schedule order (see the module's conventions). ``choose``:
    alternative products the vaccinator picks for a group with no recorded dose yet (the desk's scan of JE-I
    for a child due JE-L-1)."""
    sched = as_schedule(schedule)
    edition = sched.edition_on(assessed)
    series_rows = sched.by_edition[edition]
    doses = sorted(history, key=lambda x: x.date)
    given: dict[str, list[Dose]] = {}
    for x in doses:
        series = sched.series_of.get(x.vaccine)
        if series is not None:
            given.setdefault(series, []).append(x)
    live_given = [x for x in doses if x.vaccine in sched.live]
    chosen = _chosen_alternatives(series_rows, given, frozenset(choose))
    out: list[SeriesForecast] = []
    for series, rows in series_rows.items():
        reasons: list[str] = []
        group = rows[0].alt_group
        if group is not None:
            pick, note = chosen[group]
            if pick != series:
                continue  # R6.4 alternatives: one product per group once chosen (or the preferred one)
            reasons.extend(note)
        if rows[0].sex is not None and rows[0].sex != sex:
            continue  # HPV2: girls only (2025 edition)
        used = edition
        for t in transitions:
            if (t.series == series and birth < t.born_before and t.edition in sched.by_edition
                    and sched.editions[t.edition] <= assessed and series in sched.by_edition[t.edition]):
                rows, used = sched.by_edition[t.edition][series], t.edition  # operator's transition rule
                reasons.append(f"transition:{t.edition}")
        out.append(_series(series, rows, used, birth, assessed, given.get(series, []), live_given,
                           live_spacing_days, reasons))
    return out


def _chosen_alternatives(series_rows: dict[str, list[ScheduleRow]], given: dict[str, list[Dose]],
                         choose: frozenset[str] = frozenset()) -> dict[str, tuple[str, list[str]]]:
    """Per alternative group: the product forecast and its reason codes. The product of the first recorded
    dose is the choice; before any dose, the product in ``choose`` (the vaccinator's pick for this first dose),
    else the lowest-ranked product, naming the others as available."""
    groups: dict[str, list[tuple[int, str]]] = {}
    for series, rows in series_rows.items():
        if rows[0].alt_group is not None:
            groups.setdefault(rows[0].alt_group, []).append((rows[0].alt_rank, series))
    out: dict[str, tuple[str, list[str]]] = {}
    for group, members in groups.items():
        members.sort()
        recorded = sorted((given[s][0].date, s) for _, s in members if given.get(s))
        if recorded:
            pick = recorded[0][1]
            note = ["alternative-chosen"]
            if len(recorded) > 1:
                note.append("alternatives-mixed:" + ",".join(s for _, s in recorded[1:]))
        elif picked := [s for _, s in members if s in choose]:
            pick, note = picked[0], ["alternative-chosen"]
        else:
            pick = members[0][1]
            note = [f"alternative-available:{s}" for _, s in members[1:]]
        out[group] = (pick, note)
    return out


def _series(series: str, rows: list[ScheduleRow], edition: str, birth: dt.date, assessed: dt.date,
            given: list[Dose], live_given: list[Dose], spacing: int, reasons: list[str]) -> SeriesForecast:
    n = len(given)  # R6.4: every recorded dose counts, nothing restarts
    if n >= len(rows):
        return SeriesForecast(series, rows[-1].vaccine_code, None, COMPLETE, None, None, None, edition, n,
                              (*reasons, "complete"))
    row = rows[n]
    # R6.1 minimum age
    candidates = [(add_age(birth, row.min_age), "earliest:minimum-age")]
    # R6.2 intervals from earlier doses of the series (HepB 2→3: >= 60 d after dose 2 and >= 4 m after dose 1)
    for iv in row.intervals:
        if iv.from_dose <= n:
            candidates.append((add_age(given[iv.from_dose - 1].date, iv.min), f"earliest:interval:dose-{iv.from_dose}"))
    # R6.2 live injectable vaccines: the same day or >= 28 days after a recorded dose of another one; pending
    # doses due together never push each other (they may be given the same day, R6.3).
    if row.live_injectable:
        for x in live_given:
            if x.vaccine not in {r.vaccine_code for r in rows}:
                candidates.append((x.date + dt.timedelta(days=spacing), f"earliest:live-spacing:{x.vaccine}"))
    earliest = max(c[0] for c in candidates)
    reasons.extend(dict.fromkeys(label for day, label in candidates if day == earliest))
    latest = add_age(birth, row.complete_before) if row.complete_before else None  # R6.1 complete-before
    if earliest > assessed:
        status = NOTDUE
    elif latest is not None and assessed >= latest:
        status = OVERDUE
        reasons.append("complete-before-passed")
    else:
        status = DUE
    return SeriesForecast(series, row.vaccine_code, row.dose_number, status, earliest, earliest, latest, edition,
                          n, tuple(reasons))
