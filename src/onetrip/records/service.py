"""Storing results from any member institution and reading them back across institutions.

Writes are idempotent on the sender's identifier (unique per issuing organization): a repeat returns the
stored row unchanged. Every write is audited as a create and leaves an outbox event in the same
transaction; every read of a person's results goes through ``access.require_read`` (policy + audit).
Services flush, never commit (STYLE 2).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from onetrip.access import service as access
from onetrip.audit import service as audit
from onetrip.db.base import new_id
from onetrip.identity import repository as identity_repo
from onetrip.identity.models import PatientRecord
from onetrip.kit.clock import utcnow
from onetrip.kit.errors import AccessDenied, ApiError, BadRequest, NotFound
from onetrip.kit.principal import Principal
from onetrip.outbox.service import event_row, record_event
from onetrip.records import repository as repo
from onetrip.records import rules
from onetrip.records.models import DiagnosticReport, ImagingStudy, Observation, ServiceRequest
from onetrip.records.schemas import (
    ImagingStudyIn,
    ObservationIn,
    ReportIn,
    ServiceRequestIn,
    TimelineItem,
    TrendPoint,
    _ResultIn,
)
from onetrip.registry.models import Organization
from onetrip.rules.service import rule_values

_COMMON = ("organization_id", "identifier_system", "identifier_value", "status", "code_local", "code_system",
           "code", "display")
_VALUE_COLUMNS = ("value_quantity", "value_string", "unit", "reference_low", "reference_high", "reference_text",
                  "interpretation")


@dataclass
class Stored:
    """What a store call did: the row, and whether it is new (False: the sender's identifier was known)."""

    row: Any
    created: bool


def _check_write(session: Session, principal: Principal, organization_id: str) -> None:
    # The session keeps the organizations it has checked (the identity map alone holds them only weakly):
    # a report with its observations, a bundle or a batch of HL7 messages asks for the same one many times.
    known = session.info.setdefault("records.organizations", {})
    org = known.get(organization_id) or session.get(Organization, organization_id)
    if org is not None:
        known[organization_id] = org
    if org is None:
        raise BadRequest(f"机构不存在 / unknown organization {organization_id!r}", expression=["performer"])
    if not principal.is_operator and principal.organization_id != organization_id:
        raise AccessDenied("只能上传本机构的结果 / you can only send your own institution's results")


def resolve_patient(session: Session, data: _ResultIn) -> PatientRecord:
    """The patient: an existing PatientRecord id, or the MRN of a record at the issuing organization."""
    rec = None
    if data.patient_record_id:
        rec = session.get(PatientRecord, data.patient_record_id)
    elif data.mrn:
        rec = identity_repo.record_by_mrn(session, data.organization_id, data.mrn)
    else:
        raise BadRequest("需要患者（记录号或本机构病案号）/ a patient is required (record id or MRN at the "
                         "issuing institution)", expression=["subject"])
    if rec is None or rec.deleted_at is not None:
        raise BadRequest("患者不存在 / the referenced patient does not exist", code="not-found",
                         expression=["subject"])
    return rec


def _store(session: Session, principal: Principal, model, data: _ResultIn, fields: dict[str, Any],
           *, event: str, audit_now: bool = True, outbox: list[dict[str, Any]] | None = None) -> Stored:
    _check_write(session, principal, data.organization_id)
    found = repo.by_identifier(session, model, data.organization_id, data.identifier_system, data.identifier_value)
    if found is not None:
        return Stored(found, False)
    rec = resolve_patient(session, data)
    now = utcnow()
    values = {"id": new_id(), "created_at": now, "updated_at": now, "person_id": rec.person_id,
              "patient_record_id": rec.id, "resource": data.resource or {},
              **{k: getattr(data, k) for k in _COMMON}, **fields}
    try:
        # A concurrent sender of the same identifier loses the race on the unique constraint and gets
        # the winner's row, as a repeat would.
        with session.begin_nested():
            (row,) = repo.insert_rows(session, model, [values])
    except IntegrityError:
        found = repo.by_identifier(session, model, data.organization_id, data.identifier_system,
                                   data.identifier_value)
        if found is None:
            raise
        return Stored(found, False)
    rtype = model.__name__
    if audit_now:  # otherwise the caller writes this row's audit event together with others
        audit.record(session, principal, "create", person_ids=[rec.person_id], what=[f"{rtype}/{row.id}"])
    payload = {"organization_id": row.organization_id, "code": row.code or row.code_local,
               "identifier": {"system": row.identifier_system, "value": row.identifier_value}}
    if outbox is not None:  # the caller writes it with others (one statement)
        outbox.append(event_row(event, rtype, row.id, payload, person_id=rec.person_id))
    else:
        record_event(session, event, rtype, row.id, payload, person_id=rec.person_id)
    return Stored(row, True)


def _same_person(session: Session, model, row_id: str | None, person_id: str, what: str):
    if row_id is None:
        return None
    target = session.get(model, row_id)
    if target is None or target.person_id != person_id:
        raise BadRequest(f"引用的{what}不存在或不属于该患者 / the referenced {model.__name__} does not exist "
                         "or belongs to another patient", code="not-found")
    return target


def ingest_observation(session: Session, principal: Principal, data: ObservationIn,
                       report: DiagnosticReport | None = None, *, row_id: str | None = None) -> Stored:
    effective = data.effective_at or (report.effective_at if report else None)
    if effective is None:
        raise BadRequest("检验结果需要时间 / an Observation needs an effective time", expression=["effective"])
    if data.value_quantity is None and not data.value_string:
        raise BadRequest("检验结果需要数值或文本 / an Observation needs a value", expression=["value[x]"])
    stored = _store(session, principal, Observation, data, {
        "report_id": report.id if report else None, "effective_at": effective,
        **{k: getattr(data, k) for k in _VALUE_COLUMNS}, **({"id": row_id} if row_id else {}),
    }, event="result.stored")
    if stored.created and report is None and data.report_id:
        stored.row.report_id = _same_person(session, DiagnosticReport, data.report_id, stored.row.person_id, "报告").id
        session.flush()
    return stored


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


@dataclass
class PlannedObservations:
    """Observations checked (in ``ingest_observation``'s order), each with the id it has or will have, not
    yet stored: ``plan_observations``. ``ingest_report(..., planned=...)`` stores them with the new report,
    ``report_id`` set as they are inserted."""

    items: list[ObservationIn]
    ids: list[str]  # per item: the stored row's id (a repeat) or the new row's
    _out: list[Stored | int]  # per item: a stored row, or the position in ``_new`` of a row to insert
    _new: list[tuple[int, ObservationIn, dict[str, Any]]]
    _keep: list  # the patient records, held in the identity map until the rows are stored
    records: dict[tuple[str, str], PatientRecord | None]  # (organization, MRN) → its one record (None: several)
    stored: list[Stored] | None = None  # set when stored


def ingest_observations(session: Session, principal: Principal, items: list[ObservationIn],
                        report: DiagnosticReport | None = None, *,
                        audit_with: tuple[str, str] | None = None,
                        outbox_first: list[dict[str, Any]] | None = None) -> list[Stored]:
    """Many observations at once (a report's results, a transaction Bundle's Observation entries): the same
    checks in the same order, idempotency, audit and outbox events as ``ingest_observation`` one by one,
    with a fixed number of statements (one look-up of known identifiers, one of the patients, one INSERT
    executemany, one audit call, one outbox executemany). An error names the failing item in
    ``item_index``. If a concurrent sender wins the race on an identifier, the items are stored one by one
    as ``ingest_observation`` does. ``audit_with`` (person, entity): the new report's audit event, written
    first in the same audit call; ``outbox_first``: its outbox rows, written with the observations'."""
    try:
        return _store_planned(session, principal, plan_observations(session, principal, items, report), report,
                              audit_with, outbox_first)
    except ApiError:
        if audit_with is not None:  # the report stays audited, as when it was audited on its own first
            audit.record(session, principal, "create", person_ids=[audit_with[0]], what=[audit_with[1]])
        raise


def plan_observations(session: Session, principal: Principal, items: list[ObservationIn],
                      report: DiagnosticReport | None = None) -> PlannedObservations:
    """Check observations as ``ingest_observations`` does and give each its row id, storing nothing (reads
    only). An error names the failing item in ``item_index``."""
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
                _check_write(session, principal, data.organization_id)
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
            "patient_record_id": rec.id, "resource": data.resource or {}, **{c: getattr(data, c) for c in _COMMON},
            "report_id": report.id if report else None, "effective_at": effective,
            **{c: getattr(data, c) for c in _VALUE_COLUMNS}}))
    return PlannedObservations(items, ids, out, new, keep, by_mrn)


