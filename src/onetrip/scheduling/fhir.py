"""FHIR R4 Schedule, Slot and Appointment, with ``Appointment/$find``, ``$hold`` and ``$book`` in the
shapes of the IHE ITI Scheduling profile (find → proposed Appointments, hold → pending, book → booked).

Declared here, served by the façade (``onetrip.interop.fhir``). Every resource served validates with
``fhir.resources.R4B``; every error is an OperationOutcome.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from onetrip.kit.clock import LOCAL_TZ, utcnow
from onetrip.kit.errors import BadRequest, NotFound
from onetrip.kit.fhir import (
    Context,
    Created,
    Operation,
    Page,
    ResourceType,
    check_params,
    count_offset,
    instant,
    params,
    parse_date,
    ref_id,
    validate,
)
from onetrip.scheduling import repository as repo
from onetrip.scheduling import service
from onetrip.scheduling.models import Appointment, ExamType, Resource, Slot

EXAM_SYSTEM = "urn:onetrip:cs:exam"  # our exam catalogue codes
CHANNEL_EXT = "urn:onetrip:sd:booking-channel"  # phone | clinic | kiosk | web | app
PURPOSE_EXT = "urn:onetrip:sd:reserved-purpose"  # e.g. primary_care (R2.4 reserved places)
CAPACITY_EXT = "urn:onetrip:sd:slot-capacity"
FREE_EXT = "urn:onetrip:sd:slot-free-places"
RESOURCE_KIND_SYSTEM = "urn:onetrip:cs:schedule-resource-kind"


def _instant(t: dt.datetime) -> str:
    return t.astimezone(LOCAL_TZ).isoformat()


def _meta(t: dt.datetime, version: int | None = None) -> dict:
    out = {"lastUpdated": instant(t)}
    if version is not None:
        out["versionId"] = str(version)
    return out


def _service_types(codes: list[str], types: dict[str, ExamType]) -> list[dict]:
    return [{"coding": [{"system": EXAM_SYSTEM, "code": c, "display": types[c].name if c in types else c}]}
            for c in codes]


def schedule_to_fhir(r: Resource, types: dict[str, ExamType]) -> dict:
    actor: dict[str, Any] = {"display": r.name}
    if r.practitioner_id:
        actor = {"reference": f"Practitioner/{r.practitioner_id}", "display": r.name}
    body = {
        "resourceType": "Schedule", "id": r.id, "meta": _meta(r.updated_at, r.version_id), "active": r.active,
        "identifier": [{"system": f"urn:onetrip:sid:schedule:{r.organization_id}", "value": r.code}],
        "serviceCategory": [{"coding": [{"system": RESOURCE_KIND_SYSTEM, "code": r.kind}], "text": r.modality}],
        "serviceType": _service_types(r.exam_codes or [], types),
        "actor": [actor, {"reference": f"Organization/{r.organization_id}"}],
        "comment": r.name,
    }
    validate("Schedule", body)
    return body


def slot_to_fhir(s: Slot, r: Resource | None, types: dict[str, ExamType], purpose: str | None = None) -> dict:
    free = repo.free_places(s, purpose, utcnow())
    status = "busy-unavailable" if s.blocked else ("free" if free > 0 else "busy")
    body = {
        "resourceType": "Slot", "id": s.id, "meta": _meta(s.updated_at),
        "schedule": {"reference": f"Schedule/{s.resource_id}"},
        "serviceType": _service_types((r.exam_codes if r else None) or [], types),
        "status": status, "start": _instant(s.start), "end": _instant(s.end),
        "overbooked": False,
        "extension": [{"url": CAPACITY_EXT, "valueInteger": s.capacity}, {"url": FREE_EXT, "valueInteger": free}],
    }
    if s.reserved and s.release_at and s.release_at > utcnow():
        body["comment"] = (f"{s.reserved - s.reserved_booked} 个号源预留给 {s.reserved_purpose} 至 "
                           f"{_instant(s.release_at)} / {s.reserved - s.reserved_booked} place(s) reserved for "
                           f"{s.reserved_purpose} until {_instant(s.release_at)}")
    validate("Slot", body)
    return body


def appointment_to_fhir(a: Appointment, types: dict[str, ExamType]) -> dict:
    t = types.get(a.exam_code)
    body: dict[str, Any] = {
        "resourceType": "Appointment", "id": a.id, "meta": _meta(a.updated_at, a.version_id),
        "status": a.status, "serviceType": _service_types([a.exam_code], types),
        "start": _instant(a.start), "end": _instant(a.end),
        "minutesDuration": int((a.end - a.start).total_seconds() // 60),
        "slot": [{"reference": f"Slot/{a.slot_id}"}],
        "created": instant(a.booked_at or a.created_at),
        "participant": [
            {"actor": {"reference": f"Patient/{a.patient_record_id}"}, "required": "required", "status": "accepted"},
            {"actor": {"reference": f"Location/{a.resource_id}", "display": a.resource_id}, "required": "required",
             "status": "accepted"},
        ],
        "extension": [{"url": CHANNEL_EXT, "valueCode": a.channel}],
    }
    if a.purpose:
        body["extension"].append({"url": PURPOSE_EXT, "valueCode": a.purpose})
    if t and (t.prep_zh or t.prep_en):
        body["patientInstruction"] = " / ".join(x for x in (t.prep_zh, t.prep_en) if x)
    if a.cancel_reason:
        body["cancelationReason"] = {"text": a.cancel_reason}
    validate("Appointment", body)
    return body


def _token(value: str) -> str:
    return value.split("|")[-1]


def _day_range(raw: str, name: str) -> tuple[dt.datetime | None, dt.datetime | None]:
    lo = hi = None
    for part in raw.split(","):
        prefix, d = parse_date(part, name)
        start = dt.datetime.combine(d, dt.time(0), LOCAL_TZ).astimezone(dt.UTC)
        span = {"-year": 366, "-month": 31}.get(prefix[2:], 1)
        if prefix.startswith("eq"):
            lo, hi = start, start + dt.timedelta(days=span)
        elif prefix.startswith(("ge", "gt")):
            lo = start + dt.timedelta(days=1 if prefix.startswith("gt") else 0)
        else:
            hi = start + dt.timedelta(days=0 if prefix.startswith("lt") else 1)
    return lo, hi


# --- Schedule ---------------------------------------------------------------------------------------

SCHEDULE_PARAMS = params(("service-type", "token"), ("actor", "reference"), ("active", "token"), ("_id", "token"))


def search_schedules(ctx: Context, raw: dict[str, str], count: int, offset: int) -> Page:
    """Schedules (devices, rooms, clinic sessions): ``service-type`` (exam code), ``actor``
    (Organization/id), ``active``."""
    session = ctx.session
    org = raw["actor"].split("/")[-1] if raw.get("actor") else None
    rows = repo.resources(session, organization_id=org, exam_code=_token(raw["service-type"])
                          if raw.get("service-type") else None, active_only=raw.get("active", "true") != "false")
    if raw.get("_id"):
        rows = [r for r in rows if r.id == raw["_id"]]
    types = repo.exam_types(session)
    page = rows[offset: offset + count]
    return Page([schedule_to_fhir(r, types) for r in page], len(rows) > offset + count, total=len(rows))


def read_schedule(ctx: Context, sid: str) -> dict:
    """A schedule: a device, room or clinic session and the exams it performs."""
    r = ctx.session.get(Resource, sid)
    if r is None:
        raise NotFound("日程不存在 / Schedule not found")
    return schedule_to_fhir(r, repo.exam_types(ctx.session))


# --- Slot -------------------------------------------------------------------------------------------

SLOT_PARAMS = params(("service-type", "token"), ("start", "date"), ("status", "token"), ("schedule", "reference"),
                     ("organization", "reference"))


def search_slots(ctx: Context, raw: dict[str, str], count: int, offset: int) -> Page:
    """Slots: ``service-type`` (exam code), ``start`` (date, with ge/le/gt/lt/eq), ``status``
    (free | busy), ``schedule`` (Schedule/id), ``organization``."""
    session = ctx.session
    resource_ids = None
    if raw.get("service-type") or raw.get("schedule") or raw.get("organization"):
        rows = repo.resources(session, organization_id=raw.get("organization", "").split("/")[-1] or None,
                              exam_code=_token(raw["service-type"]) if raw.get("service-type") else None)
        resource_ids = [r.id for r in rows]
        if raw.get("schedule"):
            sid = raw["schedule"].split("/")[-1]
            resource_ids = [r for r in resource_ids if r == sid]
    lo, hi = _day_range(raw["start"], "start") if raw.get("start") else (None, None)
    status = raw.get("status")
    if status not in (None, "free", "busy"):
        raise BadRequest("status 仅支持 free 或 busy / status must be free or busy", expression=["status"])
    found = repo.slots(session, resource_ids=resource_ids, start=lo, end=hi, only_free=status == "free",
                       only_busy=status == "busy", limit=count + 1, offset=offset) if count else []
    res = {r.id: r for r in repo.resources(session, active_only=False)} if found else {}
    types = repo.exam_types(session)
    return Page([slot_to_fhir(s, res.get(s.resource_id), types) for s in found[:count]], len(found) > count)


def read_slot(ctx: Context, sid: str) -> dict:
    """A slot: its capacity and free places."""
    s = ctx.session.get(Slot, sid)
    if s is None:
        raise NotFound("号源不存在 / Slot not found")
    return slot_to_fhir(s, ctx.session.get(Resource, s.resource_id), repo.exam_types(ctx.session))


# --- Appointment ------------------------------------------------------------------------------------

def _booking_from_fhir(session, body: dict) -> dict:
    """Slot, patient, exam, channel and purpose from an Appointment (validated first)."""
    validate("Appointment", body)
    # fhir.resources does not check value-set bindings: the statuses a booking may carry are checked here.
    if body.get("status") not in ("proposed", "pending", "booked"):
        raise BadRequest("新预约的 status 应为 proposed、pending 或 booked / a new Appointment's status must be "
                         "proposed, pending or booked", expression=["status"])
    slots = body.get("slot") or []
    if len(slots) != 1:
        raise BadRequest("预约须引用一个号源 / an Appointment must reference exactly one Slot", expression=["slot"])
    slot_id = ref_id(slots[0], "Slot")
    patient_id = None
    for p in body.get("participant", []):
        ref = (p.get("actor") or {}).get("reference", "")
        if ref.split("/")[-2:-1] == ["Patient"]:
            patient_id = ref.split("/")[-1]
    if not slot_id or not patient_id:
        raise BadRequest("预约须引用号源和患者 / an Appointment needs a Slot and a Patient participant",
                         expression=["slot", "participant"])
    exam = None
    for st in body.get("serviceType", []):
        for c in st.get("coding", []):
            if c.get("system") in (EXAM_SYSTEM, None) and c.get("code"):
                exam = c["code"]
    if exam is None:
        slot = session.get(Slot, slot_id)
        res = session.get(Resource, slot.resource_id) if slot else None
        if res is None:
            raise NotFound("号源不存在 / Slot not found", expression=["slot"])
        if len(res.exam_codes or []) != 1:
            raise BadRequest("请在 serviceType 中指明检查项目 / give the exam in serviceType", expression=["serviceType"])
        exam = res.exam_codes[0]
    ext = {e.get("url"): e.get("valueCode") for e in body.get("extension", [])}
    return {"slot_id": slot_id, "patient_record_id": patient_id, "exam_code": exam,
            "channel": ext.get(CHANNEL_EXT) or "web", "purpose": ext.get(PURPOSE_EXT)}


def _created(ctx: Context, a: Appointment) -> Created:
    return Created(appointment_to_fhir(a, repo.exam_types(ctx.session, [a.exam_code])), 201,
                   location=f"{ctx.base}/Appointment/{a.id}/_history/{a.version_id}")


def create_appointment(ctx: Context, body: dict) -> Created:
    """Book a place in the referenced Slot: 201, or 409 (OperationOutcome) when it is full. Status
    ``pending`` makes a hold; the channel is the extension ``urn:onetrip:sd:booking-channel``."""
    args = _booking_from_fhir(ctx.session, body)
    a = service.book(ctx.session, ctx.principal, hold=body.get("status") == "pending", **args)
    return _created(ctx, a)


APPOINTMENT_PARAMS = params(("patient", "reference"), ("status", "token"))


def search_appointments(ctx: Context, raw: dict[str, str], count: int, offset: int) -> Page:
    """A patient's appointments: ``patient`` (Patient/id, required), optional ``status``."""
    session = ctx.session
    if not raw.get("patient"):
        raise BadRequest("需要 patient 参数 / the patient parameter is required", expression=["patient"])
    rid = raw["patient"].split("/")[-1]
    service._patient(session, ctx.principal, rid)
    rows = repo.appointments(session, patient_record_id=rid, status=raw.get("status"), limit=count + 1, offset=offset)
    types = repo.exam_types(session)
    return Page([appointment_to_fhir(a, types) for a in rows[:count]], len(rows) > count)


