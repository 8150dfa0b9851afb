"""Family-doctor figures — pure formulas (STYLE 4) over counts, so the API, the cockpit and the tests
compute them the same way. The counts come from ``figures.repository``.

R5.3  签约率 (contract rate)          = residents with an active contract ÷ resident population;
      key-group 签约率               = contracted residents of the group ÷ residents of the group [U].
R3.6  管理率 (management rate)       = managed patients ÷ estimated patients
                                       (estimated = residents aged ≥ prevalence_min_age × prevalence [U]);
      规范管理率 (standard rate)      = managed with ≥ ``standard_followups`` follow-ups in the year ÷ managed;
      控制率 (control rate)           = managed at target at their latest follow-up in the year ÷ managed
                                       (no follow-up in the year = lost = not at target, R3.5).
"""

from __future__ import annotations

from dataclasses import dataclass

from onetrip.family.rules import DIABETES, HYPERTENSION, Params


def rate(numerator: int, denominator: float | int | None) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def estimated_patients(adults: int, programme: str, p: Params) -> float:
    """R3.6 denominator of 管理率: adults × the programme's prevalence (a configurable [U] estimate)."""
    prevalence = {HYPERTENSION: p.hypertension_prevalence, DIABETES: p.diabetes_prevalence}[programme]
    return adults * prevalence


@dataclass(frozen=True)
class ProgrammeCounts:
    managed: int  # in the registry at the end of the period
    standard: int  # of those, with ≥ standard_followups follow-ups in the period
    controlled: int  # of those, at target at the latest follow-up in the period


def programme_figures(c: ProgrammeCounts, estimated: float | None) -> dict[str, float | int | None]:
    """R3.6 for one programme and one group (institution, team or doctor)."""
    return {"managed": c.managed, "standard": c.standard, "controlled": c.controlled,
            "estimated": round(estimated, 1) if estimated is not None else None,
            "management_rate": rate(c.managed, estimated),
            "standard_rate": rate(c.standard, c.managed),
            "control_rate": rate(c.controlled, c.managed)}


def contract_figures(contracted: int, population: int | None, by_group: dict[str, tuple[int, int | None]]) -> dict:
    """R5.3: overall and per key group ``{group: (contracted, population)}``; population None = unknown."""
    return {"contracted": contracted, "population": population, "contract_rate": rate(contracted, population),
            "key_groups": {g: {"contracted": n, "population": pop, "contract_rate": rate(n, pop)}
                           for g, (n, pop) in sorted(by_group.items())}}
