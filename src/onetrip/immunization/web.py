"""The vaccination desk (扫码接种) under /ui/immunization: identify the child (certificate QR or Patient id),
today's due doses, the contraindication questions, scan the trace code → every R6.5 check ticked or failed
with its reason, record with site and route, and the 30-minute observation board; the certificate's QR.

Plain forms, no script needed: a keyboard-wedge scanner types the code and Enter, which submits the focused
form — the same as typing by hand. Same services as /api/immunization.
"""

from __future__ import annotations

from typing import Annotated

import segno
from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup

from onetrip.api.deps import DB, CurrentPrincipal, require_scope
from onetrip.api.web import check_origin, html_errors, page
from onetrip.immunization import rules, service
from onetrip.immunization.codes import VACCINES
from onetrip.immunization.endpoints import child_out
from onetrip.immunization.schemas import CheckIn, RecordIn
from onetrip.kit.errors import BadRequest, Conflict

router = APIRouter(prefix="/ui/immunization", include_in_schema=False)
SITES = ("left-deltoid", "right-deltoid", "left-thigh", "right-thigh", "left-forearm", "oral")
ROUTES = ("IM", "SC", "ID", "PO")


def _answers(form_answers: dict[str, str]) -> dict[str, bool]:
    return {k: v == "yes" for k, v in form_answers.items() if v in ("yes", "no")}


async def _form_answers(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: str(form.get(f"q_{k}")) for k, _, _ in rules.CONTRAINDICATIONS if form.get(f"q_{k}")}


def _desk(request: Request, session, principal, q: str, **extra) -> Response:
    desk = service.desk_child(session, principal, q) if q else None
    return page(request, "immunization/desk.html", session=session, principal=principal, q=q,
                child=child_out(desk) if desk else None, questions=rules.CONTRAINDICATIONS, vaccines=VACCINES,
                sites=SITES, routes=ROUTES, **{"verdict": None, "answers": {}, "trace_code": "", "error": None,
                                                **extra})


@router.get("/desk")
@html_errors
def desk(request: Request, session: DB, principal: CurrentPrincipal, q: str = "") -> Response:
    """Step 1: scan the certificate (or type the id); step 2: questions and the vaccine's trace code."""
    require_scope(principal, "Immunization", "c")
    return _desk(request, session, principal, q.strip()[:200])


@router.post("/desk/check")
@html_errors
async def desk_check(request: Request, session: DB, principal: CurrentPrincipal,
                     patient_id: Annotated[str, Form(max_length=200)],
                     trace_code: Annotated[str, Form(max_length=64)] = "") -> Response:
    """Step 3: the checks of R6.5 for the scanned code, each ticked or failed with the reason."""
    check_origin(request)
    require_scope(principal, "Immunization", "c")
    raw = await _form_answers(request)
    data = CheckIn(patient_id=patient_id, trace_code=trace_code, answers=_answers(raw))
    verdict, _, found = service.check(session, principal, data)
    return _desk(request, session, principal, patient_id, verdict=verdict, answers=raw,
                 trace_code=rules.normalise_code(trace_code),
                 product=found[2] if found else None, lot=found[1] if found else None)


@router.post("/desk/record")
@html_errors
async def desk_record(request: Request, session: DB, principal: CurrentPrincipal,
                      patient_id: Annotated[str, Form(max_length=200)],
                      trace_code: Annotated[str, Form(max_length=64)],
                      site: Annotated[str, Form(max_length=32)], route: Annotated[str, Form(max_length=4)]) -> Response:
    """Step 4: record (the checks again, one dose taken from the package), then the observation board."""
    check_origin(request)
    require_scope(principal, "Immunization", "c")
    raw = await _form_answers(request)
    if route not in ROUTES or site not in SITES:
        raise BadRequest("请选择接种部位和途径 / choose the site and the route")
    try:
        v = service.record_vaccination(session, principal, RecordIn(
            patient_id=patient_id, trace_code=trace_code, answers=_answers(raw), site=site, route=route))
    except Conflict as e:
        session.rollback()
        return _desk(request, session, principal, patient_id, error=str(e), answers=raw, trace_code=trace_code)
    return RedirectResponse(f"/ui/immunization/observation?new={v.id}", status_code=303)


@router.get("/observation")
@html_errors
def observation(request: Request, session: DB, principal: CurrentPrincipal, new: str = "") -> Response:
    """The 30-minute observation board (R6.5): who is still under observation and for how long."""
    require_scope(principal, "Immunization", "r")
    rows = service.observation_board(session, principal)
    return page(request, "immunization/observation.html", session=session, principal=principal, rows=rows,
                new=new[:32], vaccines=VACCINES)


@router.get("/certificate/{record_id}")
@html_errors
def certificate(request: Request, session: DB, principal: CurrentPrincipal, record_id: str) -> Response:
    """The QR for the child's vaccination certificate (scanned at the desk), with the doses recorded."""
    require_scope(principal, "Immunization", "r")
    desk = service.desk_child(session, principal, record_id)
    text = service.certificate_qr_text(desk.record.id)
    qr = Markup(segno.make(text, error="m").svg_inline(scale=5, title=text))  # noqa: S704 — segno's own SVG
    doses = service.history(session, desk.record.person_id)
    return page(request, "immunization/certificate.html", session=session, principal=principal,
                child=child_out(desk), qr=qr, qr_text=text, doses=doses, vaccines=VACCINES)
