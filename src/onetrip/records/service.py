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

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from onetrip.access import service as access
from onetrip.audit import service as audit
from onetrip.auth.principal import Principal
from onetrip.identity import repository as identity_repo
from onetrip.identity.models import PatientRecord
from onetrip.kit.clock import utcnow
from onetrip.kit.errors import AccessDenied, BadRequest, NotFound
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
    if session.get(Organization, organization_id) is None:
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
           *, event: str) -> Stored:
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


def ingest_report(session: Session, principal: Principal, data: ReportIn) -> Stored:
    stored = _store(session, principal, DiagnosticReport, data, {
        "category": data.category, "section": data.section, "effective_at": data.effective_at,
        "issued": data.issued, "conclusion": data.conclusion, "recognition_mark": data.recognition_mark,
        "service_request_id": None,
    }, event="result.stored")
    if not stored.created:
        return stored
    report = stored.row
    if data.service_request_id:
        report.service_request_id = _same_person(session, ServiceRequest, data.service_request_id,
                                                 report.person_id, "申请单").id
    for obs in data.observations:
        ingest_observation(session, principal, obs.model_copy(update={
            "organization_id": data.organization_id, "patient_record_id": report.patient_record_id,
            "mrn": None}), report)
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
    reports = repo.reports_of_person(session, person_id, categories=kinds, since=since)
    studies = [] if kinds and "imaging" not in kinds else repo.unreported_studies_of_person(
        session, person_id, since=since)
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
    series = repo.numeric_series(session, person_id, code)
    names = repo.org_names(session, {o.organization_id for o in series})
    return [TrendPoint(observation_id=o.id, report_id=o.report_id, effective_at=o.effective_at,
                       value=o.value_quantity, unit=o.unit, reference_low=o.reference_low,
                       reference_high=o.reference_high, interpretation=o.interpretation,
                       organization_id=o.organization_id, organization_name=names.get(o.organization_id, ""))
            for o in series]
