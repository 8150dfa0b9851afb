"""Daily facts, maintained incrementally from the event outbox and the audit log.

How it works (docs/cockpit.md):

* ``update`` reads the outbox after this consumer's cursor (``analytics_cursor``, never the outbox's
  ``published_at``, which belongs to notifications) and the audit log after its own cursor. Each event
  either upserts a projection row (referral, contract, enrolment, follow-up — idempotent by id) or marks
  a *day* of a measure family dirty (a visit's day, an appointment's exam day, a recognition decision's
  day, an audit row's day). Dirty days are then recomputed from the source tables with the same query
  the full rebuild uses, restricted to those days. Because every step is idempotent, events re-read by
  the look-back window (late commits with lower ids on PostgreSQL) cannot be counted twice.
* ``rebuild`` empties the facts and projections, replays every event into the projections and
  recomputes all days — the same functions with no day filter.

Days are local (Asia/Shanghai) dates. Where the parts live: ``counts`` (a measure family's counts from its
source tables, written over its days and rolled up per month), ``projections`` (events folded into the
family-doctor and referral projections), ``stock`` (month-end snapshots of the stock indicators),
``dates`` (local days in Python and SQL). This module holds the cursors and the two entry points.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.orm import Session

from onetrip.analytics import counts, stock
from onetrip.analytics.dates import parse_iso_day
from onetrip.analytics.models import (
    AnalyticsContract,
    AnalyticsCursor,
    AnalyticsEnrolment,
    AnalyticsFact,
    AnalyticsFollowup,
    AnalyticsReferral,
)
from onetrip.analytics.projections import (
    PROJECTION_EVENTS,
    apply_projections,
    fold,
    key_of,
    kind_of,
    write_state,
)
from onetrip.audit.models import AuditEvent
from onetrip.db import expressions as expr
from onetrip.db.concurrency import ids_commit_in_order, transaction_lock
from onetrip.kit.clock import utcnow
from onetrip.outbox.models import OutboxEvent

Progress = Callable[[str, int, int], None]
LOOKBACK = dt.timedelta(minutes=5)  # re-read recent events: a lower id may commit after a higher one
BATCH = 5000
FAMILIES = ("encounter", "appointment", "recognition", "lookup", "referral")
# Events are read as plain rows with these attributes (not ORM objects: rebuilds read hundreds of thousands).
EVENT_COLUMNS = (OutboxEvent.id, OutboxEvent.event_type, OutboxEvent.aggregate_id, OutboxEvent.person_id,
                 OutboxEvent.payload, OutboxEvent.occurred_at)


# --- dirty days from events ------------------------------------------------------------------------

def dirty_days(session: Session, events: Sequence[OutboxEvent]) -> dict[str, set[dt.date]]:
    """Which days of which families the events touch (projection events are folded here too)."""
    dirty: dict[str, set[dt.date]] = defaultdict(set)
    appts, recogs, projection_events = [], [], []
    for ev in events:
        et = ev.event_type
        if et == "encounter.recorded":
            d = parse_iso_day((ev.payload or {}).get("visit_date"))
            if d:
                dirty["encounter"].add(d)
        elif et.startswith("appointment."):
            appts.append(ev.aggregate_id)
        elif et.startswith("recognition."):
            recogs.append(ev.aggregate_id)
            check_id = (ev.payload or {}).get("check_id")
            if check_id:
                recogs.append(check_id)
        elif et.startswith(PROJECTION_EVENTS):
            projection_events.append(ev)
    if projection_events:
        dirty["referral"] |= apply_projections(session, projection_events)
    dirty["appointment"] |= counts.days_of(session, "appointment", appts)
    dirty["recognition"] |= counts.days_of(session, "recognition", recogs)
    return dirty


# --- cursors, update, rebuild ----------------------------------------------------------------------

def _cursor(session: Session, consumer: str) -> AnalyticsCursor:
    cur = session.execute(select(AnalyticsCursor).where(AnalyticsCursor.consumer == consumer)
                          .with_for_update()).scalar_one_or_none()
    if cur is None:
        cur = AnalyticsCursor(consumer=consumer, last_id=0, updated_at=utcnow())
        session.add(cur)
        session.flush()
    return cur


def _lock(session: Session) -> None:
    """One updater at a time: PostgreSQL advisory transaction lock (SQLite's writer lock already is)."""
    transaction_lock(session, 80808)


def update(session: Session, progress: Progress | None = None) -> dict[str, Any]:
    """Incremental update: consume new outbox events and audit rows, recompute the dirty days.
    Flushes; the caller commits (cursor and facts move in one transaction)."""
    _lock(session)
    session.info.pop("analytics_stock", None)  # figures cached by service._stock_at in this session
    out_cur, audit_cur = _cursor(session, "outbox"), _cursor(session, "audit")
    # SQLite serialises writers, so ids commit in order; PostgreSQL sequences do not: look back.
    since = utcnow() - (dt.timedelta(0) if ids_commit_in_order(session) else LOOKBACK)
    max_id = session.scalar(select(func.max(OutboxEvent.id))) or 0
    stmt = (select(*EVENT_COLUMNS).where(or_(OutboxEvent.id > out_cur.last_id,
                                          and_(OutboxEvent.occurred_at >= since, OutboxEvent.id <= out_cur.last_id)),
                                      OutboxEvent.id <= max_id)
            .order_by(OutboxEvent.id))
    dirty: dict[str, set[dt.date]] = defaultdict(set)
    n_events = 0
    batch: list[OutboxEvent] = []
    total = max(0, max_id - out_cur.last_id)
    for ev in session.execute(stmt.execution_options(yield_per=BATCH)):
        batch.append(ev)
        if len(batch) >= BATCH:
            for k, v in dirty_days(session, batch).items():
                dirty[k] |= v
            n_events += len(batch)
            batch = []
            if progress:
                progress("events", min(n_events, total), total)
    for k, v in dirty_days(session, batch).items():
        dirty[k] |= v
    n_events += len(batch)
    # Audit rows get their seq from a sequence and several chains append concurrently: look back as well.
    max_seq = session.scalar(select(func.max(AuditEvent.seq))) or 0
    day_col = expr.local_date(session, AuditEvent.recorded_at)
    new_rows = and_(AuditEvent.seq > audit_cur.last_id, AuditEvent.seq <= max_seq)
    for d in session.scalars(select(day_col).where(or_(new_rows, and_(AuditEvent.recorded_at >= since,
                                                                      AuditEvent.seq <= max_seq))).distinct()):
        dirty["lookup"].add(dt.date.fromisoformat(d) if isinstance(d, str) else d)
    rows = 0
    families = [f for f in FAMILIES if dirty.get(f)]
    for i, fam in enumerate(families, 1):
        rows += counts.replace_facts(session, fam, dirty[fam], counts.COUNTERS[fam](session, dirty[fam]))
        if progress:
            progress("facts", i, len(families))
    rows += stock.refresh_changed(session)
    now = utcnow()
    out_cur.last_id, out_cur.updated_at = max(out_cur.last_id, max_id), now
    audit_cur.last_id, audit_cur.updated_at = max(audit_cur.last_id, max_seq), now
    session.flush()
    return {"events": n_events, "days": {f: len(dirty[f]) for f in families}, "fact_rows": rows}


def rebuild(session: Session, progress: Progress | None = None) -> dict[str, Any]:
    """Full rebuild: empty facts and projections, replay every projection event, recompute every day.
    Flushes; the caller commits."""
    _lock(session)
    session.info.pop("analytics_stock", None)
    out_cur, audit_cur = _cursor(session, "outbox"), _cursor(session, "audit")
    max_id = session.scalar(select(func.max(OutboxEvent.id))) or 0
    max_seq = session.scalar(select(func.max(AuditEvent.seq))) or 0
    for model in (AnalyticsReferral, AnalyticsContract, AnalyticsEnrolment, AnalyticsFollowup):
        session.execute(delete(model))
    prefixes = [OutboxEvent.event_type.like(p + "%") for p in PROJECTION_EVENTS]
    stmt = (select(*EVENT_COLUMNS).where(or_(*prefixes), OutboxEvent.id <= max_id).order_by(OutboxEvent.id)
            .execution_options(yield_per=BATCH))
    total = session.scalar(select(func.count()).select_from(OutboxEvent).where(or_(*prefixes))) or 0
    steps = total + len(FAMILIES)
    # The projections are folded in memory over every event (in id order), then written once.
    states: dict[str, dict[tuple, dict]] = defaultdict(dict)
    done = 0
    for ev in session.execute(stmt):
        kind = kind_of(ev.event_type)
        key = key_of(kind, ev) if kind else None
        if key is not None:
            states[kind][key] = fold(kind, states[kind].get(key), ev)
        done += 1
        if progress and done % BATCH == 0:
            progress("rebuild", done, steps)
    for kind, state in states.items():
        write_state(session, kind, state)
    rows = 0
    for fam in FAMILIES:
        rows += counts.replace_facts(session, fam, None, counts.COUNTERS[fam](session, None))
        done += 1
        if progress:
            progress("rebuild", done, steps)
    rows += stock.refresh_all(session)
    now = utcnow()
    out_cur.last_id, out_cur.updated_at = max_id, now
    audit_cur.last_id, audit_cur.updated_at = max_seq, now
    session.flush()
    return {"projection_events": total, "fact_rows": rows}


def status(session: Session) -> dict[str, Any]:
    cursors = {c.consumer: {"last_id": c.last_id, "updated_at": c.updated_at.isoformat()}
               for c in session.scalars(select(AnalyticsCursor))}
    max_id = session.scalar(select(func.max(OutboxEvent.id))) or 0
    behind = max_id - cursors.get("outbox", {}).get("last_id", 0)
    return {"cursors": cursors, "outbox_behind": behind,
            "fact_rows": session.scalar(select(func.count()).select_from(AnalyticsFact)) or 0}
