"""Referral rules as pure functions over rule values (rules_referral.json); each cites its rule."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from onetrip.kit.clock import LOCAL_TZ

HOSPITAL_TIER = 2
_TIERS = {"station": 0, "branch_centre": 1, "district_hospital": 2, "lead_hospital": 2}


def tier(org_type: str) -> int | None:
    """Level of care: 村卫生室/服务站 0, 分院/社区卫生服务中心 1, 区级医院/总院 2; None for non-clinical."""
    return _TIERS.get(org_type)


def direction_problem(direction: str, from_type: str, to_type: str) -> str | None:
    """R2.1 / R2.2: upward goes to a higher level of care, downward to a lower one. None when fine."""
    a, b = tier(from_type), tier(to_type)
    if a is None or b is None:
        return "转诊只能在医疗机构之间进行 / referrals go between care institutions"
    if direction == "up" and not b > a:
        return "上转须转往上级医疗机构 / an upward referral goes to a higher-level institution"
    if direction == "down" and not b < a:
        return "下转须转往基层医疗机构 / a downward referral goes to a lower-level institution"
    return None


def sla_hours(cfg: Mapping[str, Any], *, urgent: bool) -> float:
    """Issue 6 §1: hours the receiving side has to accept or reject before the referral expires
    (referral.sla_hours / sla_hours_urgent, local choices marked [U])."""
    return float(cfg.get("sla_hours_urgent" if urgent else "sla_hours", 4 if urgent else 48))


def escalate_hours(cfg: Mapping[str, Any], *, urgent: bool) -> float:
    """Issue 6 §1: escalation to the department head comes first — never later than expiry."""
    esc = float(cfg.get("escalate_hours_urgent" if urgent else "escalate_hours", 2 if urgent else 24))
    return min(esc, sla_hours(cfg, urgent=urgent))


def followup_due(at: dt.datetime, days: int) -> dt.date:
    """R2.5: primary care follows up within 2 weeks (referral.followup_days) — a local date."""
    return at.astimezone(LOCAL_TZ).date() + dt.timedelta(days=days)


def is_chronic(diagnoses: list[dict] | None, cfg: Mapping[str, Any]) -> bool:
    """R2.5 applies to managed chronic patients: a diagnosis whose code starts with one of
    referral.chronic_code_prefixes (hypertension, type 2 diabetes by default — RULES §3 programmes)."""
    prefixes = tuple(cfg.get("chronic_code_prefixes") or ("I10", "I11", "E11"))  # type: ignore[arg-type]
    return any(str(d.get("code", "")).startswith(prefixes) for d in diagnoses or [])


def sla_state(now: dt.datetime, due_at: dt.datetime | None, escalate_at: dt.datetime | None) -> str:
    """For the worklist timers: ok | escalated (past the escalation time) | overdue (past due)."""
    if due_at is None:
        return "ok"
    if now >= due_at:
        return "overdue"
    if escalate_at is not None and now >= escalate_at:
        return "escalated"
    return "ok"


def change(current: int, previous: int) -> float | None:
    """Year-on-year change as a fraction (0.2793 = +27.93%); None when there is no base."""
    return None if previous == 0 else round((current - previous) / previous, 4)
