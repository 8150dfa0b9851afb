"""Storing results from any member institution and reading them back across institutions.

Reports (with their observations, or correcting the version stored), imaging studies and orders are
stored here; every observation goes through ``observations.store``, the one path that stores them, and a
report's correction through ``corrections``. Writes are idempotent on the sender's identifier (unique per
issuing organization): a repeat returns the stored row unchanged. Every write is audited as a create and
leaves an outbox event in the same transaction; every read of a person's results goes through
``access.require_read`` (policy + audit). Services flush, never commit (STYLE 2).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from onetrip.access import service as access
from onetrip.audit import service as audit
from onetrip.kit.clock import utcnow
from onetrip.kit.errors import ApiError, BadRequest, NotFound
from onetrip.kit.principal import Principal
from onetrip.records import observations, rules
from onetrip.records import repository as repo
from onetrip.records.corrections import correct_report
from onetrip.records.models import DiagnosticReport, ImagingStudy, Observation, ServiceRequest
from onetrip.records.observations import PlannedObservations
from onetrip.records.schemas import ImagingStudyIn, ReportIn, ServiceRequestIn, TimelineItem, TrendPoint
from onetrip.records.store import Stored, same_person, store_one
from onetrip.rules.service import rule_values


def ingest_report(session: Session, principal: Principal, data: ReportIn,
                  planned: PlannedObservations | None = None) -> Stored:
    """Store a report (idempotent on its identifier; a repeat with status corrected / amended corrects it).
    ``planned``: observations checked before the report (``observations.plan``) — a transaction Bundle's
    Observation entries that the report's ``result`` lists (``data.result_ids`` holds their planned ids).
    They are stored as if they had been stored first: with the report's id in the same INSERT when the
    report is new, without it when the report was known; ``planned.stored`` holds the outcome."""
    events: list[dict[str, Any]] = []
    stored = store_one(session, principal, DiagnosticReport, data, {
        "category": data.category, "section": data.section, "effective_at": data.effective_at,
        "issued": data.issued, "conclusion": data.conclusion, "recognition_mark": data.recognition_mark,
        "service_request_id": None,
    }, event="result.stored", audit_now=False, outbox=events)  # audited, and its outbox row written, below
    # with its observations' (one audit call, one outbox statement)
    if not stored.created:
        if planned is not None:
            observations.store(session, principal, planned)
            data = _with_result_ids(stored.row, data, planned)
        if data.status in ("corrected", "amended"):  # a correction replaces the stored version (kept as history)
            return Stored(correct_report(session, principal, stored.row, data), False)
        return stored
    report = stored.row
    if data.service_request_id:
        try:
            report.service_request_id = same_person(session, ServiceRequest, data.service_request_id,
                                                    report.person_id, "申请单").id
        except ApiError:
            audit.record(session, principal, "create", person_ids=[report.person_id],
                         what=[f"DiagnosticReport/{report.id}"])
            raise
    audited = (report.person_id, f"DiagnosticReport/{report.id}")
    items = planned if planned is not None else [
        obs.model_copy(update={"organization_id": data.organization_id, "patient_record_id": report.patient_record_id,
                               "mrn": None}) for obs in data.observations]
    observations.store(session, principal, items, report, audit_with=audited, outbox_first=events)
    if planned is not None:
        data = _with_result_ids(report, data, planned)
    for oid in data.result_ids:
        target = same_person(session, Observation, oid, report.person_id, "检验结果")
        if target.report_id != report.id:
            target.report_id = report.id
    session.flush()
    return stored


def _with_result_ids(report: DiagnosticReport, data: ReportIn, planned: PlannedObservations) -> ReportIn:
    """After a lost race (``observations.store`` stored the rows one by one) a result may have another id than
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
    stored = store_one(session, principal, ImagingStudy, data, {
        **{k: getattr(data, k) for k in ("modality", "series_count", "instance_count", "started_at",
                                         "accession")}, "report_id": None,
    }, event="result.stored")
    if stored.created and data.report_id:
        stored.row.report_id = same_person(session, DiagnosticReport, data.report_id, stored.row.person_id, "报告").id
        session.flush()
    return stored


def ingest_service_request(session: Session, principal: Principal, data: ServiceRequestIn) -> Stored:
    return store_one(session, principal, ServiceRequest, data,
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
    from onetrip.persons.models import Person

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
