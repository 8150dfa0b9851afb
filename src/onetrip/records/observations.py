"""The one path that stores observations (检验结果), whoever sends them: a FHIR Observation create, a
transaction Bundle's Observation entries, a report's results (FHIR DiagnosticReport, HL7 v2 ORU^R01) and
the results a correction adds.

``plan`` checks the items and gives each the id it has (a repeat of a known sender identifier) or will
have, reading only; ``store`` writes the new ones with a fixed number of statements (one INSERT
executemany, one audit call, one outbox executemany), whatever the number of items. If a concurrent
sender wins the race on an identifier, the rows are stored one by one and the lost ones come back as
repeats. Flushes, never commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from onetrip.audit import service as audit
from onetrip.db.base import new_id
from onetrip.kit.clock import utcnow
from onetrip.kit.errors import ApiError, BadRequest
from onetrip.kit.principal import Principal
from onetrip.outbox.service import event_row
from onetrip.persons.models import PatientRecord
from onetrip.records import repository as repo
from onetrip.records.models import DiagnosticReport, Observation
from onetrip.records.schemas import ObservationIn, _ResultIn
from onetrip.records.store import (
    COMMON,
    Stored,
    check_write,
    insert_or_winner,
    resolve_patient,
    same_person,
    stored_event,
)

VALUE_COLUMNS = ("value_quantity", "value_string", "unit", "reference_low", "reference_high", "reference_text",
                 "interpretation")


@dataclass
class PlannedObservations:
    """Observations checked (in order), each with the id it has or will have, not yet stored (``plan``).
    ``store`` stores them — ``records.service.ingest_report(..., planned=...)`` with the new report,
    ``report_id`` set as they are inserted."""

    items: list[ObservationIn]
    ids: list[str]  # per item: the stored row's id (a repeat) or the new row's
    _out: list[Stored | int]  # per item: a stored row, or the position in ``_new`` of a row to insert
    _new: list[tuple[int, ObservationIn, dict[str, Any]]]
    _keep: list  # the patient records, held in the identity map until the rows are stored
    records: dict[tuple[str, str], PatientRecord | None]  # (organization, MRN) → its one record (None: several)
    stored: list[Stored] | None = None  # set when stored


def _prefetch_patients(session: Session, items: list[_ResultIn]) -> tuple[list[PatientRecord], dict]:
    """The items' patient records in one or two queries: (rows — hold them so ``session.get`` finds them in
    the identity map, {(organization, MRN): record} for the MRNs that match exactly one record)."""
    ids = {d.patient_record_id for d in items if d.patient_record_id}
    rows: list[PatientRecord] = [r for i in ids if (r := session.identity_map.get(identity_key(PatientRecord, i)))]
    ids -= {r.id for r in rows}
    by_org: dict[str, set[str]] = {}
    for d in items:
        if not d.patient_record_id and d.mrn:
            by_org.setdefault(d.organization_id, set()).add(d.mrn)
    if ids:
        rows += session.scalars(select(PatientRecord).where(PatientRecord.id.in_(ids)))
    by_mrn: dict[tuple[str, str], PatientRecord | None] = {}
    for org, mrns in by_org.items():
        for rec in session.scalars(select(PatientRecord).where(PatientRecord.organization_id == org,
                                                               PatientRecord.mrn.in_(mrns))):
            rows.append(rec)
            key = (org, rec.mrn)
            by_mrn[key] = None if key in by_mrn else rec  # ambiguous → resolve_patient decides
    return rows, by_mrn


def plan(session: Session, principal: Principal, items: list[ObservationIn],
         report: DiagnosticReport | None = None) -> PlannedObservations:
    """Check observations and give each its row id, storing nothing (reads only). Per item, in order: an
    effective time (the report's when it has none), a value, the right to send the institution's results,
    a known sender identifier (a repeat), the patient. An error names the failing item in ``item_index``."""
    keep, by_mrn = _prefetch_patients(session, items)
    wanted: dict[tuple[str, str], set[str]] = {}
    for d in items:
        wanted.setdefault((d.organization_id, d.identifier_system), set()).add(d.identifier_value)
    known = repo.observations_by_identifiers(session, wanted)
    checked: set[str] = set()
    out: list[Stored | int] = []
    ids: list[str] = []
    new: list[tuple[int, ObservationIn, dict[str, Any]]] = []
    pending: dict[tuple[str, str, str], int] = {}
    for k, data in enumerate(items):
        try:
            effective = data.effective_at or (report.effective_at if report else None)
            if effective is None:
                raise BadRequest("检验结果需要时间 / an Observation needs an effective time", expression=["effective"])
            if data.value_quantity is None and not data.value_string:
                raise BadRequest("检验结果需要数值或文本 / an Observation needs a value", expression=["value[x]"])
            if data.organization_id not in checked:
                check_write(session, principal, data.organization_id)
                checked.add(data.organization_id)
            key = (data.organization_id, data.identifier_system, data.identifier_value)
            if key in known:
                out.append(Stored(known[key], False))
                ids.append(known[key].id)
                continue
            if key in pending:  # a repeat within the batch finds the first one, as a repeat sent later would
                out.append(pending[key])
                ids.append(new[pending[key]][2]["id"])
                continue
            rec = by_mrn.get((data.organization_id, data.mrn)) if data.mrn and not data.patient_record_id else None
            if rec is None or rec.deleted_at is not None:
                rec = resolve_patient(session, data)
        except ApiError as e:
            e.item_index = k
            raise
        now = utcnow()  # per row, as the column default would: rows keep their order by created_at
        pending[key] = len(new)
        out.append(len(new))
        row_id = new_id()
        ids.append(row_id)
        new.append((k, data, {
            "id": row_id, "created_at": now, "updated_at": now, "person_id": rec.person_id,
            "patient_record_id": rec.id, "resource": data.resource or {}, **{c: getattr(data, c) for c in COMMON},
            "report_id": report.id if report else None, "effective_at": effective,
            **{c: getattr(data, c) for c in VALUE_COLUMNS}}))
    return PlannedObservations(items, ids, out, new, keep, by_mrn)


def store(session: Session, principal: Principal, items: list[ObservationIn] | PlannedObservations,
          report: DiagnosticReport | None = None, *, audit_with: tuple[str, str] | None = None,
          outbox_first: list[dict[str, Any]] | None = None) -> list[Stored]:
    """Store observations — the items, or a plan made before (``plan``) — as results of ``report`` (None:
    on their own, linked to the report an item names in ``report_id``). Idempotent per item; audited as
    create; outbox ``result.stored`` per new row. ``audit_with`` (person, entity): the new report's audit
    event, written first in the same audit call (and on its own if storing fails); ``outbox_first``: its
    outbox rows, written with the observations'. Sets and returns ``planned.stored``."""
    try:
        planned = items if isinstance(items, PlannedObservations) else plan(session, principal, items, report)
        planned.stored = _write(session, principal, planned, report, audit_with, outbox_first)
        return planned.stored
    except ApiError:
        if audit_with is not None:  # the report stays audited, as when it was audited on its own first
            audit.record(session, principal, "create", person_ids=[audit_with[0]], what=[audit_with[1]])
        raise


def store_one(session: Session, principal: Principal, data: ObservationIn, report: DiagnosticReport | None = None,
              *, row_id: str | None = None) -> Stored:
    """One observation (``store`` of one item); ``row_id``: the id a new row gets."""
    planned = plan(session, principal, [data], report)
    if row_id and planned._new:
        planned._new[0][2]["id"] = planned.ids[0] = row_id
    return store(session, principal, planned, report)[0]


def _event(row: Observation) -> dict[str, Any]:
    return event_row("result.stored", "Observation", row.id, stored_event(row), person_id=row.person_id)


def _write(session: Session, principal: Principal, planned: PlannedObservations, report: DiagnosticReport | None,
           audit_with: tuple[str, str] | None, outbox_first: list[dict[str, Any]] | None) -> list[Stored]:
    first = [audit_with] if audit_with else []
    if not planned._new:
        if first:
            audit.record(session, principal, "create", person_ids=[first[0][0]], what=[first[0][1]])
        repo.insert_outbox_events(session, outbox_first or [])
        return planned._out  # type: ignore[return-value]
    for _, _, row in planned._new:
        if report is not None:
            row["report_id"] = report.id
    try:
        with session.begin_nested():
            rows = repo.insert_rows(session, Observation, [row for _, _, row in planned._new])
    except IntegrityError:  # a concurrent sender stored one of them first: one by one, each race handled
        if first:
            audit.record(session, principal, "create", person_ids=[first[0][0]], what=[first[0][1]])
        repo.insert_outbox_events(session, outbox_first or [])
        return _write_one_by_one(session, principal, planned, report)
    audit.record(session, principal, "create", person_ids=[p for p, _ in first] + [row.person_id for row in rows],
                 what=[w for _, w in first] + [f"Observation/{row.id}" for row in rows])
    repo.insert_outbox_events(session, [*(outbox_first or []), *(_event(row) for row in rows)])
    linked = False
    for (_, data, _), row in zip(planned._new, rows, strict=True):
        if report is None and data.report_id:
            row.report_id = same_person(session, DiagnosticReport, data.report_id, row.person_id, "报告").id
            linked = True
    if linked:
        session.flush()
    return _outcome(planned, [Stored(row, True) for row in rows])


def _write_one_by_one(session: Session, principal: Principal, planned: PlannedObservations,
                      report: DiagnosticReport | None) -> list[Stored]:
    """Each new row in its own savepoint, audited and announced on its own; a row whose identifier a
    concurrent sender stored first comes back as that sender's row, a repeat."""
    outcome: list[Stored] = []
    for _, data, values in planned._new:
        inserted = insert_or_winner(session, Observation, values, data)
        if not inserted.created:
            outcome.append(inserted)
            continue
        row = inserted.row
        audit.record(session, principal, "create", person_ids=[row.person_id], what=[f"Observation/{row.id}"])
        repo.insert_outbox_events(session, [_event(row)])
        if report is None and data.report_id:
            row.report_id = same_person(session, DiagnosticReport, data.report_id, row.person_id, "报告").id
            session.flush()
        outcome.append(Stored(row, True))
    return _outcome(planned, outcome)


def _outcome(planned: PlannedObservations, new: list[Stored]) -> list[Stored]:
    """Per item: its stored row; an item repeating an earlier one of the batch gets the same row, not new."""
    first_of = {j: k for j, (k, _, _) in enumerate(planned._new)}
    return [o if isinstance(o, Stored) else (new[o] if k == first_of[o] else Stored(new[o].row, False))
            for k, o in enumerate(planned._out)]
