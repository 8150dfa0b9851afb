"""Vaccination coverage — 累计接种率 and 及时接种率 — per vaccine dose, township and birth cohort (issue 20 point 6).

Pure functions over plain data: rows of children (birth date, township, doses with dates) and the schedule rows
(``forecast.ScheduleRow``) in, counts and rates out. ``interface.coverage`` reads the rows in one query; the
cockpit (analytics) shows and exports them. The definitions are the rule data ``immunization.coverage_doses`` and
``immunization.coverage_timely_window`` (confidence U: the official formula text was not read):

- 累计接种率 (cumulative) = children of the cohort and township with the dose recorded by the assessment date ÷
  children of the cohort and township who have reached the dose's minimum age by that date.
- 及时接种率 (timely) = children who got the dose before its complete-before age (or, for a dose without one,
  before the minimum age plus the timely window) ÷ children who have passed that age by the assessment date.

"Dose n" of a series is the n-th recorded dose of any of the series' vaccines (polio: IPV then bOPV; DTaP: DTaP
or DT), in date order — every recorded dose counts (R6.4). Entered-in-error doses never reach these functions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from onetrip.immunization.forecast import Dose, ScheduleRow, add_age, parse_age

UNKNOWN = "unknown"  # the township of a child whose address names none
DEFAULT_DOSES = ("HepB-1", "BCG-1", "HepB-3", "Polio-3", "DTaP-3", "MMR-1", "MPSV-A-2", "DTaP-4", "MMR-2",
                 "MPSV-AC-1", "Polio-4")  # the rule value coverage_doses overrides it
DEFAULT_TIMELY_WINDOW = "1m"  # the rule value coverage_timely_window overrides it
COHORT_YEARS = 7  # without a cohort filter: children born in this and the previous six years


@dataclass(frozen=True)
class ChildRow:
    """One child as the coverage query returns it (no identity: only what the figures need)."""

    birth: dt.date
    township: str | None
    doses: tuple[Dose, ...] = ()


@dataclass(frozen=True)
class Target:
    """A dose to report (e.g. DTaP-4): its series' vaccine codes and the ages that define the two rates."""

    key: str
    series: str
    dose_number: int
    codes: frozenset[str]
    min_age: str
    complete_before: str | None  # R6.1; None: the timely window after the minimum age applies
    window: str

    def eligible_from(self, birth: dt.date) -> dt.date:
        # R6.1: the minimum age of the dose.
        return add_age(birth, self.min_age)

    def deadline(self, birth: dt.date) -> dt.date:
        # R6.1: the complete-before age; a dose without one: minimum age plus the timely window (rule data, U).
        if self.complete_before:
            return add_age(birth, self.complete_before)
        return add_age(add_age(birth, self.min_age), self.window)


@dataclass
class Cell:
    """The figures of one dose × township × cohort."""

    dose: str
    township: str
    cohort: str
    eligible: int = 0  # 累计 denominator: reached the minimum age
    vaccinated: int = 0  # 累计 numerator
    timely_eligible: int = 0  # 及时 denominator: passed the complete-before age (or the window)
    timely: int = 0  # 及时 numerator

    @property
    def cumulative_rate(self) -> float | None:
        return self.vaccinated / self.eligible if self.eligible else None

    @property
    def timely_rate(self) -> float | None:
        return self.timely / self.timely_eligible if self.timely_eligible else None

    def as_dict(self) -> dict:
        return {"dose": self.dose, "township": self.township, "cohort": self.cohort,
                "cumulative": {"numerator": self.vaccinated, "denominator": self.eligible,
                               "rate": self.cumulative_rate},
                "timely": {"numerator": self.timely, "denominator": self.timely_eligible, "rate": self.timely_rate}}


def edition_rows(schedule: Sequence[ScheduleRow], assessed: dt.date) -> list[ScheduleRow]:
    """The rows of the edition in force on the assessment date (the latest effective_from not after it)."""
    started = [r.effective_from for r in schedule if r.effective_from <= assessed]
    if not started:
        return []
    eff = max(started)
    return [r for r in schedule if r.effective_from == eff]


