"""The family-doctor figures for a calendar year (to today when it is running): 签约率 overall and per key
group (R5.3), and per programme 管理率, 规范管理率 and 控制率 (R3.6), per institution, team or doctor, plus
the total. Institutions see their own; operators and the health bureau see every one."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from sqlalchemy.orm import Session

from onetrip.family import rules
from onetrip.family.common import params, today
from onetrip.family.figures import formulas as fig
from onetrip.family.figures import repository as figures_repo
from onetrip.kit.errors import BadRequest, Forbidden
from onetrip.kit.principal import Principal


def compute_figures(session: Session, principal: Principal, *, year: int | None = None, level: str = "institution",
                    organization_id: str | None = None, on: dt.date | None = None) -> dict[str, Any]:
    """签约率 (overall and per key group), and per programme 管理率, 规范管理率, 控制率 for the calendar
    ``year`` (to ``on`` if the year is running), per institution, team or doctor, plus the total."""
    if level not in figures_repo.GROUP_COLUMNS:
        raise BadRequest("level 须为 institution / team / doctor", expression=["level"])
    if organization_id:
        if not (principal.is_operator or principal.organization_id == organization_id
                or "bureau_manager" in principal.roles):
            raise Forbidden("只能查看本机构的指标 / only your own institution's figures")
    elif not (principal.is_operator or "bureau_manager" in principal.roles):
        organization_id = principal.organization_id
    now = on or today()
    year = year or now.year
    start = dt.date(year, 1, 1)
    end = min(dt.date(year, 12, 31), now) if year == now.year else dt.date(year, 12, 31)
    if start > now:
        raise BadRequest("年份不能在将来 / the year is in the future", expression=["year"])
    p = params(session, end)
    out: dict[str, Any] = {"year": year, "start": start.isoformat(), "end": end.isoformat(), "level": level,
                           "organization_id": organization_id, "programmes": {}, "contracts": {}}
    adults = figures_repo.adults(session, end, p.prevalence_min_age, organization_id)
    adults_at = figures_repo.adults_by_organization(session, end, p.prevalence_min_age) if level == "institution" else {}
    for programme in rules.PROGRAMMES:
        groups = figures_repo.programme_counts(session, programme, start, end, level, p.standard_followups, organization_id)
        total = fig.ProgrammeCounts(*(sum(c[i] for c in groups.values()) for i in range(3)))
        estimated = fig.estimated_patients(adults, programme, p)
        by = {}
        for key, c in sorted(groups.items(), key=lambda kv: str(kv[0])):
            est = fig.estimated_patients(adults_at.get(key, 0), programme, p) if level == "institution" and key \
                else None
            by[str(key)] = fig.programme_figures(fig.ProgrammeCounts(*c), est)
        out["programmes"][programme] = {"total": fig.programme_figures(total, estimated), "by": by}
    out["contracts"] = contract_figures(session, end, level, organization_id, p)
    return out


def contract_figures(session: Session, on: dt.date, level: str, organization_id: str | None,
                     p: rules.Params) -> dict[str, Any]:
    rows = figures_repo.contracted(session, on, level, organization_id)
    registered = {g: figures_repo.registered(session, g, on, organization_id) for g in rules.PROGRAMMES}
    persons: dict[str, set[str]] = {}
    by_key: dict[str, set[str]] = defaultdict(set)
    for key, person_id, declared, birth, sex in rows:
        by_key[str(key)].add(person_id)
        programmes = [g for g in rules.PROGRAMMES if person_id in registered[g]]
        persons[person_id] = set(rules.key_groups(birth, on, programmes, declared or [], p, sex=sex))
    group_members: dict[str, set[str]] = defaultdict(set)
    for pid, groups in persons.items():
        for g in groups:
            group_members[g].add(pid)
    populations: dict[str, int | None] = {
        rules.ELDERLY: figures_repo.population(session, on, organization_id, min_age=p.key_elderly_age),
        rules.CHILDREN: figures_repo.population(session, on, organization_id, max_age=p.key_child_max_age),
        rules.HYPERTENSION: len(registered[rules.HYPERTENSION]),
        rules.DIABETES: len(registered[rules.DIABETES]),
    }
    by_group = {g: (len(group_members.get(g, ())), populations.get(g)) for g in rules.KEY_GROUPS}
    total = fig.contract_figures(len(persons), figures_repo.population(session, on, organization_id), by_group)
    total["by"] = {k: {"contracted": len(v)} for k, v in sorted(by_key.items())}
    return total
