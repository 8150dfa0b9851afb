"""Coverage on a date, read from the database: the children and their doses in one query, then the pure functions
of ``coverage.py``. Exposed to the cockpit through ``interface.coverage`` (aggregates only, no patient identity)."""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from onetrip.immunization import coverage as cov
from onetrip.immunization import repository as repo
from onetrip.immunization.schedule import RULE_SET
from onetrip.immunization.service import schedule
from onetrip.kit.errors import BadRequest
from onetrip.rules.service import rule_values


@dataclass(frozen=True)
class CoverageResult:
    assessed: dt.date
    by: str  # "year" | "month": how cohorts are cut
    cells: list[cov.Cell]  # dose × township × cohort, filtered by township when asked
    townships: list[str]  # every township with children of the cohorts (for the filter)
    cohorts: list[str]
    doses: list[str]  # the reported doses, in the rule's order


# Results by what they depend on: the database, the assessment date, the cohorts' span and cut, the doses with
# their ages (schedule rows and rule values, as ``Target``s) and the data's version (``repo.coverage_version``:
# any dose recorded or corrected, any person changed moves it). A page and then its export, or the same figures
# opened twice, read the county once. Small: each entry is the figures (~1,000 cells), not the rows.
_CACHE: OrderedDict[tuple[Any, ...], tuple[list[cov.Cell], list[str], list[str]]] = OrderedDict()
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 16


def _cached(key: tuple[Any, ...]) -> tuple[list[cov.Cell], list[str], list[str]] | None:
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            _CACHE.move_to_end(key)
        return hit


def _keep(key: tuple[Any, ...], value: tuple[list[cov.Cell], list[str], list[str]]) -> None:
    with _CACHE_LOCK:
        _CACHE[key] = value
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)


def coverage(session: Session, *, assessed: dt.date, cohort: str | None = None, township: str | None = None,
             by: str = "year") -> CoverageResult:
    """Coverage on ``assessed`` for one birth cohort ("2025" or "2025-03"; default: the last seven birth years)
    and optionally one township ("unknown": children whose address names none). One query reads the children
    and their recorded doses (entered-in-error ones excluded); the schedule table and the rule values give the
    doses and their ages. BadRequest for a malformed cohort or rule value."""
    if by not in ("year", "month"):
        raise BadRequest("by 须为 year 或 month / by must be year or month", expression=["by"])
    if cohort:
        try:
            start, end, cut = cov.cohort_bounds(cohort)
        except ValueError:
            raise BadRequest("出生队列格式为 2025 或 2025-03 / the birth cohort must be a year (2025) or a month "
                             "(2025-03)", expression=["cohort"]) from None
        by = "month" if cut == "month" else by
    else:
        start, end = dt.date(assessed.year - cov.COHORT_YEARS + 1, 1, 1), assessed
    values = rule_values(session, RULE_SET, on=assessed)
    try:
        targets = cov.targets(schedule(session).rows, assessed,
                              [str(d) for d in values.get("coverage_doses", cov.DEFAULT_DOSES)],
                              str(values.get("coverage_timely_window", cov.DEFAULT_TIMELY_WINDOW)))
    except (TypeError, ValueError) as e:
        raise BadRequest(f"规则值 immunization.coverage_doses / coverage_timely_window 格式错误 / a coverage rule "
                         f"value is malformed: {e}") from None
    codes = sorted({c for t in targets for c in t.codes})
    key = (str(session.get_bind().url), assessed, start, min(end, assessed), by, tuple(targets),
           repo.coverage_version(session))
    found = _cached(key)
    if found is None:
        children = repo.coverage_children(session, start, min(end, assessed), codes)
        all_cells = cov.coverage(children, targets, assessed, by)
        found = (all_cells, sorted({c.township for c in all_cells}, key=lambda t: (t == cov.UNKNOWN, t)),
                 sorted({c.cohort for c in all_cells}))
        _keep(key, found)
    cells, townships, cohorts = found
    if township:
        cells = [c for c in cells if c.township == township]
    return CoverageResult(assessed, by, cells, townships, cohorts, [t.key for t in targets])
