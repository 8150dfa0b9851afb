"""The order screen with the recognition check (开单时的互认提示) under /ui/orders (issue 25 point 1).

A clinician drafts exam / lab orders for a patient: each item picked from the recognition catalogue is
checked at once by ``service.run_check`` — the same service, rules and log the CDS Hooks path uses (channel
``web`` instead of ``cds-hooks``) — and its recognisable prior results are shown inline with their date,
place, validity left and, in words, the RULES §1 criteria they meet. Per item the clinician re-uses a result
(``service.record_decision`` ``recognised``, as CDS feedback ``accepted``), re-orders with a reason
(``repeated`` + reason code, as ``overridden``; a missing reason is refused inline with what was typed kept)
or drops the item. Re-ordered exams (and items with nothing to re-use) go on to the itinerary screen of
scheduling (``/ui/scheduling/patients/<id>?exams=...``), through its URL only.

The draft is the list of the check ids in the URL (``c``): the checks and decisions themselves are the
``recognition_decision`` rows, so a reload neither loses the draft nor logs a check twice.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from onetrip.access import service as access
from onetrip.api.deps import DB, CurrentPrincipal, require_scope
from onetrip.api.i18n import pick
from onetrip.api.web import check_origin, error_page, html_errors, locale_of, page
from onetrip.identity import service as identity
from onetrip.kit.clock import utcnow
from onetrip.kit.errors import AccessDenied, ApiError, BadRequest
from onetrip.kit.principal import Principal
from onetrip.persons.models import PatientRecord
from onetrip.recognition import repository as repo
from onetrip.recognition import rules, service
from onetrip.recognition.models import RecognitionDecision, RecognitionItem
from onetrip.records import interface as records
from onetrip.registry.models import Organization
from onetrip.rules.service import rule_values
from onetrip.scheduling import interface as scheduling

router = APIRouter(prefix="/ui/orders", include_in_schema=False)

CHANNEL = "web"
MAX_DRAFT = 30
# Catalogue items whose exam in the scheduling catalogue has another code (the rest match by code, with "-"
# read as "_", or by the Chinese name).
EXAM_ALIASES = {"XR-CHEST": "DR_CHEST"}


@dataclass
class Prior:
    """A recognisable prior result as the screen shows it."""

    id: str
    display: str
    effective_at: dt.datetime
    place: str
    mark: str | None
    validity_days: int
    days_left: int
    same_community: bool


@dataclass
class DraftRow:
    """One drafted item: its logged check, the recognisable priors, and the latest decision (if any)."""

    check: RecognitionDecision
    item: RecognitionItem | None
    priors: list[Prior]
    decision: RecognitionDecision | None
    exam_code: str | None
    error: str | None = None
    kept: dict[str, str] = field(default_factory=dict)

    @property
    def state(self) -> str:
        """undecided (priors, no choice yet) / reused / reordered / new (nothing to re-use: ordered)."""
        if self.decision is not None:
            return "reused" if self.decision.decision == "recognised" else "reordered"
        return "undecided" if self.priors else "new"

    @property
    def reused(self) -> Prior | None:
        return self.priors[0] if self.priors and self.state == "reused" else None


def _draft(ids: list[str] | None) -> list[str]:
    out: list[str] = []
    for i in ids or []:
        i = i.strip()[:32]
        if i and i not in out:
            out.append(i)
    return out[:MAX_DRAFT]


def _url(record_id: str, checks: list[str], q: str = "", anchor: str = "") -> str:
    params = [("patient", record_id), *(("c", c) for c in checks)] + ([("q", q)] if q else [])
    return "/ui/orders/new?" + urlencode(params) + (f"#{anchor}" if anchor else "")


def _exam_code(item: RecognitionItem | None, exam_types: dict[str, Any]) -> str | None:
    """The scheduling exam for a catalogue item (None: a lab test, drawn without an appointment)."""
    if item is None:
        return None
    for code in (item.local_code.replace("-", "_"), EXAM_ALIASES.get(item.local_code)):
        if code and code in exam_types:
            return code
    return next((c for c, t in exam_types.items() if t.name == item.name_zh), None)


def _forbidden(request: Request, session: Session, principal: Principal, exc: AccessDenied,
               person_id: str | None, next_url: str) -> Response:
    """The access policy said no: keep the audited denial and offer break-the-glass, as the results pages do."""
    session.commit()
    return error_page(request, session, principal, exc, person_id=person_id, next=next_url,
                      reasons=access.BREAK_GLASS_REASONS, institutions=0)


def _rows(session: Session, principal: Principal, rec: PatientRecord, checks: list[str]) -> list[DraftRow]:
    """The drafted items of this patient and this institution (stale or foreign ids are dropped). The
    priors are re-read after the access policy allowed it (audited read), from the check's logged ids."""
    found = [session.get(RecognitionDecision, c) for c in checks]
    mine = [c for c in found if c is not None and c.kind == "check" and c.person_id == rec.person_id
            and c.ordering_org_id == principal.organization_id]
    if not mine:
        return []
    access.require_read(session, principal, rec.person_id, f"Person/{rec.person_id}/recognition")
    reports = {r.id: r for r in repo.priors_of_person(session, rec.person_id)}
    latest: dict[str, RecognitionDecision] = {}
    for d in repo.decisions_of_checks(session, [c.id for c in mine]):
        latest[d.check_id] = d  # the latest decision counts, as in the figures
    orderer = session.get(Organization, principal.organization_id) if principal.organization_id else None
    exam_types = scheduling.exam_types(session)
    windows: dict[str, object] | None = None
    now = utcnow()
    rows = []
    for c in mine:
        item = service.find_item(session, c.item_code)
        priors = []
        for pid in c.prior_ids or []:
            r = reports.get(pid)
            if r is None:
                continue
            days = item.window_days if item is not None and item.window_days is not None else None
            if days is None:
                windows = windows if windows is not None else rule_values(session, "records")
                days = records.validity_days(windows, [r.code, r.code_local], r.section) or 0
            effective = r.effective_at if r.effective_at.tzinfo else r.effective_at.replace(tzinfo=dt.UTC)
            left = math.ceil((effective + dt.timedelta(days=days) - now).total_seconds() / 86400)
            priors.append(Prior(r.id, r.display or (item.name_zh if item else c.item_code), effective,
                                r.org_name or "", r.recognition_mark, days, max(left, 0),
                                bool(orderer and orderer.community_id and orderer.community_id == r.community_id)))
        rows.append(DraftRow(c, item, priors, latest.get(c.id), _exam_code(item, exam_types)))
    return rows