def _parameters(body: dict, name: str) -> dict:
    """A Parameters resource's ``name`` resource, or the body itself when it is that resource."""
    if body.get("resourceType") == "Parameters":
        validate("Parameters", body)
        for p in body.get("parameter", []):
            if p.get("name") == name and isinstance(p.get("resource"), dict):
                return p["resource"]
        raise BadRequest(f"Parameters 中缺少 {name} / Parameters has no {name!r} resource", expression=["parameter"])
    return body


def find(ctx: Context, body: dict | None, query: list[tuple[str, str]]) -> Created:
    """IHE ITI Scheduling $find: proposed Appointments for ``service-type`` from ``start`` to ``end``
    (dates). With a ``patient`` and several service types (comma-separated) the answer is the multi-exam
    itinerary (fewest trips), the reasons in ``Bundle.entry.resource.comment``."""
    session, principal = ctx.session, ctx.principal
    pairs = query
    if ctx.method == "POST":
        if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
            raise BadRequest("$find 的请求体须为 Parameters / $find takes a Parameters body")
        validate("Parameters", body)
        pairs = [(p.get("name"), str(p.get("valueString") or p.get("valueDate") or p.get("valueDateTime") or
                                      (p.get("valueReference") or {}).get("reference") or
                                      (p.get("valueCode") or "") or p.get("valueInteger", "")))
                  for p in body.get("parameter", [])]
    raw = check_params(pairs, {"service-type", "start", "end", "patient", "organization", "purpose"}, "$find")
    if not raw.get("service-type"):
        raise BadRequest("需要 service-type / service-type is required", expression=["service-type"])
    count, _ = count_offset(raw, default=10)
    codes = [_token(c) for c in raw["service-type"].split(",") if c]
    start = (dt.datetime.combine(parse_date(raw["start"], "start")[1], dt.time(0), LOCAL_TZ).astimezone(dt.UTC)
             if raw.get("start") else utcnow())
    end = (dt.datetime.combine(parse_date(raw["end"], "end")[1] + dt.timedelta(days=1), dt.time(0), LOCAL_TZ)
           .astimezone(dt.UTC) if raw.get("end") else start + dt.timedelta(days=14))
    org = raw["organization"].split("/")[-1] if raw.get("organization") else None
    patient = raw["patient"].split("/")[-1] if raw.get("patient") else None
    types = repo.exam_types(session)
    entries = []
    if patient and len(codes) > 1:
        p, _, _, code_of = service.propose_itinerary(
            session, principal, patient, exam_codes=codes, from_date=start.astimezone(LOCAL_TZ).date(),
            organization_ids=[org] if org else None, purpose=raw.get("purpose"))
        why = "\n".join(f"{e['zh']} / {e['en']}" for e in p.explanation)
        for key, c in p.placements.items():
            entries.append(_proposed(c.slot_id, c.resource_id, c.start, c.end, code_of[key], patient, types, why))
    else:
        for code in codes:
            for s, _r, _free in service.find_candidates(session, code, start, end,
                                                        organization_ids=[org] if org else None,
                                                        purpose=raw.get("purpose"))[:count]:
                entries.append(_proposed(s.id, s.resource_id, s.start, s.end, code, patient, types, None))
    return Created({"resourceType": "Bundle", "type": "searchset", "total": len(entries),
                    "entry": [{"resource": e, "search": {"mode": "match"}} for e in entries]}, 200)


