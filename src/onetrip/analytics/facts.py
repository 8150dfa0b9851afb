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

Days are local (Asia/Shanghai) dates.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import Date, Integer, and_, case, cast, delete, func, insert, literal, or_, select, text
from sqlalchemy.orm import Session

from onetrip.analytics.indicators import MEASURES
from onetrip.analytics.models import (
    AnalyticsContract,
    AnalyticsCursor,
    AnalyticsEnrolment,
    AnalyticsFact,
    AnalyticsFactMonth,
    AnalyticsFollowup,
    AnalyticsReferral,
    Encounter,
)
from onetrip.audit.models import AuditEvent
from onetrip.kit.clock import LOCAL_TZ, utcnow
from onetrip.outbox.models import OutboxEvent
from onetrip.recognition.models import RecognitionDecision, RecognitionReason
from onetrip.registry.models import Organization
from onetrip.rules.service import rule_values
from onetrip.scheduling.models import Appointment, Resource

Progress = Callable[[str, int, int], None]
LOOKBACK = dt.timedelta(minutes=5)  # re-read recent events: a lower id may commit after a higher one
BATCH = 5000
FAMILIES = ("encounter", "appointment", "recognition", "lookup", "referral")
PROJECTION_EVENTS = ("referral.", "contract.", "registry.enrolled", "registry.closed", "followup.recorded")
# Events are read as plain rows with these attributes (not ORM objects: rebuilds read hundreds of thousands).
EVENT_COLUMNS = (OutboxEvent.id, OutboxEvent.event_type, OutboxEvent.aggregate_id, OutboxEvent.person_id,
                 OutboxEvent.payload, OutboxEvent.occurred_at)


# --- helpers ---------------------------------------------------------------------------------------

def local_day(moment: dt.datetime) -> dt.date:
    return moment.astimezone(LOCAL_TZ).date() if moment.tzinfo else moment.replace(tzinfo=dt.UTC).astimezone(
        LOCAL_TZ).date()


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime(day.year, day.month, day.day, tzinfo=LOCAL_TZ).astimezone(dt.UTC)
    return start, start + dt.timedelta(days=1)


def _parse_iso_day(value: Any) -> dt.date | None:
    if not value:
        return None
    text_value = str(value)
    if len(text_value) == 10:
        return dt.date.fromisoformat(text_value)
    moment = dt.datetime.fromisoformat(text_value.replace("Z", "+00:00"))
    return local_day(moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC))


def _time_filter(column, days: set[dt.date] | None):
    if days is None:
        return literal(True)
    return or_(*[and_(column >= a, column < b) for a, b in (day_bounds(d) for d in sorted(days))])


def _local_date_sql(session: Session, column):
    """The local date of a UTC timestamp column, in the database's own dialect."""
    if session.get_bind().dialect.name == "postgresql":
        return func.date(func.timezone("Asia/Shanghai", column))
    return func.date(column, "+8 hours")


def community_of(session: Session) -> dict[str, str]:
    return {oid: cid or "" for oid, cid in session.execute(select(Organization.id, Organization.community_id))}


def _chunks(items: Sequence, n: int = 500) -> Iterable[Sequence]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


def _replace(session: Session, family: str, days: set[dt.date] | None,
             counts: dict[tuple, int]) -> int:
    """Delete the family's facts on ``days`` (all days when None) and insert ``counts``
    {(measure, day, community, org, dept, bucket): value}."""
    measures = MEASURES[family]
    if days is None:
        session.execute(delete(AnalyticsFact).where(AnalyticsFact.measure.in_(measures)))
    else:
        for chunk in _chunks(sorted(days)):
            session.execute(delete(AnalyticsFact).where(AnalyticsFact.measure.in_(measures),
                                                        AnalyticsFact.day.in_(chunk)))
    rows = [{"measure": m, "day": d, "community_id": c or "", "organization_id": o or "", "department_id": p or "",
             "bucket": b, "value": v} for (m, d, c, o, p, b), v in counts.items() if v]
    if days is not None:
        rows = [r for r in rows if r["day"] in days]
    bulk_insert(session, AnalyticsFact.__table__, rows)
    _roll_up(session, measures, None if days is None else {d.replace(day=1) for d in days})
    return len(rows)


def _month_sql(session: Session, column):
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.date_trunc("month", column), Date)
    return func.date(column, "start of month")