def _render(request: Request, session: Session, principal: Principal, record_id: str, checks: list[str], *,
            q: str = "", add_error: str | None = None, row_error: tuple[str, str, dict[str, str]] | None = None,
            status: int = 200) -> Response:
    next_url = _url(record_id, checks, q)
    try:
        rec = identity.read(session, principal, record_id)
    except AccessDenied as e:
        person = session.get(PatientRecord, record_id)
        return _forbidden(request, session, principal, e, person.person_id if person else None, next_url)
    try:
        rows = _rows(session, principal, rec, checks)
    except AccessDenied as e:
        return _forbidden(request, session, principal, e, rec.person_id, next_url)
    if row_error:
        for row in rows:
            if row.check.id == row_error[0]:
                row.error, row.kept = row_error[1], row_error[2]
    ordered = [r for r in rows if r.state in ("reordered", "new")]
    exams = [r.exam_code for r in ordered if r.exam_code]
    arrange = f"/ui/scheduling/patients/{rec.id}?" + urlencode({"exams": ",".join(exams)}) if exams else None
    session.commit()  # the audited reads
    return page(request, "recognition/order.html", session=session, principal=principal, status=status, rec=rec,
                rows=rows, draft=[r.check.id for r in rows], q=q, catalogue=repo.catalogue_search(session, q),
                reasons=service.reasons(session), add_error=add_error, arrange=arrange,
                labs=[r for r in ordered if not r.exam_code], imaging=rules.IMAGING_CATEGORIES)


@router.get("/new")
@html_errors
def order_screen(request: Request, session: DB, principal: CurrentPrincipal,
                 patient: Annotated[str, Query(min_length=1, max_length=32)],
                 c: Annotated[list[str] | None, Query(max_length=32)] = None,
                 q: Annotated[str, Query(max_length=64)] = "") -> Response:
    """The order screen for one patient (PatientRecord id): the catalogue search, the drafted items with
    their recognisable prior results, the decisions, and 安排检查 for what is to be done."""
    require_scope(principal, "DiagnosticReport", "r")
    require_scope(principal, "ServiceRequest", "c")
    return _render(request, session, principal, patient, _draft(c), q=q)


