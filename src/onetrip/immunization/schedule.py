"""The schedule as plain data: rows from the seed JSON or the database table, checked on the way in.

Pure (no database): ``row_from_dict`` turns one seed/table row into a ``forecast.ScheduleRow``; ``load_seed``
reads the packaged seed (db/seeds/immunization_schedule.json) for tests and benchmarks. The service reads the
operator's table (``models.ScheduleDose``), which the same seed fills.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from functools import cache
from importlib import resources
from typing import Any

from onetrip.immunization.forecast import Interval, ScheduleRow, Transition, parse_age

SEED = "immunization_schedule.json"
RULE_SET = "immunization"
SEXES = ("female", "male")


def seed_rows() -> list[dict[str, Any]]:
    """The packaged seed: both editions (2021 and 2025), one dict per dose."""
    return json.loads(resources.files("onetrip.db.seeds").joinpath(SEED).read_text("utf-8"))


def row_from_dict(d: dict[str, Any]) -> ScheduleRow:
    """One row, checked: ages and intervals parse, dose numbers are positive, an interval points backwards."""
    eff = d["effective_from"]
    row = ScheduleRow(
        edition=str(d["edition"]), effective_from=eff if isinstance(eff, dt.date) else dt.date.fromisoformat(eff),
        series=str(d["series"]), dose_number=int(d["dose_number"]), vaccine_code=str(d["vaccine_code"]),
        min_age=str(d["min_age"]), complete_before=d.get("complete_before") or None,
        intervals=tuple(Interval(int(i["from_dose"]), str(i["min"])) for i in d.get("intervals") or ()),
        live_injectable=bool(d.get("live_injectable")), sex=d.get("sex") or None,
        alt_group=d.get("alt_group") or None, alt_rank=int(d.get("alt_rank") or 1))
    parse_age(row.min_age)
    if row.complete_before:
        parse_age(row.complete_before)
    if row.dose_number < 1 or any(not 1 <= i.from_dose < row.dose_number for i in row.intervals):
        raise ValueError(f"{row.edition} {row.series}-{row.dose_number}: dose numbers start at 1 and an interval "
                         f"counts from an earlier dose")
    for i in row.intervals:
        parse_age(i.min)
    if row.sex is not None and row.sex not in SEXES:
        raise ValueError(f"{row.series}: sex restriction must be one of {SEXES}")
    return row


def rows_from_dicts(data: Iterable[dict[str, Any]]) -> list[ScheduleRow]:
    return [row_from_dict(d) for d in data]


@cache
def _seed() -> tuple[ScheduleRow, ...]:
    return tuple(rows_from_dicts(seed_rows()))


def load_seed() -> list[ScheduleRow]:
    """The packaged schedule (tests, benchmarks; the service reads the database table)."""
    return list(_seed())


def transition_from_rule(value: Any) -> Transition:
    """The ``immunization.dtap_transition`` rule value: {series, born_before, edition}."""
    if not isinstance(value, dict):
        raise ValueError("immunization.dtap_transition must be an object {series, born_before, edition}")
    return Transition(series=str(value["series"]), born_before=dt.date.fromisoformat(str(value["born_before"])),
                      edition=str(value["edition"]))
