"""Read rule values (as of a date) and seed them. Code that applies rules takes the values as arguments."""

from __future__ import annotations

import datetime as dt
import json
from importlib import resources

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from onetrip.kit.clock import utcnow
from onetrip.rules.models import RuleValue

SEED_EFFECTIVE_FROM = dt.date(2020, 1, 1)


def rule_values(session: Session, rule_set: str, on: dt.date | None = None) -> dict[str, object]:
    """The value in force of every key in ``rule_set`` on date ``on`` (today by default)."""
    on = on or utcnow().date()
    rows = session.execute(_VALUES_IN_FORCE, {"rule_set": rule_set, "on": on})  # key and value, no ORM rows
    return {key: value for key, value in rows}  # later rows (newer effective_from) overwrite earlier ones


# Built once: every audited read reads the access rule values through this.
_VALUES_IN_FORCE = (select(RuleValue.key, RuleValue.value)
                    .where(RuleValue.rule_set == bindparam("rule_set"), RuleValue.effective_from <= bindparam("on"))
                    .order_by(RuleValue.key, RuleValue.effective_from))


def seed_rules(session: Session) -> int:
    """Insert the seeded defaults that are missing; never overwrite an operator's change."""
    seeds = resources.files("onetrip.db.seeds")
    data = []
    # rules.json plus one rules_<domain>.json per domain (each domain seeds its own numbers).
    for entry in sorted(seeds.iterdir(), key=lambda e: e.name):
        if entry.name.startswith("rules") and entry.name.endswith(".json"):
            data.extend(json.loads(entry.read_text("utf-8")))
    existing = {(r.rule_set, r.key) for r in session.scalars(select(RuleValue))}
    added = 0
    for row in data:
        if (row["rule_set"], row["key"]) in existing:
            continue
        session.add(RuleValue(effective_from=SEED_EFFECTIVE_FROM, updated_at=utcnow(), updated_by="seed", **row))
        added += 1
    session.flush()
    return added


def set_rule(session: Session, rule_set: str, key: str, value: object, *, by: str,
             effective_from: dt.date | None = None, note: str | None = None) -> RuleValue:
    """An operator's change: a new row effective from a date (today by default); history is kept."""
    eff = effective_from or utcnow().date()
    current = session.scalars(
        select(RuleValue).where(RuleValue.rule_set == rule_set, RuleValue.key == key)
        .order_by(RuleValue.effective_from.desc())
    ).first()
    if current is None:
        raise KeyError(f"unknown rule {rule_set}.{key}")
    same_day = session.scalars(
        select(RuleValue).where(RuleValue.rule_set == rule_set, RuleValue.key == key,
                                RuleValue.effective_from == eff)
    ).first()
    if same_day is not None:
        same_day.value, same_day.updated_by, same_day.updated_at = value, by, utcnow()
        same_day.note = note or same_day.note
        session.flush()
        return same_day
    row = RuleValue(rule_set=rule_set, key=key, value=value, effective_from=eff, confidence=current.confidence,
                    citation=current.citation, note=note or current.note, updated_by=by, updated_at=utcnow())
    session.add(row)
    session.flush()
    return row
