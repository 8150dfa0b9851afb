"""Indicator formulas — pure functions over plain numbers (STYLE 4), each citing its rule.

The facts tables hold counts; these turn counts into the published figures, the same way for the
cockpit, the API, the report forms and the tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def rate(numerator: float, denominator: float) -> float | None:
    """numerator ÷ denominator, rounded to 4 places; None when there is no denominator."""
    return round(numerator / denominator, 4) if denominator else None


def recognition_rate(recognised: int, not_recognised: int) -> float | None:
    """R1.7 (first definition): recognised ÷ (recognised + not recognised), among order decisions where a
    recognisable prior result existed; repeats with reasons 98/99 count as neither (R1.3)."""
    return rate(recognised, recognised + not_recognised)


def reminder_acceptance(accepted: int, reminders: int) -> float | None:
    """R1.7 (second definition, reported separately): accepted ÷ reminders shown."""
    return rate(accepted, reminders)


def median_from_histogram(histogram: Mapping[int, int]) -> float | None:
    """The median of integer values given as {value: count} — equal to ``statistics.median`` of the
    expanded list (the mean of the two middle values for an even count). Used for F2 (exam wait)."""
    total = sum(c for c in histogram.values() if c > 0)
    if not total:
        return None
    ordered = sorted((v, c) for v, c in histogram.items() if c > 0)

    def nth(k: int) -> int:  # 0-based
        seen = 0
        for v, c in ordered:
            seen += c
            if k < seen:
                return v
        raise IndexError(k)

    if total % 2:
        return float(nth(total // 2))
    return (nth(total // 2 - 1) + nth(total // 2)) / 2


def year_on_year(current: float | None, previous: float | None) -> float | None:
    """同比: (current − previous) ÷ previous for counts (e.g. referrals +27.93%); None without a base."""
    if current is None or not previous:
        return None
    return round((current - previous) / previous, 4)


NEW = "new"  # change kind: there was nothing to compare with (shown as 新增 / new)


def change(current: float | None, previous: float | None, *, relative: bool) -> tuple[float | None, str]:
    """同比/环比 and how to read it: ``(value, kind)``. Counts and days change relatively ("relative",
    (current − previous) ÷ previous), rates in percentage points ("points"). When the earlier figure is
    missing — or 0 for a relative change, which has no base — and the current one is not, the change is
    ``(None, "new")``: 新增, never a percentage or infinity."""
    kind = "relative" if relative else "points"
    if current is None:
        return None, kind
    if previous is None or (relative and not previous):
        return (None, NEW) if (current or previous is None) else (None, kind)
    if relative:
        return year_on_year(current, previous), kind
    return round(current - previous, 4), kind


def standard_management(followup_counts: Iterable[int], minimum: int) -> int:
    """R3.6 / R3.2: managed patients with at least ``minimum`` follow-ups in the year (规范管理)."""
    return sum(1 for n in followup_counts if n >= minimum)


def estimated_patients(residents: int, share: float, explicit: int | None) -> int:
    """R3.6 denominator of 管理率: the catchment's own estimate when given, else residents × share [U]."""
    return explicit if explicit is not None else round(residents * share)
