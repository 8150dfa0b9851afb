"""REST for the patient timeline and lab trends (the web UI and HIS systems without FHIR use these)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query

from onetrip.api.deps import DB, CurrentPrincipal, require_scope
from onetrip.records import service
from onetrip.records.schemas import TimelineItem, TrendPoint

router = APIRouter(prefix="/api", tags=["results"])


@router.get("/persons/{person_id}/timeline", response_model=list[TimelineItem])
def person_timeline(person_id: str, session: DB, principal: CurrentPrincipal,
                    kind: Annotated[list[str] | None, Query(description="lab, imaging, ultrasound, other")] = None,
                    since: dt.datetime | None = None) -> list[TimelineItem]:
    """Every result of a resident across member institutions, newest first: the issuing institution, the
    recognition mark (互认标识, RULES R1.4) and whether the result is still within its validity window
    (RULES R1.6). Goes through the access policy (403 and an audited denial without access)."""
    require_scope(principal, "DiagnosticReport", "r")
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=dt.UTC)
    return service.timeline(session, principal, person_id, kinds=kind, since=since)


@router.get("/persons/{person_id}/trend", response_model=list[TrendPoint])
def person_trend(person_id: str, session: DB, principal: CurrentPrincipal,
                 code: Annotated[str, Query(min_length=1, max_length=64)]) -> list[TrendPoint]:
    """The series of one repeated lab value (LOINC or the institution's local code), oldest first."""
    require_scope(principal, "Observation", "r")
    return service.trend(session, principal, person_id, code)


@router.get("/diagnostic-reports/{report_id}/versions")
def report_versions(report_id: str, session: DB, principal: CurrentPrincipal) -> list[dict]:
    """The superseded versions of a corrected / amended report, oldest first (access policy + audit):
    ``version``, the ``status`` it had, ``replaced_at``, ``replaced_by`` and the ``snapshot`` (the report's
    columns and observations as they were)."""
    from onetrip.records import corrections
    from onetrip.records.models import DiagnosticReport

    require_scope(principal, "DiagnosticReport", "r")
    service.read(session, principal, DiagnosticReport, report_id)
    return [{"version": v.version, "status": v.status, "replaced_at": v.replaced_at.isoformat(),
             "replaced_by": v.replaced_by, "snapshot": v.snapshot} for v in corrections.history(session, report_id)]
