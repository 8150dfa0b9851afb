"""Scheduling figures — pure formulas (STYLE 4) over plain facts, so the API, the cockpit and the
benchmarks compute them the same way.

F1 智慧预约率 (share of appointments booked to a precise time slot) = precise / all not cancelled.
F2 median wait (days) per modality = median of (exam date − booking date), appointments not cancelled.
F3 no-show rate = no-shows / (no-shows + checked-in + fulfilled), appointments whose time has passed.
F4 utilisation of a resource = booked places / offered places (blocked slots excluded).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ApptFact:
    status: str
    precise: bool
    modality: str
    wait_days: int
    past: bool


def _live(rows: Sequence[ApptFact]) -> list[ApptFact]:
    return [r for r in rows if r.status != "cancelled"]


def smart_booking_rate(rows: Sequence[ApptFact]) -> float | None:
    """F1."""
    live = _live(rows)
    return round(sum(r.precise for r in live) / len(live), 4) if live else None


def median_wait_days(rows: Sequence[ApptFact]) -> dict[str, float]:
    """F2."""
    by: dict[str, list[int]] = defaultdict(list)
    for r in _live(rows):
        by[r.modality].append(r.wait_days)
    return {m: float(statistics.median(v)) for m, v in sorted(by.items())}


def no_show_rate(rows: Sequence[ApptFact]) -> float | None:
    """F3."""
    done = [r for r in rows if r.past and r.status in ("noshow", "checked-in", "fulfilled")]
    return round(sum(r.status == "noshow" for r in done) / len(done), 4) if done else None


def utilisation(places: int, booked: int) -> float | None:
    """F4."""
    return round(booked / places, 4) if places else None