def _proposed(slot_id: str, resource_id: str, start: dt.datetime, end: dt.datetime, code: str,
              patient: str | None, types: dict[str, ExamType], why: str | None) -> dict:
    participants = [{"actor": {"reference": f"Location/{resource_id}"}, "status": "needs-action"}]
    if patient:
        participants.insert(0, {"actor": {"reference": f"Patient/{patient}"}, "status": "needs-action"})
    body = {"resourceType": "Appointment", "status": "proposed", "serviceType": _service_types([code], types),
            "start": _instant(start), "end": _instant(end), "slot": [{"reference": f"Slot/{slot_id}"}],
            "participant": participants}
    if why:
        body["comment"] = why
    t = types.get(code)
    if t and (t.prep_zh or t.prep_en):
        body["patientInstruction"] = " / ".join(x for x in (t.prep_zh, t.prep_en) if x)
    validate("Appointment", body)
    return body


def hold(ctx: Context, body: dict, _query: list[tuple[str, str]]) -> Created:
    """IHE ITI Scheduling $hold: hold the proposed Appointment's slot (status pending, expires after
    ``scheduling.hold_minutes``). 409 when the slot is full."""
    session = ctx.session
    appt = _parameters(body, "appointment")
    a = service.book(session, ctx.principal, hold=True, **_booking_from_fhir(session, {**appt, "status": "pending"}))
    return _created(ctx, a)


