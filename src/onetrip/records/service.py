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

from sqlalchemy import select, union_all
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from onetrip.access import service as access
from onetrip.audit import service as audit
from onetrip.auth.principal import Principal
from onetrip.identity import repository as identity_repo
from onetrip.identity.models import PatientRecord
from onetrip.kit.clock import utcnow
from onetrip.kit.errors import AccessDenied, ApiError, BadRequest, NotFound
from onetrip.outbox.service import record_event
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
           *, event: str, audit_now: bool = True) -> Stored:
    _check_write(session, principal, data.organization_id)
    found = repo.by_identifier(session, model, data.organization_id, data.identifier_system, data.identifier_value)
    if found is not None:
        return Stored(found, False)
    rec = resolve_patient(session, data)
    row = model(person_id=rec.person_id, patient_record_id=rec.id, resource=data.resource or {},
                **{k: getattr(data, k) for k in _COMMON}, **fields)
    try:
        # A concurrent sender of the same identifier loses the race on the unique constraint and gets
        # the winner's row, as a repeat would.
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        found = repo.by_identifier(session, model, data.organization_id, data.identifier_system,
                                   data.identifier_value)
        if found is None:
            raise
        return Stored(found, False)
    rtype = model.__name__
    if audit_now:  # otherwise the caller writes this row's audit event together with others
        audit.record(session, principal, "create", person_ids=[rec.person_id], what=[f"{rtype}/{row.id}"])
    record_event(session, event, rtype, row.id,
                 {"organization_id": row.organization_id, "code": row.code or row.code_local,
                  "identifier": {"system": row.identifier_system, "value": row.identifier_value}},
                 person_id=rec.person_id)
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
                       report: DiagnosticReport | None = None) -> Stored:
    effective = data.effective_at or (report.effective_at if report else None)
    if effective is None:
        raise BadRequest("检验结果需要时间 / an Observation needs an effective time", expression=["effective"])
    if data.value_quantity is None and not data.value_string:
        raise BadRequest("检验结果需要数值或文本 / an Observation needs a value", expression=["value[x]"])
    stored = _store(session, principal, Observation, data, {
        "report_id": report.id if report else None, "effective_at": effective,
        **{k: getattr(data, k) for k in ("value_quantity", "value_string", "unit", "reference_low",
                                         "reference_high", "reference_text", "interpretation")},
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


def ingest_observations(session: Session, principal: Principal, items: list[ObservationIn],
                        report: DiagnosticReport | None = None, *,
                        audit_with: tuple[str, str] | None = None) -> list[Stored]:
    """Many observations at once (a report's results, a transaction Bundle's Observation entries): the same
    checks in the same order, idempotency, audit and outbox events as ``ingest_observation`` one by one,
    with a fixed number of statements (one look-up of known identifiers, one of the patients, one multi-row
    INSERT, one audit call). An error names the failing item in ``item_index``. If a concurrent sender
    wins the race on an identifier, the items are stored one by one as ``ingest_observation`` does.
    ``audit_with`` (person, entity): the new report's audit event, written first in the same audit call."""
    try:
        return _ingest_observations(session, principal, items, report, audit_with)
    except ApiError:
        if audit_with is not None:  # the report stays audited, as when it was audited on its own first
            audit.record(session, principal, "create", person_ids=[audit_with[0]], what=[audit_with[1]])
        raise


def _ingest_observations(session: Session, principal: Principal, items: list[ObservationIn],
                         report: DiagnosticReport | None, audit_with: tuple[str, str] | None) -> list[Stored]:
    first = [audit_with] if audit_with else []
    keep, by_mrn = _prefetch_patients(session, items)  # noqa: RUF059 — ``keep`` holds the rows in the identity map
    wanted: dict[tuple[str, str], set[str]] = {}
    for d in items:
        wanted.setdefault((d.organization_id, d.identifier_system), set()).add(d.identifier_value)
    known: dict[tuple[str, str, str], Observation] = {}
    # One statement, one full-key probe of the unique index per identifier (UNION ALL): with ``value IN
    # (...)`` PostgreSQL may scan every row of the (organization, system) prefix when its statistics have
    # not seen a new sender yet (measured: 5,000 rows filtered per message on the 10M-row benchmark table).
    probes = [select(Observation).where(Observation.organization_id == org, Observation.identifier_system == system,
                                        Observation.identifier_value == value)
              for (org, system), values in wanted.items() for value in sorted(values)]
    for start in range(0, len(probes), 50):
        chunk = probes[start:start + 50]
        stmt = chunk[0] if len(chunk) == 1 else select(Observation).from_statement(union_all(*chunk))
        for row in session.scalars(stmt):
            known[(row.organization_id, row.identifier_system, row.identifier_value)] = row
    checked: set[str] = set()
    out: list[Stored | None] = []
    new: list[tuple[int, ObservationIn, Observation]] = []
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
                continue
            rec = by_mrn.get((data.organization_id, data.mrn)) if data.mrn and not data.patient_record_id else None
            if rec is None or rec.deleted_at is not None:
                rec = resolve_patient(session, data)
        except ApiError as e:
            e.item_index = k
            raise
        row = Observation(
            person_id=rec.person_id, patient_record_id=rec.id, resource=data.resource or {},
            **{c: getattr(data, c) for c in _COMMON}, report_id=report.id if report else None, effective_at=effective,
            **{c: getattr(data, c) for c in ("value_quantity", "value_string", "unit", "reference_low",
                                             "reference_high", "reference_text", "interpretation")})
        known[key] = row  # a repeat within the batch finds this one, as a repeat sent later would
        new.append((k, data, row))
        out.append(None)
    if not new:
        if first:
            audit.record(session, principal, "create", person_ids=[first[0][0]], what=[first[0][1]])
        return out  # type: ignore[return-value]
    try:
        with session.begin_nested():
            session.add_all([row for _, _, row in new])
            session.flush()
    except IntegrityError:  # a concurrent sender stored one of them first: one by one, each race handled
        if first:
            audit.record(session, principal, "create", person_ids=[first[0][0]], what=[first[0][1]])
        return [ingest_observation(session, principal, data, report) for data in items]
    audit.record(session, principal, "create", person_ids=[p for p, _ in first] + [row.person_id for _, _, row in new],
                 what=[w for _, w in first] + [f"Observation/{row.id}" for _, _, row in new])
    for k, data, row in new:
        record_event(session, "result.stored", "Observation", row.id,
                     {"organization_id": row.organization_id, "code": row.code or row.code_local,
                      "identifier": {"system": row.identifier_system, "value": row.identifier_value}},
                     person_id=row.person_id)
        out[k] = Stored(row, True)
        if report is None and data.report_id:
            row.report_id = _same_person(session, DiagnosticReport, data.report_id, row.person_id, "报告").id
    session.flush()
    return out  # type: ignore[return-value]


def ingest_report(session: Session, principal: Principal, data: ReportIn) -> Stored:
    stored = _store(session, principal, DiagnosticReport, data, {
        "category": data.category, "section": data.section, "effective_at": data.effective_at,
        "issued": data.issued, "conclusion": data.conclusion, "recognition_mark": data.recognition_mark,
        "service_request_id": None,
    }, event="result.stored", audit_now=False)  # audited below, with its observations (one audit call)
    if not stored.created:
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
    ingest_observations(session, principal, [obs.model_copy(update={
        "organization_id": data.organization_id, "patient_record_id": report.patient_record_id,
        "mrn": None}) for obs in data.observations], report,
        audit_with=(report.person_id, f"DiagnosticReport/{report.id}"))
    for oid in data.result_ids:
        _same_person(session, Observation, oid, report.person_id, "检验结果").report_id = report.id
    session.flush()
    return stored


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