def targets(schedule: Sequence[ScheduleRow], assessed: dt.date, doses: Iterable[str] = DEFAULT_DOSES,
            window: str = DEFAULT_TIMELY_WINDOW) -> list[Target]:
    """The doses to report, from the edition in force on the assessment date; a key the edition does not have
    (e.g. HPV2-1 before 2025) is left out. ValueError for a malformed key or window."""
    parse_age(window)
    rows = edition_rows(schedule, assessed)
    by_key = {f"{r.series}-{r.dose_number}": r for r in rows}
    codes: dict[str, set[str]] = {}
    for r in schedule:  # every edition: a DT dose given under 2021 counts in the DTaP series (R6.4)
        codes.setdefault(r.series, set()).add(r.vaccine_code)
    out = []
    for key in doses:
        series, _, number = str(key).rpartition("-")
        if not series or not number.isdigit():
            raise ValueError(f"coverage dose must look like DTaP-4: {key!r}")
        row = by_key.get(key)
        if row is None:
            continue
        out.append(Target(key=key, series=row.series, dose_number=row.dose_number,
                          codes=frozenset(codes[row.series]), min_age=row.min_age,
                          complete_before=row.complete_before, window=window))
    return out


def cohort_of(birth: dt.date, by: str = "year") -> str:
    """The birth cohort: "2025" (by year) or "2025-03" (by month)."""
    return f"{birth.year}" if by == "year" else f"{birth.year}-{birth.month:02d}"


def cohort_bounds(cohort: str) -> tuple[dt.date, dt.date, str]:
    """"2025" → (2025-01-01, 2025-12-31, "year"); "2025-03" → that month, "month". ValueError otherwise."""
    text = (cohort or "").strip()
    try:
        if len(text) == 4 and text.isdigit():
            y = int(text)
            return dt.date(y, 1, 1), dt.date(y, 12, 31), "year"
        if len(text) == 7 and text[4] == "-" and text[:4].isdigit() and text[5:].isdigit():
            start = dt.date(int(text[:4]), int(text[5:]), 1)
            end = (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)
            return start, end, "month"
    except ValueError:
        pass
    raise ValueError(f"birth cohort must be a year (2025) or a month (2025-03): {cohort!r}")


def series_dates(doses: Iterable[Dose], codes: frozenset[str], assessed: dt.date) -> list[dt.date]:
    """The dates of the series' recorded doses up to the assessment date, oldest first (dose n = index n-1)."""
    return sorted(d.date for d in doses if d.vaccine in codes and d.date <= assessed)


def coverage(children: Iterable[ChildRow], tgts: Sequence[Target], assessed: dt.date, by: str = "year"
             ) -> list[Cell]:
    """The two rates of every target dose per township and birth cohort (sorted by dose order, township,
    cohort). A child too young for a dose is in neither count; a dose given after the assessment date does not
    count."""
    cells: dict[tuple[str, str, str], Cell] = {}
    order = {t.key: i for i, t in enumerate(tgts)}
    ages: dict[dt.date, list[tuple[dt.date, dt.date]]] = {}  # per birth date: (eligible from, deadline) per target
    for child in children:
        town = (child.township or "").strip() or UNKNOWN
        cohort = cohort_of(child.birth, by)
        by_series: dict[str, list[dt.date]] = {}
        when = ages.get(child.birth)
        if when is None:
            when = ages[child.birth] = [(t.eligible_from(child.birth), t.deadline(child.birth)) for t in tgts]
        for t, (eligible_from, deadline) in zip(tgts, when, strict=True):
            if eligible_from > assessed:
                continue  # R6.1: not yet at the minimum age — outside both denominators
            cell = cells.get((t.key, town, cohort))
            if cell is None:
                cell = cells[(t.key, town, cohort)] = Cell(t.key, town, cohort)
            dates = by_series.get(t.series)
            if dates is None:
                dates = by_series[t.series] = series_dates(child.doses, t.codes, assessed)
            given = dates[t.dose_number - 1] if len(dates) >= t.dose_number else None
            cell.eligible += 1
            if given is not None:
                cell.vaccinated += 1
            if deadline <= assessed:  # passed the complete-before age (R6.1) or the window
                cell.timely_eligible += 1
                if given is not None and given < deadline:
                    cell.timely += 1
    return sorted(cells.values(), key=lambda c: (order[c.dose], c.township == UNKNOWN, c.township, c.cohort))


def totals(cells: Iterable[Cell], key: str = "township") -> list[Cell]:
    """Cells summed over one dimension ("township": the whole district per dose and cohort; "cohort": per
    dose and township over every cohort)."""
    out: dict[tuple[str, str, str], Cell] = {}
    order: dict[str, int] = {}
    for c in cells:
        order.setdefault(c.dose, len(order))
        k = (c.dose, "*" if key == "township" else c.township, "*" if key == "cohort" else c.cohort)
        t = out.get(k)
        if t is None:
            t = out[k] = Cell(*k)
        t.eligible += c.eligible
        t.vaccinated += c.vaccinated
        t.timely_eligible += c.timely_eligible
        t.timely += c.timely
    return sorted(out.values(), key=lambda c: (order[c.dose], c.township, c.cohort))
