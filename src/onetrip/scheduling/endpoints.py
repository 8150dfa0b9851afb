"""REST endpoints under /api/scheduling — thin: check the scope, call one service function, shape."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query

from onetrip.api.deps import DB, SERVICE_DATE, CurrentPrincipal, require_scope
from onetrip.kit.clock import LOCAL_TZ, local_date, local_iso, utcnow
from onetrip.kit.errors import NotFound
from onetrip.scheduling import repository as repo
from onetrip.scheduling import service, tasks
from onetrip.scheduling.models import Appointment, ExamType, Slot
from onetrip.scheduling.schemas import (
    AppointmentOut,
    BookingIn,
    CancelIn,
    ClosureIn,
    ExamTypeChange,
    ExamTypeOut,
    GenerateIn,
    ItineraryBookIn,
    ItineraryIn,
    ItineraryItem,
    ItineraryOut,
    OrderIn,
    ReasonOut,
    RescheduleIn,
    ResourceIn,
    ResourceOut,
    SlotOut,
    TemplateIn,
    TripOut,
)

router = APIRouter(prefix="/api/scheduling", tags=["scheduling"])


def appointment_out(a: Appointment) -> AppointmentOut:
    return AppointmentOut(
        id=a.id, status=a.status, person_id=a.person_id, patient_record_id=a.patient_record_id,
        organization_id=a.organization_id, slot_id=a.slot_id, resource_id=a.resource_id, exam_code=a.exam_code,
        start=local_iso(a.start), end=local_iso(a.end), channel=a.channel, precise=a.precise,
        hold_expires_at=local_iso(a.hold_expires_at) if a.hold_expires_at else None,
        rescheduled_from_id=a.rescheduled_from_id, order_id=a.order_id)


def slot_out(s: Slot, purpose: str | None = None) -> SlotOut:
    return SlotOut(id=s.id, resource_id=s.resource_id, organization_id=s.organization_id, start=local_iso(s.start),
                   end=local_iso(s.end), capacity=s.capacity, booked=s.booked, reserved=s.reserved,
                   free=repo.free_places(s, purpose, utcnow()))


@router.get("/exams", response_model=list[ExamTypeOut])
def list_exams(session: DB, principal: CurrentPrincipal) -> list[ExamType]:
    """The exam catalogue: durations, preparation instructions (zh/en) and the flags the rules read."""
    require_scope(principal, "Schedule", "r")
    return list(repo.exam_types(session).values())


@router.patch("/exams/{code}", response_model=ExamTypeOut)
def change_exam(code: str, body: ExamTypeChange, session: DB, principal: CurrentPrincipal) -> ExamType:
    """Edit a catalogue entry (admins)."""
    require_scope(principal, "Schedule", "u")
    return service.update_exam(session, principal, code, body.model_dump(exclude_none=True))


@router.get("/resources", response_model=list[ResourceOut])
def list_resources(session: DB, principal: CurrentPrincipal, organization: str | None = None,
                   exam: str | None = None):
    """Devices, rooms and clinic sessions (FHIR Schedule actors)."""
    require_scope(principal, "Schedule", "s")
    return repo.resources(session, organization_id=organization, exam_code=exam)


@router.post("/resources", response_model=ResourceOut, status_code=201)
def create_resource(body: ResourceIn, session: DB, principal: CurrentPrincipal):
    """Add a device, room or clinic session (the institution's scheduler or an admin)."""
    require_scope(principal, "Schedule", "c")
    return service.create_resource(session, principal, **body.model_dump())


@router.post("/resources/{resource_id}/templates", status_code=201)
def add_template(resource_id: str, body: TemplateIn, session: DB, principal: CurrentPrincipal) -> dict:
    """Add a weekly working block (local time; breaks are gaps between blocks)."""
    require_scope(principal, "Schedule", "u")
    t = service.add_template(session, principal, resource_id, **body.model_dump())
    return {"id": t.id}


@router.post("/closures", status_code=201)
def add_closure(body: ClosureIn, session: DB, principal: CurrentPrincipal) -> dict:
    """Close a resource or an institution on some dates (slots there are blocked)."""
    require_scope(principal, "Schedule", "u")
    return {"id": service.add_closure(session, principal, **body.model_dump()).id}


@router.post("/slots/generate")
def generate(body: GenerateIn, session: DB, principal: CurrentPrincipal) -> dict:
    """Generate slots from the weekly templates (skips public holidays; adjusted working days run)."""
    require_scope(principal, "Slot", "c")
    service.require_manager(principal, body.organization_id)
    return {"created": tasks.generate_slots(session, start=body.start, days=body.days,
                                            organization_id=body.organization_id)}


@router.get("/slots", response_model=list[SlotOut])
def find_slots(session: DB, principal: CurrentPrincipal, exam: str,
               date: Annotated[dt.date | None, SERVICE_DATE] = None,
               days: int = Query(default=7, gt=0, le=31), organization: str | None = None,
               purpose: str | None = None) -> list[SlotOut]:
    """Free slots for an exam from ``date`` (local) for ``days`` days, earliest first."""
    require_scope(principal, "Slot", "s")
    start = dt.datetime.combine(date, dt.time(0), LOCAL_TZ).astimezone(dt.UTC) if date else utcnow()
    found = service.find_candidates(session, exam, start, start + dt.timedelta(days=days),
                                    organization_ids=[organization] if organization else None, purpose=purpose)
    return [slot_out(s, purpose) for s, _, _ in found[:500]]


@router.post("/appointments", response_model=AppointmentOut, status_code=201)
def book(body: BookingIn, session: DB, principal: CurrentPrincipal) -> AppointmentOut:
    """Book (or hold) one place: 201, or 409 with an OperationOutcome when the slot is full. Real-name:
    the patient record needs a validated resident ID."""
    require_scope(principal, "Appointment", "c")
    return appointment_out(service.book(session, principal, **body.model_dump()))


@router.get("/appointments", response_model=list[AppointmentOut])
def list_appointments(session: DB, principal: CurrentPrincipal, patient: str) -> list[AppointmentOut]:
    """A patient record's appointments (all statuses)."""
    require_scope(principal, "Appointment", "s")
    service._patient(session, principal, patient)
    return [appointment_out(a) for a in repo.appointments(session, patient_record_id=patient)]


@router.get("/appointments/{appointment_id}", response_model=AppointmentOut)
def read_appointment(appointment_id: str, session: DB, principal: CurrentPrincipal) -> AppointmentOut:
    require_scope(principal, "Appointment", "r")
    return appointment_out(service.read_appointment(session, principal, appointment_id))


@router.get("/appointments/{appointment_id}/slip")
def slip(appointment_id: str, session: DB, principal: CurrentPrincipal) -> dict:
    """What the printable slip shows: when, where, what, and the preparation in Chinese and English."""
    require_scope(principal, "Appointment", "r")
    a = service.read_appointment(session, principal, appointment_id)
    exam = repo.exam_types(session, [a.exam_code]).get(a.exam_code)
    res = repo.resources(session, organization_id=a.organization_id, active_only=False)
    where = next((r.name for r in res if r.id == a.resource_id), "")
    if exam is None:
        raise NotFound("检查项目不存在 / exam not found")
    return {"appointment": appointment_out(a).model_dump(), "exam": exam.name, "exam_en": exam.name_en,
            "where": where, "prep_zh": exam.prep_zh, "prep_en": exam.prep_en}


def _act(name):
    def endpoint(appointment_id: str, session: DB, principal: CurrentPrincipal) -> AppointmentOut:
        require_scope(principal, "Appointment", "u")
        return appointment_out(getattr(service, name)(session, principal, appointment_id))
    endpoint.__name__ = name
    return endpoint


router.post("/appointments/{appointment_id}/confirm", response_model=AppointmentOut,
            summary="Confirm a hold")(_act("confirm"))
router.post("/appointments/{appointment_id}/check-in", response_model=AppointmentOut,
            summary="Check in (arrived)")(_act("check_in"))
router.post("/appointments/{appointment_id}/no-show", response_model=AppointmentOut,
            summary="Mark a no-show (after the start time)")(_act("no_show"))


@router.post("/appointments/{appointment_id}/cancel", response_model=AppointmentOut)
def cancel(appointment_id: str, body: CancelIn, session: DB, principal: CurrentPrincipal) -> AppointmentOut:
    """Cancel; the place goes back to the slot."""
    require_scope(principal, "Appointment", "u")
    return appointment_out(service.cancel(session, principal, appointment_id, body.reason))


@router.post("/appointments/{appointment_id}/reschedule", response_model=AppointmentOut, status_code=201)
def reschedule(appointment_id: str, body: RescheduleIn, session: DB, principal: CurrentPrincipal) -> AppointmentOut:
    """Move to another slot: the new booking is made first (409 keeps the old one)."""
    require_scope(principal, "Appointment", "u")
    return appointment_out(service.reschedule(session, principal, appointment_id, body.slot_id, body.channel))


@router.post("/orders", status_code=201)
def create_order(body: OrderIn, session: DB, principal: CurrentPrincipal) -> dict:
    """A pending exam order (ServiceRequest) for the itinerary to plan."""
    require_scope(principal, "ServiceRequest", "c")
    o = service.create_order(session, principal, body.patient_record_id, body.exam_code)
    return {"id": o.id, "exam_code": o.exam_code, "status": o.status}


def _itinerary_out(p, types, orders: dict[str, str], codes: dict[str, str], addresses: dict) -> ItineraryOut:
    def name(k: str) -> str:
        return p.sites[k].name if k in p.sites else k

    items = []
    for key, c in p.placements.items():
        t = types[codes[key]]
        items.append(ItineraryItem(key=key, order_id=orders.get(key), exam_code=t.code, exam_name=t.name,
                                   exam_name_en=t.name_en, slot_id=c.slot_id, resource_id=c.resource_id,
                                   organization_id=c.organization_id, site=c.site_key, site_name=name(c.site_key),
                                   address=addresses.get(c.site_key), start=local_iso(c.start), end=local_iso(c.end),
                                   prep_zh=t.prep_zh, prep_en=t.prep_en))
    trips = [TripOut(date=d.isoformat(), site=k, site_name=name(k), address=addresses.get(k),
                     items=[i.key for i in items if i.site == k and local_date(p.placements[i.key].start) == d])
             for d, k in p.trip_list]
    alt = _itinerary_out(p.alternative, types, orders, codes, addresses) if p.alternative else None
    return ItineraryOut(solver=p.solver, status=p.status, trips=p.trips, onsite_minutes=p.onsite_minutes,
                        solve_ms=round(p.solve_ms, 1), items=items, trip_list=trips, explanation=p.explanation,
                        unplaced=p.unplaced, reasons=[ReasonOut(**r) for r in p.reasons], alternative=alt)


@router.post("/itinerary", response_model=ItineraryOut)
def propose(body: ItineraryIn, session: DB, principal: CurrentPrincipal) -> ItineraryOut:
    """Propose the itinerary with the fewest trips — a trip is one site on one day — then the preferred
    sites, then the least time on site, that keeps the rules (I1–I6, S1 one site a day, S2 travel), with
    date, time, site, exam, preparation and the reasons ("why this order") in Chinese and English.
    Nothing is booked. ``sites`` / ``restrict_to_own`` choose where; ``sites_per_day`` lets the patient
    go to more than one site on one day. When nothing is feasible: status ``infeasible``, ``reasons``
    naming the blocking rule or the missing capacity, and ``alternative`` where a wider search finds one."""
    require_scope(principal, "Slot", "s")
    p, types, orders, codes = service.propose_itinerary(session, principal, body.patient_record_id,
                                                        exam_codes=body.exam_codes, from_date=body.from_date,
                                                        organization_ids=body.organization_ids, purpose=body.purpose,
                                                        sites=body.sites, restrict_to_own=body.restrict_to_own,
                                                        sites_per_day=body.sites_per_day)
    keys = {c.site_key for c in p.placements.values()}
    if p.alternative:
        keys |= {c.site_key for c in p.alternative.placements.values()}
    return _itinerary_out(p, types, orders, codes, service.site_addresses(session, keys))


@router.post("/itinerary/book", response_model=list[AppointmentOut], status_code=201)
def book_itinerary(body: ItineraryBookIn, session: DB, principal: CurrentPrincipal) -> list[AppointmentOut]:
    """Book a whole itinerary at once: all or nothing (409 if any place went meanwhile; 422 naming the
    rule if it breaks one — S1 unless ``sites_per_day`` allows two sites on one day)."""
    require_scope(principal, "Appointment", "c")
    items = [(str(i.get("slot_id")), str(i.get("exam_code")), i.get("order_id")) for i in body.items]
    return [appointment_out(a) for a in service.book_itinerary(session, principal, body.patient_record_id, items,
                                                               body.channel, sites_per_day=body.sites_per_day)]


@router.get("/figures")
def figures(session: DB, principal: CurrentPrincipal, start: Annotated[dt.date, SERVICE_DATE],
            end: Annotated[dt.date, SERVICE_DATE], organization: str | None = None) -> dict:
    """智慧预约率 (share booked to a precise slot), median wait days per modality, no-show rate and
    utilisation per resource, for appointments in [start, end] (local dates)."""
    require_scope(principal, "Appointment", "s")
    return service.compute_figures(session, principal, organization_id=organization, start=start, end=end)
