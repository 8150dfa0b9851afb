"""Web pages for scheduling under /ui/scheduling: the day/week board per resource, a patient's booking
screen with the itinerary suggestion and its reasons, and the printable slip. Same services as the API;
UI strings are English ``_()`` in the templates, translated via the web catalogue (zh_CN by default)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from onetrip.api.deps import DB, CurrentPrincipal, require_scope
from onetrip.api.web import check_origin, html_errors, page
from onetrip.kit.clock import LOCAL_TZ, local_date, local_hhmm, utcnow
from onetrip.registry.models import Organization
from onetrip.scheduling import repository as repo
from onetrip.scheduling import service
from onetrip.scheduling.calendar import holiday_name, template_weekday

router = APIRouter(prefix="/ui/scheduling", include_in_schema=False)


@router.get("/board")
@html_errors
def board(request: Request, session: DB, principal: CurrentPrincipal, organization: str | None = None,
          date: dt.date | None = None, view: str = "day") -> Response:
    """Day view: each resource's slots with booked/capacity. Week view: places booked per resource and day."""
    require_scope(principal, "Slot", "s")
    org_id = organization or principal.organization_id
    orgs = [o for o in session.scalars(select(Organization).order_by(Organization.code))
            if repo.resources(session, organization_id=o.id)] if principal.is_operator else []
    if org_id is None and orgs:
        org_id = orgs[0].id
    day = date or local_date(utcnow())
    days = 7 if view == "week" else 1
    start = dt.datetime.combine(day, dt.time(0), LOCAL_TZ).astimezone(dt.UTC)
    resources = repo.resources(session, organization_id=org_id) if org_id else []
    slots = repo.slots(session, resource_ids=[r.id for r in resources], start=start,
                       end=start + dt.timedelta(days=days), limit=50_000) if resources else []
    by_res = defaultdict(list)
    week = defaultdict(lambda: [0, 0])
    for s in slots:
        by_res[s.resource_id].append(s)
        cell = week[(s.resource_id, local_date(s.start))]
        cell[0] += s.booked
        cell[1] += 0 if s.blocked else s.capacity
    dates = [day + dt.timedelta(days=i) for i in range(days)]
    return page(request, "scheduling/board.html", session=session, principal=principal, view=view, day=day,
                dates=dates, resources=resources, by_res=by_res, week=week, orgs=orgs, org_id=org_id,
                hhmm=local_hhmm, prev=day - dt.timedelta(days=days), next=day + dt.timedelta(days=days),
                holiday=lambda d: (holiday_name(d) if template_weekday(d) is None else None),
                adjusted=lambda d: d.weekday() >= 5 and template_weekday(d) == 0)


@router.get("/patients/{record_id}")
@html_errors
def patient_screen(request: Request, record_id: str, session: DB, principal: CurrentPrincipal,
                   exams: str | None = None) -> Response:
    """The booking screen: the patient's appointments, and the suggested itinerary for their pending
    orders (or the exams typed in), with "why this order"."""
    require_scope(principal, "Appointment", "s")
    rec = service._patient(session, principal, record_id)
    appts = repo.appointments(session, patient_record_id=record_id)
    codes = [c.strip() for c in (exams or "").split(",") if c.strip()] or None
    proposal = types = code_of = None
    if codes or repo.pending_orders(session, rec.person_id):
        proposal, types, order_of, code_of = service.propose_itinerary(session, principal, record_id,
                                                                        exam_codes=codes)
    return page(request, "scheduling/patient.html", session=session, principal=principal, rec=rec, appts=appts,
                proposal=proposal, types=types or repo.exam_types(session), code_of=code_of or {},
                exams=exams or "", all_types=repo.exam_types(session), hhmm=local_hhmm, ldate=local_date)


@router.post("/patients/{record_id}/book")
@html_errors
def book(request: Request, record_id: str, session: DB, principal: CurrentPrincipal,
         item: Annotated[list[str], Form()], channel: Annotated[str, Form()]) -> Response:
    """Book the suggested itinerary (all or nothing). Each ``item`` is ``slot_id|exam_code|order_id``."""
    check_origin(request)
    require_scope(principal, "Appointment", "c")
    items = []
    for raw in item:
        slot_id, code, order = (raw.split("|") + ["", ""])[:3]
        items.append((slot_id, code, order or None))
    service.book_itinerary(session, principal, record_id, items, channel)
    return RedirectResponse(f"/ui/scheduling/patients/{record_id}", status_code=303)


@router.get("/appointments/{appointment_id}/slip")
@html_errors
def slip(request: Request, appointment_id: str, session: DB, principal: CurrentPrincipal) -> Response:
    """The printable slip: when, where, what, and the preparation in Chinese and English."""
    require_scope(principal, "Appointment", "r")
    a = service.read_appointment(session, principal, appointment_id)
    exam = repo.exam_types(session, [a.exam_code]).get(a.exam_code)
    org = session.get(Organization, a.organization_id)
    res = next((r for r in repo.resources(session, organization_id=a.organization_id, active_only=False)
                if r.id == a.resource_id), None)
    return page(request, "scheduling/slip.html", session=session, principal=principal, a=a, exam=exam, org=org,
                res=res, hhmm=local_hhmm, ldate=local_date)
