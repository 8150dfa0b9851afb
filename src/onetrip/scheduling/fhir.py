"""FHIR R4 Schedule, Slot and Appointment, with ``Appointment/$find``, ``$hold`` and ``$book`` in the
shapes of the IHE ITI Scheduling profile (find → proposed Appointments, hold → pending, book → booked).

Declared here, served by the façade (``onetrip.interop.fhir``). Every resource served validates with
``fhir.resources.R4B``; every error is an OperationOutcome.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from onetrip.access import service as access
from onetrip.audit import service as audit
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
    date_search,
    date_value,
    instant,
    params,
    ref_id,
    validate,
)
from onetrip.persons.models import PatientRecord
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


STARTED_EXT = "urn:onetrip:sd:slot-started"


def slot_status(s: Slot, purpose: str | None, now: dt.datetime) -> str:
    """``busy-unavailable`` when closed or started (time is honest: a started slot cannot be booked),
    ``free`` with a place left for this booker, ``busy`` otherwise."""
    if s.blocked or repo.started(s, now):
        return "busy-unavailable"
    return "free" if repo.free_places(s, purpose, now) > 0 else "busy"


def slot_to_fhir(s: Slot, r: Resource | None, types: dict[str, ExamType], purpose: str | None = None) -> dict:
    now = utcnow()
    free = repo.free_places(s, purpose, now)
    status = slot_status(s, purpose, now)
    body = {
        "resourceType": "Slot", "id": s.id, "meta": _meta(s.updated_at),
        "schedule": {"reference": f"Schedule/{s.resource_id}"},
        "serviceType": _service_types((r.exam_codes if r else None) or [], types),
        "status": status, "start": _instant(s.start), "end": _instant(s.end),
        "overbooked": False,
        "extension": [{"url": CAPACITY_EXT, "valueInteger": s.capacity}, {"url": FREE_EXT, "valueInteger": free}],
    }
    if repo.started(s, now) and not s.blocked:
        body["extension"].append({"url": STARTED_EXT, "valueBoolean": True})
        body["comment"] = "号源时间已开始，不可预约 / the slot has started and cannot be booked"
    elif s.reserved and s.release_at and s.release_at > now:
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


def _ref(value: str, kinds: tuple[str, ...], name: str) -> tuple[str | None, str]:
    """(type, id) of a reference search value ``Type/id`` (or a bare id: type None); 400 for another type."""
    parts = value.rstrip("/").split("/")
    if len(parts) == 1:
        return None, parts[0]
    if parts[-2] not in kinds:
        raise BadRequest(f"{name} 应引用 {' 或 '.join(kinds)} / {name} must reference {' or '.join(kinds)}: {value!r}",
                         expression=[name])
    return parts[-2], parts[-1]


def _tokens(value: str) -> list[str]:
    return [_token(v) for v in value.split(",") if v]


# --- Schedule ---------------------------------------------------------------------------------------

SCHEDULE_PARAMS = params(("service-type", "token"), ("actor", "reference"), ("active", "token"), ("_id", "token"))


def search_schedules(ctx: Context, raw: dict[str, str], count: int, offset: int) -> Page:
    """Schedules (devices, rooms, clinic sessions): ``service-type`` (exam code; comma: any of), ``actor``
    (Organization/id or Practitioner/id; a bare id is an Organization), ``active`` (default true), ``_id``."""
    session = ctx.session
    org = practitioner = None
    if raw.get("actor"):
        kind, ident = _ref(raw["actor"], ("Organization", "Practitioner"), "actor")
        practitioner, org = (ident, None) if kind == "Practitioner" else (None, ident)
    if raw.get("active", "true") not in ("true", "false"):
        raise BadRequest("active 应为 true 或 false / active must be true or false", expression=["active"])
    rows = repo.resources(session, organization_id=org, active_only=raw.get("active", "true") != "false")
    if raw.get("service-type"):
        codes = set(_tokens(raw["service-type"]))
        rows = [r for r in rows if codes & set(r.exam_codes or [])]
    if practitioner:
        rows = [r for r in rows if r.practitioner_id == practitioner]
    if raw.get("_id"):
        wanted = set(raw["_id"].split(","))
        rows = [r for r in rows if r.id in wanted]
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
                     ("organization", "reference"), ("_id", "token"))
SLOT_STATUSES = ("free", "busy", "busy-unavailable")


def search_slots(ctx: Context, raw: dict[str, str], count: int, offset: int) -> Page:
    """Slots: ``service-type`` (exam code), ``start`` (date or dateTime at any precision with the prefixes
    eq ne lt gt le ge sa eb ap; repeat it for a range: ``start=ge…&start=lt…``), ``status`` (free | busy |
    busy-unavailable, as the Slot shows it: a started slot is busy-unavailable, never free), ``schedule``
    (Schedule/id; comma: any of), ``organization``, ``_id``."""
    session = ctx.session
    resource_ids = None
    if raw.get("service-type") or raw.get("schedule") or raw.get("organization"):
        org = _ref(raw["organization"], ("Organization",), "organization")[1] if raw.get("organization") else None
        rows = repo.resources(session, organization_id=org, active_only=False)
        if raw.get("service-type"):
            codes = set(_tokens(raw["service-type"]))
            rows = [r for r in rows if codes & set(r.exam_codes or [])]
        resource_ids = [r.id for r in rows]
        if raw.get("schedule"):
            wanted = {_ref(v, ("Schedule",), "schedule")[1] for v in raw["schedule"].split(",")}
            resource_ids = [r for r in resource_ids if r in wanted]
    when = date_search(raw["start"], "start") if raw.get("start") else None
    status = raw.get("status")
    if status is not None and status not in SLOT_STATUSES:
        raise BadRequest("status 仅支持 free、busy 或 busy-unavailable / status must be free, busy or busy-unavailable",
                         expression=["status"])
    ids = raw["_id"].split(",") if raw.get("_id") else None
    found = repo.slots(session, resource_ids=resource_ids, when=when, status=status, ids=ids, limit=count + 1,
                       offset=offset) if count else []
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


APPOINTMENT_PARAMS = params(("date", "date"), ("slot", "reference"), ("actor", "reference"),
                            ("patient", "reference"), ("practitioner", "reference"), ("location", "reference"),
                            ("service-type", "token"), ("status", "token"), ("_id", "token"))
APPOINTMENT_STATUSES = ("proposed", "pending", "booked", "arrived", "fulfilled", "cancelled", "noshow",
                        "entered-in-error", "checked-in", "waitlist")


def _intersect(current: list[str] | None, more: list[str]) -> list[str]:
    return more if current is None else [x for x in current if x in set(more)]


def search_appointments(ctx: Context, raw: dict[str, str], count: int, offset: int) -> Page:
    """Appointments: ``date`` (the start; date or dateTime at any precision with prefixes), ``slot``,
    ``actor`` (Patient, Practitioner, Location or Device), ``patient``, ``practitioner``, ``location`` (the
    Schedule's resource), ``service-type`` (exam code), ``status`` (comma: any of), ``_id``. Scoped by the
    access policy, not by a required patient: operators and system clients see all; a user sees the
    appointments at or booked by their institution and, elsewhere, those of persons they may read (a care
    relationship, consent, break-the-glass). A ``patient`` of another institution is checked (403 when
    refused, audited). Every appointment in the page is audited as read."""
    session, principal = ctx.session, ctx.principal
    patient = practitioner = None
    resource_ids: list[str] | None = None
    if raw.get("patient"):
        patient = _ref(raw["patient"], ("Patient",), "patient")[1]
    if raw.get("practitioner"):
        practitioner = _ref(raw["practitioner"], ("Practitioner",), "practitioner")[1]
    if raw.get("location"):
        resource_ids = [_ref(v, ("Location",), "location")[1] for v in raw["location"].split(",")]
    if raw.get("actor"):
        kind, ident = _ref(raw["actor"], ("Patient", "Practitioner", "Location", "Device"), "actor")
        if kind == "Patient" or (kind is None and session.get(PatientRecord, ident) is not None):
            if patient not in (None, ident):
                return Page([], False, total=0)
            patient = ident
        elif kind == "Practitioner":
            if practitioner not in (None, ident):
                return Page([], False, total=0)
            practitioner = ident
        else:
            resource_ids = _intersect(resource_ids, [ident])
    if practitioner:
        resource_ids = _intersect(resource_ids, repo.resources_of_practitioner(session, practitioner))
    statuses = raw["status"].split(",") if raw.get("status") else None
    unknown = set(statuses or ()) - set(APPOINTMENT_STATUSES)
    if unknown:
        raise BadRequest(f"status 无效 / unknown Appointment status {sorted(unknown)}", expression=["status"])
    slot_ids = [_ref(v, ("Slot",), "slot")[1] for v in raw["slot"].split(",")] if raw.get("slot") else None
    when = date_search(raw["date"], "date") if raw.get("date") else None
    visible_to, granted = None, None
    if patient is not None:
        rec = session.get(PatientRecord, patient)
        if rec is None:
            return Page([], False, total=0)
        if not principal.is_operator and rec.organization_id != principal.organization_id:
            access.require_read(session, principal, rec.person_id, f"Appointment?{ctx.query}", subtype="search-type")
        elif not principal.is_operator:
            visible_to, granted = principal.organization_id, access.granted_person_ids(session, principal)
    elif not principal.is_operator:
        visible_to, granted = principal.organization_id, access.granted_person_ids(session, principal)
    rows = repo.appointment_search(
        session, ids=raw["_id"].split(",") if raw.get("_id") else None, patient_record_id=patient, slot_ids=slot_ids,
        resource_ids=resource_ids, exam_codes=_tokens(raw["service-type"]) if raw.get("service-type") else None,
        statuses=statuses, when=when, visible_to=visible_to, granted=granted, limit=count + 1, offset=offset,
    ) if count else []
    has_more, rows = len(rows) > count, rows[:count]
    if visible_to is not None:  # a grant found by the semi-join still goes through the decision (a refusal wins)
        elsewhere = sorted({a.person_id for a in rows if visible_to not in (a.organization_id,
                                                                            a.booking_organization_id)})
        allowed = access.decisions(session, principal, elsewhere) if elsewhere else {}
        rows = [a for a in rows if visible_to in (a.organization_id, a.booking_organization_id)
                or allowed[a.person_id].allowed]
    if rows:
        audit.record(session, principal, "search-type", person_ids=[a.person_id for a in rows],
                     what=[f"Appointment/{a.id}" for a in rows])
    types = repo.exam_types(session)
    return Page([appointment_to_fhir(a, types) for a in rows], has_more)


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
    itinerary (fewest trips), the reasons in ``Bundle.entry.resource.comment``. ``start``/``end`` take a date
    or dateTime (a date: from its local midnight / to the end of that day). Slots that have started are never
    proposed. When nothing is found the Bundle carries an OperationOutcome entry (``search.mode`` outcome)
    with the reasons in Chinese and English: a full calendar, no sessions open, a rule that blocks."""
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
    now = utcnow()
    start = date_value(raw["start"], "start").start if raw.get("start") else now
    end = start + dt.timedelta(days=14)
    if raw.get("end"):  # a date: to the end of that day (month, year); a dateTime: up to that instant
        until = date_value(raw["end"], "end")
        end = until.end if until.precision in ("year", "month", "day") else until.start
    org = raw["organization"].split("/")[-1] if raw.get("organization") else None
    patient = raw["patient"].split("/")[-1] if raw.get("patient") else None
    types = repo.exam_types(session)
    entries = []
    reasons: list[tuple[str, str]] = []
    if patient and len(codes) > 1:
        p, _, _, code_of = service.propose_itinerary(
            session, principal, patient, exam_codes=codes, from_date=start.astimezone(LOCAL_TZ).date(),
            organization_ids=[org] if org else None, purpose=raw.get("purpose"))
        why = "\n".join(f"{e['zh']} / {e['en']}" for e in p.explanation)
        for key, c in p.placements.items():
            entries.append(_proposed(c.slot_id, c.resource_id, c.start, c.end, code_of[key], patient, types, why))
        if not p.placements:
            reasons = [(e["zh"], e["en"]) for e in p.explanation]
            for code in dict.fromkeys(codes):
                reasons += find_reasons(session, code, start, end, org, raw.get("purpose"), types, now)
    else:
        for code in codes:
            found = service.find_candidates(session, code, start, end, organization_ids=[org] if org else None,
                                            purpose=raw.get("purpose"), now=now)[:count]
            for s, _r, _free in found:
                entries.append(_proposed(s.id, s.resource_id, s.start, s.end, code, patient, types, None))
            if not found:
                reasons += find_reasons(session, code, start, end, org, raw.get("purpose"), types, now)
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "total": len(entries),
                              "entry": [{"resource": e, "search": {"mode": "match"}} for e in entries]}
    if reasons:
        bundle["entry"].append({"resource": _outcome(reasons), "search": {"mode": "outcome"}})
    return Created(bundle, 200)