def _store_planned(session: Session, principal: Principal, plan: PlannedObservations,
                   report: DiagnosticReport | None, audit_with: tuple[str, str] | None = None,
                   outbox_first: list[dict[str, Any]] | None = None) -> list[Stored]:
    first = [audit_with] if audit_with else []
    if not plan._new:
        if first:
            audit.record(session, principal, "create", person_ids=[first[0][0]], what=[first[0][1]])
        repo.insert_outbox_events(session, outbox_first or [])
        return plan._out  # type: ignore[return-value]
    for _, _, row in plan._new:
        if report is not None:
            row["report_id"] = report.id
    try:
        with session.begin_nested():
            rows = repo.insert_rows(session, Observation, [row for _, _, row in plan._new])
    except IntegrityError:  # a concurrent sender stored one of them first: one by one, each race handled
        if first:
            audit.record(session, principal, "create", person_ids=[first[0][0]], what=[first[0][1]])
        repo.insert_outbox_events(session, outbox_first or [])
        return [ingest_observation(session, principal, data, report, row_id=row_id)
                for data, row_id in zip(plan.items, plan.ids, strict=True)]
    audit.record(session, principal, "create", person_ids=[p for p, _ in first] + [row.person_id for row in rows],
                 what=[w for _, w in first] + [f"Observation/{row.id}" for row in rows])
    repo.insert_outbox_events(session, [*(outbox_first or []), *(event_row(
        "result.stored", "Observation", row.id,
        {"organization_id": row.organization_id, "code": row.code or row.code_local,
         "identifier": {"system": row.identifier_system, "value": row.identifier_value}},
        person_id=row.person_id) for row in rows)])
    first_of = {j: k for j, (k, _, _) in enumerate(plan._new)}
    result = [o if isinstance(o, Stored) else Stored(rows[o], k == first_of[o]) for k, o in enumerate(plan._out)]
    linked = False
    for (_, data, _), row in zip(plan._new, rows, strict=True):
        if report is None and data.report_id:
            row.report_id = _same_person(session, DiagnosticReport, data.report_id, row.person_id, "报告").id
            linked = True
    if linked:
        session.flush()
    return result