@router.post("/add")
@html_errors
def add_item(request: Request, session: DB, principal: CurrentPrincipal,
             patient: Annotated[str, Form(min_length=1, max_length=32)],
             item: Annotated[str, Form(max_length=64)] = "",
             c: Annotated[list[str] | None, Form()] = None, q: Annotated[str, Form(max_length=64)] = "") -> Response:
    """Add a catalogue item to the draft: the check runs (and is logged) once, here."""
    check_origin(request)
    require_scope(principal, "DiagnosticReport", "r")
    require_scope(principal, "ServiceRequest", "c")
    checks = _draft(c)
    try:
        rec = identity.read(session, principal, patient)
    except AccessDenied as e:
        person = session.get(PatientRecord, patient)
        return _forbidden(request, session, principal, e, person.person_id if person else None,
                          _url(patient, checks, q))
    have = {row.item_code: row.id for row in (session.get(RecognitionDecision, x) for x in checks)
            if row is not None and row.kind == "check" and row.person_id == rec.person_id}
    found = service.find_item(session, item.strip()) if item.strip() else None
    if found is None:
        session.rollback()
        return _render(request, session, principal, patient, checks, q=q, status=400,
                       add_error="need-item")
    if found.local_code in have:
        return RedirectResponse(_url(patient, checks, anchor=f"item-{have[found.local_code]}"), status_code=303)
    if not principal.organization_id:
        raise BadRequest("开单需要所属机构 / ordering needs an institution")
    try:
        check, _priors = service.run_check(session, principal, rec.person_id, found.local_code,
                                           principal.organization_id, channel=CHANNEL)
    except AccessDenied as e:
        return _forbidden(request, session, principal, e, rec.person_id, _url(patient, checks, q))
    session.commit()
    return RedirectResponse(_url(patient, [*checks, check.id], anchor=f"item-{check.id}"), status_code=303)


@router.post("/decide")
@html_errors
def decide(request: Request, session: DB, principal: CurrentPrincipal,
           patient: Annotated[str, Form(min_length=1, max_length=32)],
           check: Annotated[str, Form(min_length=1, max_length=32)],
           action: Annotated[str, Form(max_length=16)],
           c: Annotated[list[str] | None, Form()] = None,
           reason: Annotated[str, Form(max_length=4)] = "", disease: Annotated[str, Form(max_length=200)] = "",
           remark: Annotated[str, Form(max_length=2000)] = "") -> Response:
    """One item's choice: ``reuse`` (recorded ``recognised``), ``reorder`` with a reason (recorded
    ``repeated``; refused inline without one) or ``cancel`` (the item leaves the draft; nothing is ordered,
    so nothing is recorded — as a CDS client that drops a draft order sends no feedback)."""
    check_origin(request)
    require_scope(principal, "DiagnosticReport", "r")
    require_scope(principal, "ServiceRequest", "c")
    checks = _draft(c)
    if action == "cancel":
        return RedirectResponse(_url(patient, [x for x in checks if x != check]), status_code=303)
    kept = {"reason": reason, "disease": disease, "remark": remark}
    if action == "reorder" and not reason:
        return _render(request, session, principal, patient, checks, status=400,
                       row_error=(check, "need-reason", kept))
    if action not in ("reuse", "reorder"):
        raise BadRequest("未知操作 / unknown action", expression=["action"])
    try:
        if action == "reuse":
            service.record_decision(session, principal, check, "recognised", channel=CHANNEL)
        else:
            service.record_decision(session, principal, check, "repeated", reason, remark.strip() or None,
                                    disease=disease.strip() or None, channel=CHANNEL)
    except ApiError as e:
        session.rollback()
        if e.status in (401, 403, 404):
            raise
        return _render(request, session, principal, patient, checks, status=e.status,
                       row_error=(check, pick(e.message, locale_of(request)), kept))
    session.commit()
    return RedirectResponse(_url(patient, checks, anchor=f"item-{check}"), status_code=303)
