"""Projections of the family-doctor and referral events (referral, contract, registry enrolment,
follow-up) into the analytics tables the stock indicators and referral counts read.

An event is folded into its row by a pure function (``fold``); folding the same event twice gives the same
row, so the update's look-back window cannot count anything twice. The update folds a batch of events into
the rows they touch (``apply_projections``); the rebuild folds every event in memory and writes once
(``write_state``).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.orm import Session

from onetrip.analytics import stock
from onetrip.analytics.dates import chunks, local_day, parse_iso_day
from onetrip.analytics.models import (
    AnalyticsContract,
    AnalyticsEnrolment,
    AnalyticsFollowup,
    AnalyticsReferral,
)
from onetrip.db.bulk import bulk_insert
from onetrip.outbox.models import OutboxEvent

PROJECTION_EVENTS = ("referral.", "contract.", "registry.enrolled", "registry.closed", "followup.recorded")

PROJECTIONS = {  # model, key columns
    "referral": (AnalyticsReferral, ("referral_id",)),
    "contract": (AnalyticsContract, ("contract_id",)),
    "enrolment": (AnalyticsEnrolment, ("programme", "person_id")),
    "followup": (AnalyticsFollowup, ("followup_id",)),
}


def kind_of(event_type: str) -> str | None:
    if event_type.startswith("referral."):
        return "referral"
    if event_type in ("contract.signed", "contract.ended"):
        return "contract"
    if event_type in ("registry.enrolled", "registry.closed"):
        return "enrolment"
    if event_type == "followup.recorded":
        return "followup"
    return None


def key_of(kind: str, ev: OutboxEvent) -> tuple | None:
    p = ev.payload or {}
    if kind == "referral":
        return (p.get("referral_id") or ev.aggregate_id,)
    if kind == "contract":
        return (p.get("contract_id") or ev.aggregate_id,)
    if kind == "enrolment":
        return (p.get("programme", ""), ev.person_id) if ev.person_id else None
    return (p.get("followup_id") or ev.aggregate_id,)


def fold(kind: str, row: dict | None, ev: OutboxEvent) -> dict:
    """The projection row after one event (pure; ``row`` is the state before, or None)."""
    p, et = ev.payload or {}, ev.event_type
    row = dict(row or {})
    if kind == "referral":
        submitted = parse_iso_day(p.get("submitted_at")) or (
            (parse_iso_day(p.get("at")) or local_day(ev.occurred_at)) if et == "referral.submitted" else None)
        row.update({"direction": p.get("direction") or row.get("direction") or "up",
                    "from_organization_id": p.get("from_organization_id") or row.get("from_organization_id") or "",
                    "to_department_id": p["to_department_id"] if "to_department_id" in p else row.get(
                        "to_department_id"),
                    "submitted_on": submitted or row.get("submitted_on")})
    elif kind == "contract":
        start, end = parse_iso_day(p.get("start_date")), parse_iso_day(p.get("end_date"))
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
                    "enrolled_on": parse_iso_day(p.get("enrolled_on")) or local_day(ev.occurred_at)})
    else:
        row.update({"programme": p.get("programme", ""), "person_id": ev.person_id,
                    "organization_id": p.get("organization_id", ""),
                    "visit_date": parse_iso_day(p.get("visit_date")) or local_day(ev.occurred_at),
                    "controlled": bool(p.get("controlled")), "on_schedule": bool(p.get("on_schedule"))})
    return row


def apply_projections(session: Session, events: Sequence[OutboxEvent], *, empty: bool = False) -> set[dt.date]:
    """Fold referral/contract/registry/follow-up events into their projections, in event order, with one
    read and one delete + insert per table and batch (idempotent: folding an event twice gives the same
    row). ``empty``: the tables were just emptied (rebuild), nothing to read. Returns the dirty referral
    days (the submission day before and after)."""
    by_kind: dict[str, list[OutboxEvent]] = defaultdict(list)
    for ev in events:
        kind = kind_of(ev.event_type)
        if kind:
            by_kind[kind].append(ev)
    dirty: set[dt.date] = set()
    for kind, evs in by_kind.items():
        model, key_cols = PROJECTIONS[kind]
        keyed = [(k, ev) for ev in evs if (k := key_of(kind, ev)) is not None]
        keys = sorted({k for k, _ in keyed})
        state: dict[tuple, dict] = {}
        if not empty:
            cols = [model.__table__.c[c] for c in key_cols]
            for chunk in chunks(keys):
                cond = cols[0].in_([k[0] for k in chunk]) if len(cols) == 1 else or_(
                    *[and_(cols[0] == k[0], cols[1] == k[1]) for k in chunk])
                for r in session.execute(select(model.__table__).where(cond)).mappings():
                    state[tuple(r[c] for c in key_cols)] = {k: v for k, v in r.items() if k not in key_cols}
            if kind == "referral":
                dirty |= {r["submitted_on"] for r in state.values() if r.get("submitted_on")}
            else:
                stock.mark_changed(session, state.values())
            for chunk in chunks(list(state)):
                cols0 = [model.__table__.c[c] for c in key_cols]
                cond = cols0[0].in_([k[0] for k in chunk]) if len(cols0) == 1 else or_(
                    *[and_(cols0[0] == k[0], cols0[1] == k[1]) for k in chunk])
                session.execute(delete(model.__table__).where(cond))
        for k, ev in keyed:
            state[k] = fold(kind, state.get(k), ev)
        if kind == "referral":
            dirty |= {r["submitted_on"] for r in state.values() if r.get("submitted_on")}
        else:
            stock.mark_changed(session, state.values())
        write_state(session, kind, state)
    return dirty


def write_state(session: Session, kind: str, state: dict[tuple, dict]) -> None:
    model, key_cols = PROJECTIONS[kind]
    cols = [c.name for c in model.__table__.columns]
    rows = [{c: r.get(c) for c in cols} for r in ({**dict(zip(key_cols, k, strict=True)), **v}
                                                 for k, v in state.items())]
    bulk_insert(session, model.__table__, rows)