def ingest_report(session: Session, principal: Principal, data: ReportIn,
                  planned: PlannedObservations | None = None) -> Stored:
    """Store a report (idempotent on its identifier; a repeat with status corrected / amended corrects it).
    ``planned``: observations checked before the report (``plan_observations``) — a transaction Bundle's
    Observation entries that the report's ``result`` lists (``data.result_ids`` holds their planned ids).
    They are stored as if they had been stored first: with the report's id in the same INSERT when the
    report is new, without it when the report was known; ``planned.stored`` holds the outcome."""
    events: list[dict[str, Any]] = []
    stored = _store(session, principal, DiagnosticReport, data, {
        "category": data.category, "section": data.section, "effective_at": data.effective_at,
        "issued": data.issued, "conclusion": data.conclusion, "recognition_mark": data.recognition_mark,
        "service_request_id": None,
    }, event="result.stored", audit_now=False, outbox=events)  # audited, and its outbox row written, below
    # with its observations' (one audit call, one outbox statement)
    if not stored.created:
        if planned is not None:
            planned.stored = _store_planned(session, principal, planned, None)
            data = _with_result_ids(stored.row, data, planned)
        if data.status in ("corrected", "amended"):  # a correction replaces the stored version (kept as history)
            from onetrip.records.corrections import correct_report

            return Stored(correct_report(session, principal, stored.row, data), False)
        return stored
    report = stored.row
    if data.service_request_id:
        try:
            report.service_request_id = _same_person(session, ServiceRequest, data.service_request_id,
                                                     report.person_id, "申请单").id
        except ApiError:
            audit.record(session, principal, "create", person_ids=[report.person_id],
                         what=[f"DiagnosticReport/{report.id}"])
            raise
    audited = (report.person_id, f"DiagnosticReport/{report.id}")
    if planned is not None:
        try:
            planned.stored = _store_planned(session, principal, planned, report, audited, events)
        except ApiError:
            audit.record(session, principal, "create", person_ids=[audited[0]], what=[audited[1]])
            raise
        data = _with_result_ids(report, data, planned)
    else:
        ingest_observations(session, principal, [obs.model_copy(update={
            "organization_id": data.organization_id, "patient_record_id": report.patient_record_id,
            "mrn": None}) for obs in data.observations], report, audit_with=audited, outbox_first=events)
    for oid in data.result_ids:
        target = _same_person(session, Observation, oid, report.person_id, "检验结果")
        if target.report_id != report.id:
            target.report_id = report.id
    session.flush()
    return stored