def book(ctx: Context, body: dict, _query: list[tuple[str, str]]) -> Created:
    """IHE ITI Scheduling $book: confirm a held Appointment (its ``id``) — 200 — or book the proposed
    one directly — 201; 409 when the slot is full or the hold expired."""
    session, principal = ctx.session, ctx.principal
    appt = _parameters(body, "appointment")
    if appt.get("id") and session.get(Appointment, appt["id"]) is not None:
        a = service.confirm(session, principal, appt["id"])
        return Created(appointment_to_fhir(a, repo.exam_types(session, [a.exam_code])), 200)
    a = service.book(session, principal, **_booking_from_fhir(session, {**appt, "status": "booked"}))
    return _created(ctx, a)


def read_appointment(ctx: Context, aid: str) -> dict:
    """An appointment (the patient's record must be readable: access policy; audited)."""
    a = service.read_appointment(ctx.session, ctx.principal, aid)
    return appointment_to_fhir(a, repo.exam_types(ctx.session, [a.exam_code]))


RESOURCES = [
    ResourceType("Schedule", read=read_schedule, search=search_schedules, search_params=SCHEDULE_PARAMS,
                 doc="A bookable resource: device, room or clinic session."),
    ResourceType("Slot", read=read_slot, search=search_slots, search_params=SLOT_PARAMS,
                 doc="A time slot of a schedule, with capacity and reserved places."),
    ResourceType(
        "Appointment", read=read_appointment, search=search_appointments, search_params=APPOINTMENT_PARAMS,
        create=create_appointment, doc="A booked exam (five channels).",
        operations=(
            Operation("find", find, scope=("Slot", "s"), methods=("GET", "POST"), body="optional",
                      definition="urn:onetrip:op:appointment-find", doc=find.__doc__),
            Operation("hold", hold, scope=("Appointment", "c"), status=201,
                      definition="urn:onetrip:op:appointment-hold", doc=hold.__doc__),
            Operation("book", book, scope=("Appointment", "c"),
                      definition="urn:onetrip:op:appointment-book", doc=book.__doc__),
        )),
]
