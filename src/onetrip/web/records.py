"""Web pages of shared results (issue 4): a resident's results timeline across institutions with ECharts
trend charts, and the HL7 v2 inbox for integration engineers.

- ``/ui/persons/{person_id}/results``: every result by date and type, the issuing institution, the
  recognition mark (RULES R1.4) and whether it is still within its validity window (R1.6); trend charts of
  repeated numeric lab values. Read through ``records.service`` (access policy + audit).
- ``/ui/hl7/inbox``: messages with their status (filter), the raw message with ID numbers and phones masked,
  and a re-run button (HTMX) for failed ones — ``interop.hl7v2.service.rerun``. Admins and the
  ``integration`` role only.
"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy import select

from onetrip.api.deps import DB, CurrentPrincipal, require_scope
from onetrip.api.i18n import N_, local_time
from onetrip.api.web import check_origin, html_errors, is_htmx, page
from onetrip.audit import service as audit
from onetrip.interop.hl7v2 import service as inbox
from onetrip.interop.hl7v2.models import STATUSES, InboxMessage
from onetrip.kit.errors import AccessDenied, Forbidden, NotFound
from onetrip.kit.masking import scrub
from onetrip.kit.principal import Principal
from onetrip.persons.models import Person
from onetrip.records import repository as repo
from onetrip.records import service
from onetrip.records.models import Observation
from onetrip.web.routes import _forbidden

router = APIRouter(prefix="/ui", include_in_schema=False)

KINDS = {"lab": N_("Laboratory"), "imaging": N_("Imaging"), "ultrasound": N_("Ultrasound"), "other": N_("Other")}
SECTIONS = {"chemistry": N_("chemistry"), "haematology": N_("haematology"), "XR": N_("X-ray")}
MAX_CHARTS = 6
INBOX_ROLES = frozenset({"admin", "integration"})
STATUS_LABELS = {"received": N_("Received, waiting for its handler"), "processed": N_("Processed"),
                 "failed": N_("Failed"), "rejected": N_("Refused (AE/AR)"),
                 "pending-handler": N_("No handler yet"),
                 "conflict": N_("Control id reused: refused (AR), kept for a decision")}


@router.get("/persons/{person_id}/results")
@html_errors
def results_page(person_id: str, request: Request, session: DB, principal: CurrentPrincipal,
                 kind: Annotated[str | None, Query(max_length=16)] = None) -> Response:
    """The timeline page. ``kind`` narrows the list (lab / imaging / ultrasound / other)."""
    require_scope(principal, "DiagnosticReport", "r")
    kinds = [kind] if kind in KINDS else None
    try:
        items = service.timeline(session, principal, person_id, kinds=kinds)
    except AccessDenied as e:
        return _forbidden(request, session, principal, e, person_id, request.url.path)
    person = session.get(Person, person_id)
    charts = []
    if kinds in (None, ["lab"]):
        for code, display, _n in repo.repeated_numeric_codes(session, repo.merged_person_ids(session, person_id))[
                :MAX_CHARTS]:
            points = service.trend(session, principal, person_id, code)
            if len(points) < 2:
                continue
            charts.append({
                "code": code, "name": display or code, "unit": points[-1].unit or "",
                "low": points[-1].reference_low, "high": points[-1].reference_high,
                "points": [[p.effective_at.isoformat(), p.value, p.organization_name] for p in points],
            })
    values: dict[str, list[Observation]] = {}
    report_ids = [i.id for i in items if i.resource_type == "DiagnosticReport" and i.observation_count]
    for i in range(0, len(report_ids), 500):  # the values were read with the timeline (one audited read)
        for o in session.scalars(select(Observation).where(
                Observation.report_id.in_(report_ids[i:i + 500]), Observation.status != "cancelled")
                .order_by(Observation.identifier_value)):
            values.setdefault(o.report_id, []).append(o)
    by_day: dict[str, list] = {}
    for it in items:
        by_day.setdefault(local_time(it.effective_at, "%Y-%m-%d"), []).append(it)
    return page(request, "records/timeline.html", session=session, principal=principal, person=person,
                person_id=person_id, by_day=by_day, total=len(items), values=values, sections=SECTIONS, kinds=KINDS, kind=kind if kinds else "",
                charts=charts, chart_json=json.dumps(charts, ensure_ascii=False))


# --- HL7 v2 inbox ----------------------------------------------------------------------------------

def _require_integration(principal: Principal) -> None:
    if not (INBOX_ROLES & principal.roles or principal.kind == "cli"):
        raise Forbidden("只有管理员和接口工程师可以查看 HL7 收件箱 / only admins and integration engineers may "
                        "use the HL7 inbox")


def masked_raw(row: InboxMessage) -> str:
    """The raw message for display: decoded in its MSH-18 charset (bytes that do not decode are shown as
    escapes), one segment a line, ID numbers and phones masked."""
    from onetrip.interop.hl7v2 import parser

    text = row.raw.decode(parser.codec_for(row.charset or "") or "utf-8", errors="backslashreplace")
    return scrub("\n".join(seg for seg in text.replace("\r\n", "\r").replace("\n", "\r").split("\r") if seg))


@router.get("/hl7/inbox")
@html_errors
def inbox_page(request: Request, session: DB, principal: CurrentPrincipal,
               status: Annotated[str | None, Query(max_length=16)] = None,
               limit: Annotated[int, Query(ge=1, le=500)] = 100) -> Response:
    _require_integration(principal)
    status = status if status in STATUSES else None
    rows = inbox.list_messages(session, status=status, limit=limit)
    return page(request, "records/inbox.html", session=session, principal=principal, rows=rows,
                status_filter=status or "", statuses=STATUSES, scrub=scrub, labels=STATUS_LABELS)


@router.get("/hl7/inbox/{inbox_id}")
@html_errors
def inbox_message(inbox_id: str, request: Request, session: DB, principal: CurrentPrincipal) -> Response:
    _require_integration(principal)
    row = session.get(InboxMessage, inbox_id)
    if row is None:
        raise NotFound("收件箱中没有此消息 / no such inbox message")
    # the raw message carries patient data (names; IDs and phones are masked on screen): the view is audited
    audit.record(session, principal, "read", what=[f"InboxMessage/{row.id}"])
    return page(request, "records/inbox_message.html", session=session, principal=principal, row=row,
                raw=masked_raw(row), scrub=scrub, result=None, labels=STATUS_LABELS)


@router.post("/hl7/inbox/{inbox_id}/rerun")
@html_errors
def inbox_rerun(inbox_id: str, request: Request, session: DB, principal: CurrentPrincipal,
                ) -> Response:
    """Re-run a failed message's handler now (the same service as ``onetrip hl7 inbox rerun``)."""
    _require_integration(principal)
    check_origin(request)
    row = inbox.rerun(session, inbox_id)
    ctx = {"row": row, "r": row, "scrub": scrub, "result": row.status, "labels": STATUS_LABELS}
    if is_htmx(request):
        return page(request, "records/_inbox_row.html", session=session, principal=principal, **ctx)
    return page(request, "records/inbox_message.html", session=session, principal=principal, raw=masked_raw(row),
                **ctx)