def _with_result_ids(report: DiagnosticReport, data: ReportIn, planned: PlannedObservations) -> ReportIn:
    """After a lost race (``_store_planned`` stored the rows one by one) a result may have another id than
    planned: the report's ``result`` references and ``result_ids`` follow the stored rows."""
    actual = {p: s.row.id for p, s in zip(planned.ids, planned.stored, strict=True) if s.row.id != p}
    if not actual:
        return data
    refs = {f"Observation/{p}": f"Observation/{a}" for p, a in actual.items()}
    resource = dict(report.resource or {})
    resource["result"] = [{**r, "reference": refs.get(r.get("reference"), r.get("reference"))}
                          for r in resource.get("result") or []]
    report.resource = resource
    return data.model_copy(update={"result_ids": [actual.get(i, i) for i in data.result_ids]})


def store_report(session: Session, principal: Principal, data: ReportIn) -> DiagnosticReport:
    """Store a report with its observations (idempotent: a repeat of the sender's identifier at the
    issuing organization returns the stored report). Audited as create; outbox ``result.stored``."""
    return ingest_report(session, principal, data).row


def ingest_imaging_study(session: Session, principal: Principal, data: ImagingStudyIn) -> Stored:
    stored = _store(session, principal, ImagingStudy, data, {
        **{k: getattr(data, k) for k in ("modality", "series_count", "instance_count", "started_at",
                                         "accession")}, "report_id": None,
    }, event="result.stored")
    if stored.created and data.report_id:
        stored.row.report_id = _same_person(session, DiagnosticReport, data.report_id, stored.row.person_id, "报告").id
        session.flush()
    return stored


def ingest_service_request(session: Session, principal: Principal, data: ServiceRequestIn) -> Stored:
    return _store(session, principal, ServiceRequest, data,
                  {"intent": data.intent, "authored_at": data.authored_at}, event="order.stored")


# --- reads ----------------------------------------------------------------------------------------

