"""Corrected and amended reports (FHIR DiagnosticReport.status ``corrected`` / ``amended``; HL7 v2 OBR-25 ``C``
/ ``M`` or OBX-11 ``C``).

A correction arrives under the sender's identifier of a report we already hold. The stored report is updated
in place — its id stays, so orders, imaging studies, recognition decisions and links keep pointing at it —
and the version it replaces (the report's columns and its observations) is kept in ``rec_report_version``.
Observations are matched on their own sender identifiers: sent again → updated, new → added, no longer
sent → marked ``cancelled`` (kept, but off trends). A resend of the same correction changes nothing.
Audited as ``update``; outbox ``result.corrected``. Flushes, never commits.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from onetrip.audit import service as audit
from onetrip.kit.clock import utcnow
from onetrip.kit.principal import Principal
from onetrip.outbox.service import record_event
from onetrip.records import observations as observation_store
from onetrip.records import repository as repo
from onetrip.records.models import DiagnosticReport, Observation, ReportVersion
from onetrip.records.schemas import ObservationIn, ReportIn

REPORT_FIELDS = ("status", "code_local", "code_system", "code", "display", "category", "section", "conclusion",
                 "recognition_mark")
OBS_FIELDS = ("status", "code_local", "code_system", "code", "display", "value_quantity", "value_string", "unit",
              "reference_low", "reference_high", "reference_text", "interpretation")
WITHDRAWN = "cancelled"


def _iso(v: Any) -> Any:
    return v.isoformat() if hasattr(v, "isoformat") else v


def snapshot(report: DiagnosticReport, observations: list[Observation]) -> dict[str, Any]:
    """What a report says now: its columns and its observations (JSON-ready)."""
    return {
        **{k: getattr(report, k) for k in REPORT_FIELDS},
        "effective_at": _iso(report.effective_at), "issued": _iso(report.issued), "resource": report.resource,
        "observations": [{"id": o.id, "identifier_value": o.identifier_value, "effective_at": _iso(o.effective_at),
                          **{k: getattr(o, k) for k in OBS_FIELDS}} for o in observations],
    }


def _changed(report: DiagnosticReport, observations: list[Observation], data: ReportIn) -> bool:
    if any(getattr(report, k) != getattr(data, k) for k in REPORT_FIELDS):
        return True
    if report.effective_at != data.effective_at or (data.issued and report.issued != data.issued):
        return True
    have = {o.identifier_value: o for o in observations if o.status != WITHDRAWN}
    if set(have) != {o.identifier_value for o in data.observations}:
        return True
    return any(getattr(have[o.identifier_value], k) != getattr(o, k) for o in data.observations
               for k in OBS_FIELDS)


def _obs_values(o: ObservationIn) -> dict[str, Any]:
    return {k: getattr(o, k) for k in OBS_FIELDS}


def correct_report(session: Session, principal: Principal, report: DiagnosticReport, data: ReportIn) -> DiagnosticReport:
    """Replace ``report`` (found by the sender's identifier) with the corrected ``data``; keep the old version.
    Observations sent for the first time are stored by ``observations.store``, as the report's."""
    # one correction at a time per report (two concurrent ones would both write the same version number)
    report = session.get(DiagnosticReport, report.id, with_for_update=True, populate_existing=True) or report
    observations = repo.observations_of_report(session, report.id)
    if not _changed(report, observations, data):
        return report
    version = (session.scalar(select(func.max(ReportVersion.version)).where(ReportVersion.report_id == report.id))
               or 0) + 1
    session.add(ReportVersion(report_id=report.id, version=version, status=report.status, replaced_at=utcnow(),
                              replaced_by=principal.name[:64], snapshot=snapshot(report, observations)))
    for k in REPORT_FIELDS:
        setattr(report, k, getattr(data, k))
    report.effective_at = data.effective_at
    report.issued = data.issued or report.issued
    if data.resource:
        report.resource = data.resource
    by_ident = {o.identifier_value: o for o in observations}
    sent = set()
    added = []
    for o in data.observations:
        sent.add(o.identifier_value)
        row = by_ident.get(o.identifier_value)
        if row is None:
            added.append(o.model_copy(update={"organization_id": report.organization_id,
                                              "patient_record_id": report.patient_record_id, "mrn": None}))
            continue
        for k, v in _obs_values(o).items():
            setattr(row, k, v)
        row.effective_at = o.effective_at or report.effective_at
        if o.resource:
            row.resource = o.resource
    if added:
        observation_store.store(session, principal, added, report)
    for row in observations:
        if row.identifier_value not in sent:
            row.status = WITHDRAWN
    session.flush()
    audit.record(session, principal, "update", person_ids=[report.person_id], what=[f"DiagnosticReport/{report.id}"],
                 detail={"status": report.status, "replaced_version": version})
    record_event(session, "result.corrected", "DiagnosticReport", report.id,
                 {"organization_id": report.organization_id, "code": report.code or report.code_local,
                  "status": report.status, "replaced_version": version,
                  "identifier": {"system": report.identifier_system, "value": report.identifier_value}},
                 person_id=report.person_id)
    return report


def history(session: Session, report_id: str) -> list[ReportVersion]:
    """The superseded versions of a report, oldest first (the caller has checked access)."""
    return list(session.scalars(select(ReportVersion).where(ReportVersion.report_id == report_id)
                                .order_by(ReportVersion.version)))
