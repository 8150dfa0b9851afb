"""Figures of shared results and recognition (issue 4 §6): 调阅 look-ups, 互认率 (RULES R1.7), reminder
acceptance and money saved — per institution, department, item or month. Aggregates only: no patient data
leaves this module.

Definitions (also in docs/recognition.md):

- **Orders checked**: ``check`` rows of the decision log. Every other figure hangs off the check — its
  ordering institution, department, item and (China-time) month — whenever its decision was recorded.
- **Reminders**: checks that found at least one recognisable prior (a CDS card / REST answer suggesting re-use).
- The **decision** of a check is its latest ``decision`` row (a doctor may change their mind).
- **互认率 (R1.7, first definition)** = recognised ÷ (recognised + not recognised) among reminders, where
  "not recognised" = repeated with a reason that counts as non-recognition (01–08); repeats with 98 / 99 are
  reported as ``excluded`` and are in neither term.
- **Reminder acceptance (R1.7, second definition, reported separately)** = accepted ÷ reminders shown;
  accepted = recognised, overridden = repeated (any reason); reminders without a decision stay in the
  denominator.
- **Money saved** = the catalogue price of the item of every recognised (= dropped) order.
- **Look-ups (调阅)** = successful audited reads of shared results: ``read`` / ``vread`` / ``search-type``
  audit rows on DiagnosticReport, Observation or ImagingStudy (reads, and searches by patient), and person
  timeline / trend reads. Grouped by
  the reader's institution and department; the item is known for report reads only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from onetrip.audit import service as audit
from onetrip.audit.models import AuditEvent
from onetrip.kit.clock import LOCAL_TZ
from onetrip.kit.errors import BadRequest, Forbidden
from onetrip.kit.principal import Principal
from onetrip.recognition.models import RecognitionDecision, RecognitionItem, RecognitionReason
from onetrip.records.interface import DiagnosticReport
from onetrip.registry.models import Department, Organization, Practitioner, User

GROUPS = ("organization", "department", "item", "month")
LOOKUP_SUBTYPES = ("read", "vread", "search-type")
RESULT_TYPES = ("DiagnosticReport/", "Observation/", "ImagingStudy/")
READER_ROLES = frozenset({"admin", "bureau_manager"})


@dataclass(frozen=True)
class Check:
    """One order checked, with its latest decision (None: undecided)."""

    organization: str
    department: str | None
    item: str
    month: str
    has_priors: bool
    decision: str | None = None
    reason_code: str | None = None


@dataclass(frozen=True)
class Lookup:
    organization: str | None
    department: str | None
    item: str | None
    month: str


@dataclass
class Row:
    key: str | None
    lookups: int = 0
    orders_checked: int = 0
    reminders: int = 0
    recognised: int = 0
    not_recognised: int = 0
    excluded: int = 0
    overridden: int = 0
    undecided: int = 0
    money_saved: Decimal = field(default_factory=lambda: Decimal("0.00"))

    @property
    def recognition_rate(self) -> float | None:
        """R1.7: recognised ÷ (recognised + not recognised); None when there were no such decisions."""
        den = self.recognised + self.not_recognised
        return round(self.recognised / den, 4) if den else None

    @property
    def acceptance_rate(self) -> float | None:
        """Reminder acceptance: accepted (recognised) ÷ reminders shown."""
        return round(self.recognised / self.reminders, 4) if self.reminders else None


def month_of(moment: dt.datetime) -> str:
    return moment.astimezone(LOCAL_TZ).strftime("%Y-%m")


def _key(obj: Check | Lookup, group_by: str) -> str | None:
    return getattr(obj, group_by)


def aggregate(checks: Iterable[Check], lookups: Iterable[Lookup], *, group_by: str,
              counts_as_non_recognition: dict[str, bool], prices: dict[str, Decimal]) -> tuple[list[Row], Row]:
    """The figures per group and in total (pure: plain data in, rows out; RULES R1.7)."""
    if group_by not in GROUPS:
        raise ValueError(group_by)
    rows: dict[str | None, Row] = {}
    total = Row(None)

    def row(key: str | None) -> Row:
        if key not in rows:
            rows[key] = Row(key)
        return rows[key]

    for c in checks:
        for r in (row(_key(c, group_by)), total):
            r.orders_checked += 1
            if not c.has_priors:
                continue
            r.reminders += 1
            if c.decision == "recognised":
                r.recognised += 1
                r.money_saved += prices.get(c.item, Decimal("0"))
            elif c.decision == "repeated":
                r.overridden += 1
                if counts_as_non_recognition.get(c.reason_code or "", True):
                    r.not_recognised += 1
                else:
                    r.excluded += 1
            else:
                r.undecided += 1
    for lk in lookups:
        row(_key(lk, group_by)).lookups += 1
        total.lookups += 1
    ordered = sorted(rows.values(), key=lambda r: (r.key is None, r.key or ""))
    return ordered, total


# --- reading the log ---------------------------------------------------------------------------------

def _range(start: dt.date | None, end: dt.date | None) -> tuple[dt.datetime | None, dt.datetime | None]:
    if start and end and end < start:
        raise BadRequest("结束日期早于开始日期 / 'to' is before 'from'", expression=["to"])
    lo = dt.datetime.combine(start, dt.time(0), LOCAL_TZ).astimezone(dt.UTC) if start else None
    hi = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(0), LOCAL_TZ).astimezone(dt.UTC) if end else None
    return lo, hi


def load_checks(session: Session, lo: dt.datetime | None, hi: dt.datetime | None) -> list[Check]:
    q = select(RecognitionDecision.id, RecognitionDecision.ordering_org_id, RecognitionDecision.department_id,
               RecognitionDecision.item_code, RecognitionDecision.created_at, RecognitionDecision.prior_ids
               ).where(RecognitionDecision.kind == "check")
    if lo is not None:
        q = q.where(RecognitionDecision.created_at >= lo)
    if hi is not None:
        q = q.where(RecognitionDecision.created_at < hi)
    checks = session.execute(q).all()
    latest: dict[str, tuple[dt.datetime, str, str | None, str | None]] = {}
    ids = [c.id for c in checks]
    for i in range(0, len(ids), 5000):
        for d in session.execute(select(RecognitionDecision.check_id, RecognitionDecision.created_at,
                                        RecognitionDecision.id, RecognitionDecision.decision,
                                        RecognitionDecision.reason_code).where(
                RecognitionDecision.kind == "decision", RecognitionDecision.check_id.in_(ids[i:i + 5000]))):
            have = latest.get(d.check_id)
            if have is None or (d.created_at, d.id) > (have[0], have[1]):
                latest[d.check_id] = (d.created_at, d.id, d.decision, d.reason_code)
    out = []
    for c in checks:
        dec = latest.get(c.id)
        out.append(Check(c.ordering_org_id, c.department_id, c.item_code, month_of(c.created_at),
                         bool(c.prior_ids), dec[2] if dec else None, dec[3] if dec else None))
    return out


def _lookup_filter():
    conds = [AuditEvent.entity_what.like(p + "%") for p in RESULT_TYPES]
    conds += [AuditEvent.entity_what.like(p[:-1] + "?%") for p in RESULT_TYPES]  # FHIR searches by patient
    conds += [AuditEvent.entity_what.like("Person/%/timeline%"), AuditEvent.entity_what.like("Person/%/trend%")]
    return or_(*conds)


def load_lookups(session: Session, lo: dt.datetime | None, hi: dt.datetime | None) -> list[Lookup]:
    q = select(AuditEvent.agent_org_id, AuditEvent.agent_user_id, AuditEvent.entity_what,
               AuditEvent.recorded_at).where(AuditEvent.outcome == audit.OUTCOME_SUCCESS,
                                             AuditEvent.subtype.in_(LOOKUP_SUBTYPES), _lookup_filter())
    if lo is not None:
        q = q.where(AuditEvent.recorded_at >= lo)
    if hi is not None:
        q = q.where(AuditEvent.recorded_at < hi)
    events = session.execute(q).all()
    users = {e.agent_user_id for e in events if e.agent_user_id}
    dept: dict[str, str | None] = {}
    if users:
        dept = dict(session.execute(select(User.id, Practitioner.department_id).join(
            Practitioner, User.practitioner_id == Practitioner.id).where(User.id.in_(users))).all())
    report_ids = {e.entity_what.split("/", 1)[1] for e in events if e.entity_what.startswith("DiagnosticReport/")}
    item_of_report: dict[str, str | None] = {}
    if report_ids:
        by_std = dict(session.execute(select(RecognitionItem.standard_code, RecognitionItem.local_code).where(
            RecognitionItem.standard_code.is_not(None))).all())
        local = set(session.scalars(select(RecognitionItem.local_code)))
        ids = list(report_ids)
        for i in range(0, len(ids), 5000):
            for rid, code, code_local in session.execute(select(
                    DiagnosticReport.id, DiagnosticReport.code, DiagnosticReport.code_local).where(
                    DiagnosticReport.id.in_(ids[i:i + 5000]))):
                item_of_report[rid] = by_std.get(code or "") or (code_local if code_local in local else None)
    out = []
    for e in events:
        item = None
        if e.entity_what.startswith("DiagnosticReport/"):
            item = item_of_report.get(e.entity_what.split("/", 1)[1])
        out.append(Lookup(e.agent_org_id, dept.get(e.agent_user_id) if e.agent_user_id else None, item,
                          month_of(e.recorded_at)))
    return out


def _labels(session: Session, group_by: str, keys: set[str]) -> dict[str, str]:
    if not keys or group_by == "month":
        return {k: k for k in keys}
    if group_by == "organization":
        return dict(session.execute(select(Organization.id, Organization.name).where(Organization.id.in_(keys))).all())
    if group_by == "department":
        return {i: f"{o} · {n}" for i, n, o in session.execute(
            select(Department.id, Department.name, Organization.name).join(
                Organization, Department.organization_id == Organization.id).where(Department.id.in_(keys)))}
    return dict(session.execute(select(RecognitionItem.local_code, RecognitionItem.name_zh).where(
        RecognitionItem.local_code.in_(keys))).all())


def can_read(principal: Principal) -> bool:
    return principal.is_operator or bool(READER_ROLES & principal.roles)


def _out(r: Row, label: str | None) -> dict[str, Any]:
    return {"key": r.key, "label": label, "lookups": r.lookups, "orders_checked": r.orders_checked,
            "reminders": r.reminders, "recognised": r.recognised, "not_recognised": r.not_recognised,
            "excluded": r.excluded, "recognition_rate": r.recognition_rate, "accepted": r.recognised,
            "overridden": r.overridden, "undecided": r.undecided, "acceptance_rate": r.acceptance_rate,
            "money_saved": f"{r.money_saved.quantize(Decimal('0.01'))}"}


def figures(session: Session, principal: Principal, *, group_by: str, start: dt.date | None = None,
            end: dt.date | None = None) -> dict[str, Any]:
    """The figures for [start, end] (China dates, inclusive) grouped by one dimension. Admins, bureau
    managers and system clients only (aggregates, no patient data); the read is audited."""
    if not can_read(principal):
        raise Forbidden("只有卫健局管理人员和管理员可以查看互认统计 / only bureau managers and admins may read the "
                        "recognition figures")
    if group_by not in GROUPS:
        raise BadRequest(f"group_by 应为 / must be one of {', '.join(GROUPS)}", expression=["group_by"])
    lo, hi = _range(start, end)
    reasons = dict(session.execute(select(RecognitionReason.code, RecognitionReason.counts_as_non_recognition)).all())
    prices = dict(session.execute(select(RecognitionItem.local_code, RecognitionItem.price)).all())
    rows, total = aggregate(load_checks(session, lo, hi), load_lookups(session, lo, hi), group_by=group_by,
                            counts_as_non_recognition=reasons, prices=prices)
    labels = _labels(session, group_by, {r.key for r in rows if r.key})
    audit.record(session, principal, "search", what=["RecognitionFigures"],
                 query=f"group_by={group_by}&from={start or ''}&to={end or ''}")
    return {"group_by": group_by, "from": start.isoformat() if start else None,
            "to": end.isoformat() if end else None,
            "definitions": {"recognition_rate": "RULES R1.7: recognised / (recognised + not_recognised) among "
                                                "orders with a recognisable prior; 98/99 repeats excluded",
                            "acceptance_rate": "accepted (recognised) / reminders shown",
                            "money_saved": "catalogue price of recognised (dropped) orders, CNY",
                            "lookups": "audited successful reads of shared results (调阅)"},
            "rows": [_out(r, labels.get(r.key) if r.key else None) for r in rows], "total": _out(total, None)}
