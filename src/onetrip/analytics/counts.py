"""The measure families, counted from their source tables per local day × community × institution ×
department (× bucket): visits, appointments, recognition decisions, look-ups (调阅) and referrals. Each
counter takes the days to count (None: every day) and returns ``{(measure, day, community, institution,
department, bucket): value}``; the update counts the dirty days, the rebuild every day — the same query.
``replace_facts`` writes a family's counts over its days and rolls them up per month.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import and_, case, delete, func, insert, literal, or_, select
from sqlalchemy.orm import Session

from onetrip.analytics.dates import (
    as_date,
    chunks,
    local_day,
    next_month,
    time_filter,
)
from onetrip.analytics.indicators import MEASURES
from onetrip.analytics.models import AnalyticsFact, AnalyticsFactMonth, AnalyticsReferral, Encounter
from onetrip.audit.models import AuditEvent
from onetrip.db import expressions as expr
from onetrip.db.bulk import bulk_insert
from onetrip.recognition.interface import RecognitionDecision, RecognitionReason
from onetrip.registry.models import Organization
from onetrip.rules.service import rule_values
from onetrip.scheduling.interface import Appointment, Resource


def community_of(session: Session) -> dict[str, str]:
    """{institution: its 医共体} ('' when it has none)."""
    return {oid: cid or "" for oid, cid in session.execute(select(Organization.id, Organization.community_id))}


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
    day_col = expr.local_date(session, AuditEvent.recorded_at)
    return (select(day_col, AuditEvent.agent_org_id, func.count())
            .where(AuditEvent.action == "R", AuditEvent.outcome == "0",
                   or_(*[AuditEvent.entity_what.like(p + "%") for p in prefixes]) if prefixes else literal(False),
                   time_filter(AuditEvent.recorded_at, days))
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


def appointment_counts(session: Session, days: set[dt.date] | None) -> dict[tuple, int]:
    """Scheduling F1–F3 inputs per exam day: live / precise (智慧预约率), done / no-show, and the exam
    wait histogram (bucket = days from booking to exam). Aggregated by the database."""
    a = Appointment
    day = expr.local_date(session, a.start)
    booked = expr.local_date(session, func.coalesce(a.booked_at, a.created_at))
    wait = expr.days_between(session, day, booked)
    stmt = (select(day, a.organization_id, Resource.department_id, a.status, a.precise, wait, func.count())
            .join(Resource, Resource.id == a.resource_id)
            .where(a.status.not_in(("pending", "cancelled")), time_filter(a.start, days))
            .group_by(day, a.organization_id, Resource.department_id, a.status, a.precise, wait))
    comm = community_of(session)
    out: dict[tuple, int] = defaultdict(int)
    for d, org, dept, status, precise, w, n in session.execute(stmt):
        key = (as_date(d), comm.get(org, ""), org, dept)
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
    length = expr.json_array_length(session, r.prior_ids)
    day = expr.local_date(session, r.created_at)
    is_neutral = case((r.reason_code.in_(neutral), 1), else_=0) if neutral else literal(0)
    stmt = (select(day, r.ordering_org_id, r.kind, r.decision, is_neutral, func.count())
            .where(length > 0, time_filter(r.created_at, days))
            .group_by(day, r.ordering_org_id, r.kind, r.decision, is_neutral))
    comm = community_of(session)
    out: dict[tuple, int] = defaultdict(int)
    for d, org, kind, decision, neutral_reason, n in session.execute(stmt):
        key = (as_date(d), comm.get(org, ""), org, "", 0)
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


# Where an event's row keeps its moment: appointment.* and recognition.* events name the row, whose day
# is the one to recount.
SOURCE_MOMENTS = {"appointment": (Appointment.id, Appointment.start),
                  "recognition": (RecognitionDecision.id, RecognitionDecision.created_at)}


def days_of(session: Session, family: str, ids: list[str]) -> set[dt.date]:
    """The local days of the source rows ``ids`` of a measure family (the days their events make dirty)."""
    key, moment = SOURCE_MOMENTS[family]
    out: set[dt.date] = set()
    for chunk in chunks(sorted(set(ids))):
        out |= {local_day(m) for m in session.scalars(select(moment).where(key.in_(chunk)))}
    return out


COUNTERS = {"encounter": encounter_counts, "appointment": appointment_counts, "recognition": recognition_counts,
            "lookup": lookup_counts, "referral": referral_counts}


# --- the fact table and its monthly roll-up ---------------------------------------------------------

def replace_facts(session: Session, family: str, days: set[dt.date] | None, counts: dict[tuple, int]) -> int:
    """Delete the family's facts on ``days`` (all days when None) and insert ``counts``
    {(measure, day, community, org, dept, bucket): value}."""
    measures = MEASURES[family]
    if days is None:
        session.execute(delete(AnalyticsFact).where(AnalyticsFact.measure.in_(measures)))
    else:
        for chunk in chunks(sorted(days)):
            session.execute(delete(AnalyticsFact).where(AnalyticsFact.measure.in_(measures),
                                                        AnalyticsFact.day.in_(chunk)))
    rows = [{"measure": m, "day": d, "community_id": c or "", "organization_id": o or "", "department_id": p or "",
             "bucket": b, "value": v} for (m, d, c, o, p, b), v in counts.items() if v]
    if days is not None:
        rows = [r for r in rows if r["day"] in days]
    bulk_insert(session, AnalyticsFact.__table__, rows)
    roll_up(session, measures, None if days is None else {d.replace(day=1) for d in days})
    return len(rows)


def roll_up(session: Session, measures: Sequence[str], months: set[dt.date] | None) -> None:
    """Recompute the monthly sums of ``measures`` for ``months`` (all when None) from the daily facts."""
    fm, f = AnalyticsFactMonth.__table__, AnalyticsFact.__table__
    month = expr.month_start(session, f.c.day)
    where = [f.c.measure.in_(measures)]
    dwhere = [fm.c.measure.in_(measures)]
    if months is not None:
        if not months:
            return
        where.append(or_(*[and_(f.c.day >= m, f.c.day < next_month(m)) for m in sorted(months)]))
        dwhere.append(fm.c.month.in_(sorted(months)))
    session.execute(delete(fm).where(*dwhere))
    sel = (select(f.c.measure, month, f.c.community_id, f.c.organization_id, f.c.department_id, f.c.bucket,
                  func.sum(f.c.value)).where(*where)
           .group_by(f.c.measure, month, f.c.community_id, f.c.organization_id, f.c.department_id, f.c.bucket))
    session.execute(insert(fm).from_select(["measure", "month", "community_id", "organization_id", "department_id",
                                            "bucket", "value"], sel))