def _outcome(reasons: list[tuple[str, str]]) -> dict:
    """An OperationOutcome (severity information, code not-found) with one issue per reason, in Chinese and
    English: why $find found nothing."""
    body = {"resourceType": "OperationOutcome", "issue": [
        {"severity": "information", "code": "not-found", "details": {"text": f"{zh} / {en}"},
         "diagnostics": en} for zh, en in dict.fromkeys(reasons)]}
    validate("OperationOutcome", body)
    return body


def find_reasons(session, code: str, start: dt.datetime, end: dt.datetime, org: str | None, purpose: str | None,
                 types: dict[str, ExamType], now: dt.datetime) -> list[tuple[str, str]]:
    """Why no slot was found for ``code`` from ``start`` to ``end``: (zh, en) pairs — an unknown exam, no
    resource performing it, a window that has passed, no sessions open (no schedule, closed, a holiday),
    every slot closed, started or full, or the places left held for a purpose."""
    t = types.get(code)
    name_zh, name_en = (t.name, t.name_en) if t else (code, code)
    lo, hi = _instant(start)[:16], _instant(end)[:16]
    if t is None or not t.active:
        return [(f"检查项目 {code} 不存在或已停用", f"exam {code} is unknown or inactive")]
    res = repo.resources(session, organization_id=org, exam_code=code)
    if not res:
        where = f"（机构 {org}）" if org else ""
        return [(f"没有能做 {name_zh} 的设备或诊室{where}",
                 f"no device, room or clinic session performs {name_en}" + (f" at Organization/{org}" if org else ""))]
    if end <= now:
        return [(f"所选时段 {lo} 至 {hi} 已过", f"the window {lo} to {hi} has passed")]
    rows = repo.slots(session, resource_ids=[r.id for r in res], start=start, end=end, limit=100_000, now=now)
    out: list[tuple[str, str]] = []
    started = [x for x in rows if repo.started(x, now) and not x.blocked]
    rows = [x for x in rows if not repo.started(x, now)]
    if started:
        out.append((f"{len(started)} 个号源时间已开始，不可预约", f"{len(started)} slot(s) have already started and "
                    "cannot be booked"))
    if not rows:
        out.append((f"{lo} 至 {hi} 没有开放的 {name_zh} 号源（未排班、停诊或节假日）",
                    f"no {name_en} slots are open from {lo} to {hi} (no sessions scheduled, closed, or a holiday)"))
        return out
    closed = sum(1 for x in rows if x.blocked)
    full = sum(1 for x in rows if not x.blocked and x.booked >= x.capacity)
    held = [x for x in rows if not x.blocked and x.booked < x.capacity and repo.free_places(x, purpose, now) <= 0]
    if closed:
        out.append((f"{closed} 个号源已停诊", f"{closed} slot(s) are closed"))
    if full:
        out.append((f"{lo} 至 {hi} 的 {full} 个 {name_zh} 号源已约满",
                    f"{full} {name_en} slot(s) from {lo} to {hi} are fully booked"))
    if held:
        purposes = sorted({x.reserved_purpose or "?" for x in held})
        out.append((f"{len(held)} 个号源剩余名额预留给 {', '.join(purposes)}，到放号时间后可约",
                    f"the places left in {len(held)} slot(s) are reserved for {', '.join(purposes)} until "
                    "their release time"))
    return out


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