def _roll_up(session: Session, measures: Sequence[str], months: set[dt.date] | None) -> None:
    """Recompute the monthly sums of ``measures`` for ``months`` (all when None) from the daily facts."""
    fm, f = AnalyticsFactMonth.__table__, AnalyticsFact.__table__
    month = _month_sql(session, f.c.day)
    where = [f.c.measure.in_(measures)]
    dwhere = [fm.c.measure.in_(measures)]
    if months is not None:
        if not months:
            return
        where.append(or_(*[and_(f.c.day >= m, f.c.day < _next_month(m)) for m in sorted(months)]))
        dwhere.append(fm.c.month.in_(sorted(months)))
    session.execute(delete(fm).where(*dwhere))
    sel = (select(f.c.measure, month, f.c.community_id, f.c.organization_id, f.c.department_id, f.c.bucket,
                  func.sum(f.c.value)).where(*where)
           .group_by(f.c.measure, month, f.c.community_id, f.c.organization_id, f.c.department_id, f.c.bucket))
    session.execute(insert(fm).from_select(["measure", "month", "community_id", "organization_id", "department_id",
                                            "bucket", "value"], sel))


def _next_month(m: dt.date) -> dt.date:
    return dt.date(m.year + m.month // 12, m.month % 12 + 1, 1)


def bulk_insert(session: Session, table, rows: list[dict]) -> None:
    """Many rows at once: COPY on PostgreSQL (inside the session's transaction), executemany elsewhere."""
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        cols = list(rows[0])
        driver = session.connection().connection.driver_connection
        with driver.cursor() as cur, cur.copy(f"COPY {table.name} ({', '.join(cols)}) FROM STDIN") as copy:
            for r in rows:
                copy.write_row(tuple(r[c] for c in cols))
        return
    # SQLite: the driver's executemany with plain tuples in SQLAlchemy's storage formats (3× faster than
    # going through the ORM's parameter processing for hundreds of thousands of rows).
    cols = list(rows[0])
    sql = f"INSERT INTO {table.name} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
    cursor = session.connection().connection.driver_connection.cursor()
    convert = [_sqlite_converter(next((r[c] for r in rows if r[c] is not None), None)) for c in cols]
    plain = all(f is None for f in convert)
    try:
        cursor.executemany(sql, [tuple(r[c] for c in cols) for r in rows] if plain else [
            tuple(v if f is None or v is None else f(v) for f, v in zip(convert, (r[c] for c in cols), strict=True))
            for r in rows])
    finally:
        cursor.close()


def _sqlite_converter(sample):
    """How a column's values are stored by SQLAlchemy on SQLite (None: as they are)."""
    if isinstance(sample, bool):
        return int
    if isinstance(sample, dt.datetime):
        return lambda v: v.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(sample, dt.date):
        return dt.date.isoformat
    return None


# --- measure families from source tables -------------------------------------------------------------

ENCOUNTER_SQL_COLUMNS = ("enc_amb", "enc_amb_in_county", "enc_amb_primary", "enc_imp", "enc_imp_in_county")


def encounter_stmt(days: set[dt.date] | None):
    """Visits per day × community × institution × department (the SQL the benchmark also runs on DuckDB)."""
    amb = Encounter.encounter_class.in_(("AMB", "EMER"))
    imp = Encounter.encounter_class == "IMP"
    one = literal(1)
    stmt = (select(Encounter.visit_date, Encounter.community_id, Encounter.organization_id, Encounter.department_id,
                   func.sum(case((amb, one), else_=0)),
                   func.sum(case((and_(amb, Encounter.in_county), one), else_=0)),
                   func.sum(case((and_(amb, Encounter.in_county, Encounter.organization_level == "primary"), one),
                                 else_=0)),
                   func.sum(case((imp, one), else_=0)),
                   func.sum(case((and_(imp, Encounter.in_county), one), else_=0)))
            .where(Encounter.status != "entered-in-error")
            .group_by(Encounter.visit_date, Encounter.community_id, Encounter.organization_id, Encounter.department_id))
    if days is not None:
        stmt = stmt.where(Encounter.visit_date.in_(sorted(days)))
    return stmt


def encounter_counts(session: Session, days: set[dt.date] | None) -> dict[tuple, int]:
    """基层就诊率 / 县域就诊率 / 县域内住院率 inputs per day × community × institution × department."""
    out: dict[tuple, int] = {}
    for day, comm, org, dept, *values in session.execute(encounter_stmt(days)):
        for measure, v in zip(ENCOUNTER_SQL_COLUMNS, values, strict=True):
            out[(measure, day, comm, org, dept, 0)] = int(v or 0)
    return out


def lookup_stmt(session: Session, days: set[dt.date] | None):
    """调阅 per local day × reading institution (also run on DuckDB by the benchmark)."""
    prefixes = rule_values(session, "analytics").get("lookup_what_prefixes") or []
    day_col = _local_date_sql(session, AuditEvent.recorded_at)
    return (select(day_col, AuditEvent.agent_org_id, func.count())
            .where(AuditEvent.action == "R", AuditEvent.outcome == "0",
                   or_(*[AuditEvent.entity_what.like(p + "%") for p in prefixes]) if prefixes else literal(False),
                   _time_filter(AuditEvent.recorded_at, days))
            .group_by(day_col, AuditEvent.agent_org_id))


def lookup_counts(session: Session, days: set[dt.date] | None) -> dict[tuple, int]:
    """调阅: successful audited reads of shared results, by the reading institution and local day."""
    stmt = lookup_stmt(session, days)
    comm = community_of(session)
    out: dict[tuple, int] = defaultdict(int)
    for day, org, n in session.execute(stmt):
        day = dt.date.fromisoformat(day) if isinstance(day, str) else day
        out[("lookups", day, comm.get(org or "", ""), org, "", 0)] += int(n)
    return out


def _as_date(value) -> dt.date:
    return dt.date.fromisoformat(value) if isinstance(value, str) else value


def appointment_counts(session: Session, days: set[dt.date] | None) -> dict[tuple, int]:
    """Scheduling F1–F3 inputs per exam day: live / precise (智慧预约率), done / no-show, and the exam
    wait histogram (bucket = days from booking to exam). Aggregated by the database."""
    a = Appointment
    day = _local_date_sql(session, a.start)
    booked = _local_date_sql(session, func.coalesce(a.booked_at, a.created_at))
    if session.get_bind().dialect.name == "postgresql":
        wait = day - booked
    else:
        wait = cast(func.julianday(day) - func.julianday(booked), Integer)
    stmt = (select(day, a.organization_id, Resource.department_id, a.status, a.precise, wait, func.count())
            .join(Resource, Resource.id == a.resource_id)
            .where(a.status.not_in(("pending", "cancelled")), _time_filter(a.start, days))
            .group_by(day, a.organization_id, Resource.department_id, a.status, a.precise, wait))
    comm = community_of(session)
    out: dict[tuple, int] = defaultdict(int)
    for d, org, dept, status, precise, w, n in session.execute(stmt):
        key = (_as_date(d), comm.get(org, ""), org, dept)
        out[("appt_live", *key, 0)] += n
        if precise:
            out[("appt_precise", *key, 0)] += n
        if status in ("noshow", "checked-in", "fulfilled"):
            out[("appt_done", *key, 0)] += n
            if status == "noshow":
                out[("appt_noshow", *key, 0)] += n
        out[("exam_wait", *key, max(0, int(w or 0)))] += n
    return out


def recognition_counts(session: Session, days: set[dt.date] | None) -> dict[tuple, int]:
    """R1.7: decisions with a recognisable prior → recognised / not recognised (reasons that do not count
    as non-recognition, 98 and 99, are left out); checks with a reminder; decisions accepting one.
    Aggregated by the database."""
    r = RecognitionDecision
    neutral = sorted(session.scalars(select(RecognitionReason.code).where(
        RecognitionReason.counts_as_non_recognition.is_(False))))
    length = (func.jsonb_array_length if session.get_bind().dialect.name == "postgresql"
              else func.json_array_length)(r.prior_ids)
    day = _local_date_sql(session, r.created_at)
    is_neutral = case((r.reason_code.in_(neutral), 1), else_=0) if neutral else literal(0)
    stmt = (select(day, r.ordering_org_id, r.kind, r.decision, is_neutral, func.count())
            .where(length > 0, _time_filter(r.created_at, days))
            .group_by(day, r.ordering_org_id, r.kind, r.decision, is_neutral))
    comm = community_of(session)
    out: dict[tuple, int] = defaultdict(int)
    for d, org, kind, decision, neutral_reason, n in session.execute(stmt):
        key = (_as_date(d), comm.get(org, ""), org, "", 0)
        if kind == "check":
            out[("recog_reminders", *key)] += n
        elif decision == "recognised":
            out[("recog_recognised", *key)] += n
            out[("recog_accepted", *key)] += n
        elif decision == "repeated" and not neutral_reason:
            out[("recog_not_recognised", *key)] += n
    return out


def referral_counts(session: Session, days: set[dt.date] | None) -> dict[tuple, int]:
    """Referrals submitted per day, by sender and receiving department (from the referral projection)."""
    stmt = (select(AnalyticsReferral.submitted_on, AnalyticsReferral.direction,
                   AnalyticsReferral.from_organization_id, AnalyticsReferral.to_department_id, func.count())
            .where(AnalyticsReferral.submitted_on.is_not(None))
            .group_by(AnalyticsReferral.submitted_on, AnalyticsReferral.direction,
                      AnalyticsReferral.from_organization_id, AnalyticsReferral.to_department_id))
    if days is not None:
        stmt = stmt.where(AnalyticsReferral.submitted_on.in_(sorted(days)))
    comm = community_of(session)
    out: dict[tuple, int] = defaultdict(int)
    for day, direction, org, dept, n in session.execute(stmt):
        measure = "referral_up" if direction == "up" else "referral_down"
        out[(measure, day, comm.get(org, ""), org, dept, 0)] += int(n)
    return out


COUNTERS = {"encounter": encounter_counts, "appointment": appointment_counts, "recognition": recognition_counts,
            "lookup": lookup_counts, "referral": referral_counts}


# --- projections from events -----------------------------------------------------------------------

PROJECTIONS = {  # model, key columns
    "referral": (AnalyticsReferral, ("referral_id",)),
    "contract": (AnalyticsContract, ("contract_id",)),
    "enrolment": (AnalyticsEnrolment, ("programme", "person_id")),
    "followup": (AnalyticsFollowup, ("followup_id",)),
}


def _kind(event_type: str) -> str | None:
    if event_type.startswith("referral."):
        return "referral"
    if event_type in ("contract.signed", "contract.ended"):
        return "contract"
    if event_type in ("registry.enrolled", "registry.closed"):
        return "enrolment"
    if event_type == "followup.recorded":
        return "followup"
    return None


def _key(kind: str, ev: OutboxEvent) -> tuple | None:
    p = ev.payload or {}
    if kind == "referral":
        return (p.get("referral_id") or ev.aggregate_id,)
    if kind == "contract":
        return (p.get("contract_id") or ev.aggregate_id,)
    if kind == "enrolment":
        return (p.get("programme", ""), ev.person_id) if ev.person_id else None
    return (p.get("followup_id") or ev.aggregate_id,)


def _fold(kind: str, row: dict | None, ev: OutboxEvent) -> dict:
    """The projection row after one event (pure; ``row`` is the state before, or None)."""
    p, et = ev.payload or {}, ev.event_type
    row = dict(row or {})
    if kind == "referral":
        submitted = _parse_iso_day(p.get("submitted_at")) or (
            (_parse_iso_day(p.get("at")) or local_day(ev.occurred_at)) if et == "referral.submitted" else None)
        row.update({"direction": p.get("direction") or row.get("direction") or "up",
                    "from_organization_id": p.get("from_organization_id") or row.get("from_organization_id") or "",
                    "to_department_id": p["to_department_id"] if "to_department_id" in p else row.get(
                        "to_department_id"),
                    "submitted_on": submitted or row.get("submitted_on")})
    elif kind == "contract":
        start, end = _parse_iso_day(p.get("start_date")), _parse_iso_day(p.get("end_date"))
        if et == "contract.ended" and end is None:
            end = local_day(ev.occurred_at)
        row.update({"person_id": ev.person_id or row.get("person_id"),
                    "organization_id": p.get("organization_id") or row.get("organization_id") or "",
                    "start_date": start or row.get("start_date") or local_day(ev.occurred_at),
                    "end_date": end or row.get("end_date"),
                    "key_group": bool(p.get("key_groups")) or bool(row.get("key_group"))})
    elif kind == "enrolment" and et == "registry.closed":
        row.update({"closed_on": local_day(ev.occurred_at), "organization_id": row.get("organization_id") or "",
                    "enrolled_on": row.get("enrolled_on") or local_day(ev.occurred_at)})
    elif kind == "enrolment":
        row.update({"organization_id": p.get("organization_id", ""), "closed_on": None,
                    "enrolled_on": _parse_iso_day(p.get("enrolled_on")) or local_day(ev.occurred_at)})
    else:
        row.update({"programme": p.get("programme", ""), "person_id": ev.person_id,
                    "organization_id": p.get("organization_id", ""),
                    "visit_date": _parse_iso_day(p.get("visit_date")) or local_day(ev.occurred_at),
                    "controlled": bool(p.get("controlled")), "on_schedule": bool(p.get("on_schedule"))})
    return row


def apply_projections(session: Session, events: Sequence[OutboxEvent], *, empty: bool = False) -> set[dt.date]:
    """Fold referral/contract/registry/follow-up events into their projections, in event order, with one
    read and one delete + insert per table and batch (idempotent: folding an event twice gives the same
    row). ``empty``: the tables were just emptied (rebuild), nothing to read. Returns the dirty referral
    days (the submission day before and after)."""
    by_kind: dict[str, list[OutboxEvent]] = defaultdict(list)
    for ev in events:
        kind = _kind(ev.event_type)
        if kind:
            by_kind[kind].append(ev)
    dirty: set[dt.date] = set()
    for kind, evs in by_kind.items():
        model, key_cols = PROJECTIONS[kind]
        keyed = [(k, ev) for ev in evs if (k := _key(kind, ev)) is not None]
        keys = sorted({k for k, _ in keyed})
        state: dict[tuple, dict] = {}
        if not empty:
            cols = [model.__table__.c[c] for c in key_cols]
            for chunk in _chunks(keys):
                cond = cols[0].in_([k[0] for k in chunk]) if len(cols) == 1 else or_(
                    *[and_(cols[0] == k[0], cols[1] == k[1]) for k in chunk])
                for r in session.execute(select(model.__table__).where(cond)).mappings():
                    state[tuple(r[c] for c in key_cols)] = {k: v for k, v in r.items() if k not in key_cols}
            if kind == "referral":
                dirty |= {r["submitted_on"] for r in state.values() if r.get("submitted_on")}
            else:
                _stock_from(session, state.values())
            for chunk in _chunks(list(state)):
                cols0 = [model.__table__.c[c] for c in key_cols]
                cond = cols0[0].in_([k[0] for k in chunk]) if len(cols0) == 1 else or_(
                    *[and_(cols0[0] == k[0], cols0[1] == k[1]) for k in chunk])
                session.execute(delete(model.__table__).where(cond))
        for k, ev in keyed:
            state[k] = _fold(kind, state.get(k), ev)
        if kind == "referral":
            dirty |= {r["submitted_on"] for r in state.values() if r.get("submitted_on")}
        else:
            _stock_from(session, state.values())
        _write_state(session, kind, state)
    return dirty


STOCK_DATES = ("start_date", "end_date", "enrolled_on", "closed_on", "visit_date")


def _stock_from(session: Session, rows: Iterable[dict]) -> None:
    """Remember the earliest date a family-doctor change touches: month-end snapshots from its month on
    are recomputed by ``update``."""
    dates = [r[k] for r in rows for k in STOCK_DATES if r.get(k)]
    if dates:
        cur = session.info.get("analytics_stock_from")
        session.info["analytics_stock_from"] = min([*dates, *([cur] if cur else [])])


def refresh_snapshots(session: Session, since: dt.date | None) -> int:
    """Month-end stock snapshots from ``since``'s month (all when None) to the current month."""
    from onetrip.analytics import stock

    this_month = local_day(utcnow()).replace(day=1)
    if since is None:
        session.execute(delete(AnalyticsFactMonth).where(AnalyticsFactMonth.measure.in_(stock.STOCK_MEASURES)))
        firsts = [session.scalar(select(func.min(c))) for c in (
            AnalyticsContract.start_date, AnalyticsEnrolment.enrolled_on, AnalyticsFollowup.visit_date)]
        firsts = [d for d in firsts if d]
        if not firsts:
            return 0
        since = min(firsts)
    elif session.scalar(select(AnalyticsEnrolment.person_id).limit(1)) is None and \
            session.scalar(select(AnalyticsContract.contract_id).limit(1)) is None:
        return 0  # no family-doctor data at all
    m, months = max(since, this_month.replace(year=this_month.year - 10)).replace(day=1), []
    while m <= this_month:
        months.append(m)
        m = _next_month(m)
    minimum = int(rule_values(session, "analytics").get("standard_followups_per_year") or 4)
    return stock.snapshot(session, months, minimum, community_of(session))


def _write_state(session: Session, kind: str, state: dict[tuple, dict]) -> None:
    model, key_cols = PROJECTIONS[kind]
    cols = [c.name for c in model.__table__.columns]
    rows = [{c: r.get(c) for c in cols} for r in ({**dict(zip(key_cols, k, strict=True)), **v}
                                                 for k, v in state.items())]
    bulk_insert(session, model.__table__, rows)


# --- dirty days from events ------------------------------------------------------------------------

def dirty_days(session: Session, events: Sequence[OutboxEvent]) -> dict[str, set[dt.date]]:
    """Which days of which families the events touch (projection events are folded here too)."""
    dirty: dict[str, set[dt.date]] = defaultdict(set)
    appts, recogs, projection_events = [], [], []
    for ev in events:
        et = ev.event_type
        if et == "encounter.recorded":
            d = _parse_iso_day((ev.payload or {}).get("visit_date"))
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
    for chunk in _chunks(sorted(set(appts))):
        dirty["appointment"] |= {local_day(s) for s in session.scalars(
            select(Appointment.start).where(Appointment.id.in_(chunk)))}
    for chunk in _chunks(sorted(set(recogs))):
        dirty["recognition"] |= {local_day(s) for s in session.scalars(
            select(RecognitionDecision.created_at).where(RecognitionDecision.id.in_(chunk)))}
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
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(80808)"))


def update(session: Session, progress: Progress | None = None) -> dict[str, Any]:
    """Incremental update: consume new outbox events and audit rows, recompute the dirty days.
    Flushes; the caller commits (cursor and facts move in one transaction)."""
    _lock(session)
    session.info.pop("analytics_stock", None)  # figures cached by service._stock_at in this session
    out_cur, audit_cur = _cursor(session, "outbox"), _cursor(session, "audit")
    # SQLite serialises writers, so ids commit in order; PostgreSQL sequences do not: look back.
    since = utcnow() - (LOOKBACK if session.get_bind().dialect.name == "postgresql" else dt.timedelta(0))
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
    day_col = _local_date_sql(session, AuditEvent.recorded_at)
    new_rows = and_(AuditEvent.seq > audit_cur.last_id, AuditEvent.seq <= max_seq)
    for d in session.scalars(select(day_col).where(or_(new_rows, and_(AuditEvent.recorded_at >= since,
                                                                      AuditEvent.seq <= max_seq))).distinct()):
        dirty["lookup"].add(dt.date.fromisoformat(d) if isinstance(d, str) else d)
    rows = 0
    families = [f for f in FAMILIES if dirty.get(f)]
    for i, fam in enumerate(families, 1):
        rows += _replace(session, fam, dirty[fam], COUNTERS[fam](session, dirty[fam]))
        if progress:
            progress("facts", i, len(families))
    from onetrip.analytics.stock import MARKER

    since = session.info.pop("analytics_stock_from", None)
    this_month = local_day(utcnow()).replace(day=1)
    if since is None and session.scalar(select(AnalyticsFactMonth.value).where(
            AnalyticsFactMonth.measure == MARKER, AnalyticsFactMonth.month == this_month)) is None:
        since = this_month  # a new month: its snapshot does not exist yet
    if since is not None:
        rows += refresh_snapshots(session, min(since, this_month))
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
        kind = _kind(ev.event_type)
        key = _key(kind, ev) if kind else None
        if key is not None:
            states[kind][key] = _fold(kind, states[kind].get(key), ev)
        done += 1
        if progress and done % BATCH == 0:
            progress("rebuild", done, steps)
    for kind, state in states.items():
        _write_state(session, kind, state)
    rows = 0
    for fam in FAMILIES:
        rows += _replace(session, fam, None, COUNTERS[fam](session, None))
        done += 1
        if progress:
            progress("rebuild", done, steps)
    session.info.pop("analytics_stock_from", None)
    rows += refresh_snapshots(session, None)
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