def read(session: Session, principal: Principal, model, row_id: str):
    """One stored result, through the access policy (audited; 403 without access)."""
    row = session.get(model, row_id)
    if row is None:
        raise NotFound(f"{model.__name__} 不存在 / {model.__name__}/{row_id} not found")
    access.require_read(session, principal, row.person_id, f"{model.__name__}/{row.id}")
    return row


def _person_or_404(session: Session, person_id: str) -> None:
    from onetrip.identity.models import Person

    if session.get(Person, person_id) is None:
        raise NotFound("居民不存在 / person not found")


def timeline(session: Session, principal: Principal, person_id: str, *, kinds: list[str] | None = None,
             since: dt.datetime | None = None) -> list[TimelineItem]:
    """Every result of a person across institutions, newest first, with the issuing institution, the
    recognition mark (R1.4) and whether it is still within its validity window (R1.6)."""
    _person_or_404(session, person_id)
    access.require_read(session, principal, person_id, f"Person/{person_id}/timeline")
    windows = rule_values(session, "records")
    now = utcnow()
    persons = repo.merged_person_ids(session, person_id)  # a survivor also shows its merged persons' results
    reports = repo.reports_of_person(session, persons, categories=kinds, since=since)
    studies = [] if kinds and not {"imaging", "ultrasound"} & set(kinds) else repo.unreported_studies_of_person(
        session, persons, since=since)
    names = repo.org_names(session, {r.organization_id for r in [*reports, *studies]})
    counts = repo.observation_counts(session, [r.id for r in reports])
    items: list[TimelineItem] = []
    for r in reports:
        days = rules.validity_days(windows, [r.code, r.code_local], r.section)
        items.append(TimelineItem(
            resource_type="DiagnosticReport", id=r.id, category=r.category, section=r.section, code=r.code,
            code_local=r.code_local, display=r.display, status=r.status, effective_at=r.effective_at,
            issued=r.issued, organization_id=r.organization_id, organization_name=names.get(r.organization_id, ""),
            recognition_mark=r.recognition_mark, has_recognition_mark=rules.is_recognition_mark(r.recognition_mark),
            validity_days=days, within_validity=rules.within_window(r.effective_at, days, now),
            conclusion=r.conclusion, observation_count=counts.get(r.id, 0)))
    for s in studies:
        section = rules.MODALITY_SECTION.get((s.modality or "").upper())
        if kinds and ("ultrasound" if section == "US" else "imaging") not in kinds:
            continue
        days = rules.validity_days(windows, [s.code, s.code_local], section)
        items.append(TimelineItem(
            resource_type="ImagingStudy", id=s.id, category="ultrasound" if section == "US" else "imaging",
            section=section, code=s.code, code_local=s.code_local, display=s.display, status=s.status,
            effective_at=s.started_at, organization_id=s.organization_id,
            organization_name=names.get(s.organization_id, ""), has_recognition_mark=False, validity_days=days,
            within_validity=rules.within_window(s.started_at, days, now)))
    items.sort(key=lambda i: i.effective_at, reverse=True)
    return items


def trend(session: Session, principal: Principal, person_id: str, code: str) -> list[TrendPoint]:
    """The series of one repeated lab value (standard or local code), oldest first, across institutions."""
    if not code.strip():
        raise BadRequest("需要项目代码 / code is required", expression=["code"])
    _person_or_404(session, person_id)
    access.require_read(session, principal, person_id, f"Person/{person_id}/trend?code={code}")
    series = repo.numeric_series(session, repo.merged_person_ids(session, person_id), code)
    names = repo.org_names(session, {o.organization_id for o in series})
    return [TrendPoint(observation_id=o.id, report_id=o.report_id, effective_at=o.effective_at,
                       value=o.value_quantity, unit=o.unit, reference_low=o.reference_low,
                       reference_high=o.reference_high, interpretation=o.interpretation,
                       organization_id=o.organization_id, organization_name=names.get(o.organization_id, ""))
            for o in series]
