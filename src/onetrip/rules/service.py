"""Read rule values (as of a date) and seed them. Code that applies rules takes the values as arguments."""

from __future__ import annotations

import datetime as dt
import json
import time
import weakref
from importlib import resources

from sqlalchemy import bindparam, event, select
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


# Rule values read on every request (the security and access rule sets: each signed-in request's idle timeout,
# each audited read's cross-institution default) are kept per process and database for this long. Rules are
# operator-changeable: a change made in this process (set_rule) is seen at once — the changing session
# bypasses the cache and its commit or rollback empties it; a change made elsewhere (another worker, the CLI
# `onetrip rules set`, SQL) is seen within CACHE_SECONDS. The key holds the date, so a value effective from
# a date is in force from its first request of that day. Measured: bench/bench_request_cost.py.
CACHE_SECONDS = 10.0
_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # engine → {(rule_set, date): (read at, values)}


def cached_rule_values(session: Session, rule_set: str) -> dict[str, object]:
    """``rule_values(session, rule_set)`` for today, from the per-process cache when it is fresh."""
    if session.info.get(_CHANGED):
        return rule_values(session, rule_set)
    engine = session.get_bind().engine
    on = utcnow().date()
    now = time.monotonic()
    per_engine = _cache.get(engine)
    if per_engine is None:
        per_engine = _cache[engine] = {}
    hit = per_engine.get((rule_set, on))
    if hit is not None and now - hit[0] < CACHE_SECONDS:
        return dict(hit[1])
    values = rule_values(session, rule_set, on)
    per_engine[(rule_set, on)] = (now, values)
    return dict(values)


_CHANGED = "onetrip.rules.changed"


def _forget(session: Session, *_args) -> None:
    _cache.clear()
    if not session.in_transaction():
        session.info.pop(_CHANGED, None)


def _changed(session: Session) -> None:
    """This session changed a rule value: it reads around the cache, and its commit or rollback empties it."""
    _cache.clear()
    session.info[_CHANGED] = True
    if not session.info.get(_LISTENING):
        session.info[_LISTENING] = True
        event.listen(session, "after_commit", _forget)
        event.listen(session, "after_soft_rollback", _forget)


_LISTENING = "onetrip.rules.listening"


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
    if added:
        _changed(session)
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
        _changed(session)
        session.flush()
        return same_day
    row = RuleValue(rule_set=rule_set, key=key, value=value, effective_from=eff, confidence=current.confidence,
                    citation=current.citation, note=note or current.note, updated_by=by, updated_at=utcnow())
    session.add(row)
    _changed(session)
    session.flush()
    return row
