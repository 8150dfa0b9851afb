"""Issue 17: FHIR search as scheduling clients expect it — Slot by dateTime (any precision, prefixes,
repeats, paging), Appointment by date/slot/actor/patient/practitioner/location/service-type/status scoped by
the access policy (no patient required), Schedule by actor/service-type — and honest time: a slot that has
started is not bookable and not ``free``; an empty ``$find`` says why."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from urllib.parse import quote

import pytest
from sqlalchemy import select

from onetrip.access import service as access
from onetrip.kit.clock import LOCAL_TZ, utcnow
from onetrip.kit.principal import cli_principal
from onetrip.registry import service as registry
from onetrip.scheduling import repository as repo
from onetrip.scheduling import service
from onetrip.scheduling.models import Slot
from tests.factories import auth, token
from tests.scheduling.conftest import Sched, build_sched, patient, system_headers

FHIR = "application/fhir+json"
STARTED_EXT = "urn:onetrip:sd:slot-started"


@dataclass
class Data:
    a: Sched
    b: Sched
    practitioner: str
    clinic: str  # a clinic session resource of the practitioner, at A
    started: str  # a CT slot at A that started 30 minutes ago
    started_full: str  # a CT slot at A that started an hour ago and was booked
    appts: dict[str, str]  # name → appointment id
    patients: dict[str, str]  # name → patient record id
    slots: dict[str, str]  # name → slot id


def local(day: dt.date, hhmm: str) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.fromisoformat(hhmm), LOCAL_TZ)


def q(value: str) -> str:
    return quote(value, safe="")


def slot_at(s, resource_id: str, day: dt.date, hhmm: str) -> str:
    return s.scalar(select(Slot.id).where(Slot.resource_id == resource_id,
                                          Slot.start == local(day, hhmm).astimezone(dt.UTC)))


@pytest.fixture(scope="module")
def data(db, world) -> Data:
    a, b = build_sched(db, world.org_a), build_sched(db, world.org_b)
    op = cli_principal()
    now = utcnow()
    with db.session() as s:
        pr = registry.create_practitioner(s, op, name="李医生", organization_id=world.org_a)
        clinic = service.create_resource(s, op, organization_id=world.org_a, code=f"IM{a.ct[-6:]}",
                                         name="内科门诊", kind="clinic_session", modality="CLINIC",
                                         exam_codes=["CLINIC_IM"], practitioner_id=pr.id)
        clinic_slot = Slot(resource_id=clinic.id, organization_id=world.org_a, start=local(a.day, "09:00"),
                           end=local(a.day, "09:30"), capacity=2)
        started = Slot(resource_id=a.ct, organization_id=world.org_a, start=now - dt.timedelta(minutes=30),
                       end=now + dt.timedelta(minutes=30), capacity=3)
        started_full = Slot(resource_id=a.ct, organization_id=world.org_a, start=now - dt.timedelta(hours=1),
                            end=now - dt.timedelta(minutes=40), capacity=1, booked=1)
        s.add_all([clinic_slot, started, started_full])
        s.commit()
        slots = {"ct8": slot_at(s, a.ct, a.day, "08:00"), "ct820": slot_at(s, a.ct, a.day, "08:20"),
                 "us8": slot_at(s, a.us, a.day, "08:00"), "es8": slot_at(s, a.es, a.day, "08:00"),
                 "b_ct8": slot_at(s, b.ct, b.day, "08:00"), "b_ct840": slot_at(s, b.ct, b.day, "08:40"),
                 "clinic": clinic_slot.id}
        ids = (pr.id, clinic.id, started.id, started_full.id)
    patients = {"a1": patient(db, world.org_a), "a2": patient(db, world.org_a), "b1": patient(db, world.org_b),
                "b2": patient(db, world.org_b), "x": patient(db, world.org_b)}
    appts = {}
    with db.session() as s:
        for name, pid, slot, code in (("a1_ct", "a1", "ct8", "CT_HEAD"), ("a2_us", "a2", "us8", "US_ABD"),
                                      ("a1_clinic", "a1", "clinic", "CLINIC_IM"),
                                      ("b1_at_a", "b1", "es8", "ES_GASTRO"), ("b2_at_b", "b2", "b_ct8", "CT_HEAD"),
                                      ("x_at_b", "x", "b_ct840", "CT_CHEST")):
            appts[name] = service.book(s, op, slot_id=slots[slot], patient_record_id=patients[pid], exam_code=code,
                                       channel="web").id
        appts["a2_cancelled"] = service.cancel(s, op, service.book(
            s, op, slot_id=slots["ct820"], patient_record_id=patients["a2"], exam_code="CT_CHEST",
            channel="phone").id).id
        from onetrip.persons.models import PatientRecord

        x_person = s.get(PatientRecord, patients["x"]).person_id
        access.record_consent(s, op, x_person, "permit", grantee_organization_id=world.org_a)
        s.commit()
    return Data(a, b, ids[0], ids[1], ids[2], ids[3], appts, patients, slots)


@pytest.fixture(scope="module")
def h(client, world):
    return {**system_headers(client, world), "Content-Type": FHIR}


@pytest.fixture(scope="module")
def doc_a(client, world):
    return auth(token(client, world.users["doc_a"]))


@pytest.fixture(scope="module")
def doc_b(client, world):
    return auth(token(client, world.users["doc_b"]))


def ids(bundle: dict) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]


def get(client, url: str, headers: dict, status: int = 200) -> dict:
    r = client.get(url, headers=headers)
    assert r.status_code == status, r.text
    return r.json()


# --- Slot -----------------------------------------------------------------------------------------

def test_slot_start_at_datetime_precision_with_offsets(client, data, h):
    day = data.a.day.isoformat()
    base = f"/fhir/R4/Slot?schedule=Schedule/{data.a.ct}"
    # the example: ge with seconds and +08:00 (the + must be %2B in a URL)
    b = get(client, f"{base}&start={q(f'ge{day}T13:30:00+08:00')}&start={q(f'lt{day}T14:30:00+08:00')}", h)
    starts = [e["resource"]["start"] for e in b["entry"]]
    assert starts == [f"{day}T13:30:00+08:00", f"{day}T13:50:00+08:00", f"{day}T14:10:00+08:00"]
    # the same instant in UTC, at minute precision
    utc = local(data.a.day, "13:30").astimezone(dt.UTC)
    b = get(client, f"{base}&start=eq{utc:%Y-%m-%dT%H:%M}Z", h)
    assert [e["resource"]["start"] for e in b["entry"]] == [f"{day}T13:30:00+08:00"]
    # a time without an offset is local
    assert ids(get(client, f"{base}&start={day}T08:00:00", h)) == [data.slots["ct8"]]
    # gt at second precision excludes the slot starting at that second; ge includes it
    gt = ids(get(client, f"{base}&start={q(f'gt{day}T08:00:00+08:00')}&_count=1", h))
    ge = ids(get(client, f"{base}&start={q(f'ge{day}T08:00:00+08:00')}&_count=1", h))
    assert ge == [data.slots["ct8"]] and gt == [data.slots["ct820"]]
    # le / lt at minute precision
    le = ids(get(client, f"{base}&start=ge{day}&start=le{day}T08:20", h))
    lt = ids(get(client, f"{base}&start=ge{day}&start=lt{day}T08:20", h))
    assert le == [data.slots["ct8"], data.slots["ct820"]] and lt == [data.slots["ct8"]]


def test_slot_start_at_year_month_day_precision(client, data, h):
    day = data.a.day
    base = f"/fhir/R4/Slot?schedule=Schedule/{data.a.ct}&_count=200"
    on_day = get(client, f"{base}&start={day}", h)["entry"]
    assert len(on_day) == 20 and all(e["resource"]["start"].startswith(day.isoformat()) for e in on_day)
    after = get(client, f"{base}&start=gt{day}", h)["entry"]
    assert after and all(e["resource"]["start"][:10] > day.isoformat() for e in after)
    month = get(client, f"{base}&start={day:%Y-%m}", h)["entry"]
    assert month and all(e["resource"]["start"].startswith(f"{day:%Y-%m}") for e in month)
    year = get(client, f"{base}&start=eq{day:%Y}", h)["entry"]
    assert year and all(e["resource"]["start"].startswith(f"{day:%Y}") for e in year)
    before = get(client, f"{base}&start=lt{day.year}", h)
    assert before.get("entry", []) == []
    # The ultrasound's schedule: slots from tomorrow on and none started today (the CT schedule has two
    # started slots at now - 30 min, which fall on day - 1 for most of the day).
    us = f"/fhir/R4/Slot?schedule=Schedule/{data.a.us}&_count=200"
    window = f"&start=ge{day - dt.timedelta(days=1)}&start=lt{day + dt.timedelta(days=1)}"
    assert get(client, us + window, h)["entry"]  # the window holds that day's slots
    ne = get(client, f"{us}&start=ne{day}{window}", h)
    assert ne.get("entry", []) == []  # only that day's slots in the window, all excluded by ne
    for bad in ("start=2026-13", "start=ge2026-12-08T8:00", "start=xx2026", "start=2026-12-08T08"):
        r = client.get(f"/fhir/R4/Slot?{bad}", headers=h)
        assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome", bad


def test_slot_paging_keeps_a_repeated_date_parameter(client, data, h):
    day = data.a.day.isoformat()
    url = (f"/fhir/R4/Slot?schedule=Schedule/{data.a.us}&start={q(f'ge{day}T08:00:00+08:00')}"
           f"&start={q(f'lt{day}T09:00:00+08:00')}&_count=3")
    first = get(client, url, h)
    assert len(first["entry"]) == 3
    nxt = next(link["url"] for link in first["link"] if link["relation"] == "next")
    assert nxt.count("start=") == 2  # written back as given
    second = get(client, nxt[nxt.index("/fhir/R4/"):], h)
    assert len(second["entry"]) == 1 and not any(link["relation"] == "next" for link in second["link"])
    got = [e["resource"]["start"] for e in first["entry"] + second["entry"]]
    assert got == [f"{day}T08:{m}:00+08:00" for m in ("00", "15", "30", "45")]


def test_slot_by_schedule_service_type_status(client, data, h):
    day = data.a.day.isoformat()
    b = get(client, f"/fhir/R4/Slot?service-type=urn:onetrip:cs:exam|CLINIC_IM&start={day}", h)
    assert data.slots["clinic"] in ids(b)
    b = get(client, f"/fhir/R4/Slot?schedule=Schedule/{data.a.ct},Schedule/{data.a.us}&start={day}T08:00", h)
    assert sorted(ids(b)) == sorted([data.slots["ct8"], data.slots["us8"]])
    busy = get(client, f"/fhir/R4/Slot?schedule=Schedule/{data.a.ct}&start={day}&status=busy", h)
    assert ids(busy) == [data.slots["ct8"]] and busy["entry"][0]["resource"]["status"] == "busy"
    free = get(client, f"/fhir/R4/Slot?schedule=Schedule/{data.a.ct}&start={day}&status=free&_count=200", h)
    assert data.slots["ct8"] not in ids(free) and data.slots["ct820"] in ids(free)  # the cancelled place is back
    assert client.get("/fhir/R4/Slot?schedule=Patient/1", headers=h).status_code == 400


# --- time is honest -------------------------------------------------------------------------------

def test_a_started_slot_is_not_free(client, data, h):
    s = get(client, f"/fhir/R4/Slot/{data.started}", h)
    assert s["status"] == "busy-unavailable"
    assert {"url": STARTED_EXT, "valueBoolean": True} in s["extension"]
    assert any(e["valueInteger"] == 0 for e in s["extension"] if e["url"].endswith("slot-free-places"))
    assert "started" in s["comment"]
    today = dt.datetime.now(LOCAL_TZ).date().isoformat()
    free = get(client, f"/fhir/R4/Slot?schedule=Schedule/{data.a.ct}&start=ge{today}&status=free&_count=200", h)
    assert data.started not in ids(free) and data.started_full not in ids(free)
    gone = get(client, f"/fhir/R4/Slot?schedule=Schedule/{data.a.ct}&status=busy-unavailable&_count=200", h)
    assert {data.started, data.started_full} <= set(ids(gone))
    busy = get(client, f"/fhir/R4/Slot?schedule=Schedule/{data.a.ct}&status=busy&_count=200", h)
    assert data.started_full not in ids(busy)


def test_the_board_data_greys_started_slots(db, data):
    now = utcnow()
    with db.session() as s:
        states = repo.slot_states(s, [data.started, data.slots["ct820"], data.slots["ct8"]], now)
    assert states[data.started] == {"started": True, "bookable": False, "free": 0}
    assert states[data.slots["ct820"]] == {"started": False, "bookable": True, "free": 1}
    assert states[data.slots["ct8"]]["bookable"] is False and states[data.slots["ct8"]]["started"] is False


def test_booking_a_started_slot_is_refused_with_a_clear_message(client, db, world, data, h):
    pid = patient(db, world.org_a)
    body = {"resourceType": "Appointment", "status": "booked", "slot": [{"reference": f"Slot/{data.started}"}],
            "serviceType": [{"coding": [{"system": "urn:onetrip:cs:exam", "code": "CT_HEAD"}]}],
            "participant": [{"actor": {"reference": f"Patient/{pid}"}, "status": "accepted"}]}
    r = client.post("/fhir/R4/Appointment", headers=h, json=body)
    assert r.status_code == 409, r.text
    text = r.json()["issue"][0]["details"]["text"]
    assert "已于" in text and "started" in text and "no longer be booked" in text
    r = client.post("/api/scheduling/appointments", headers=h, json={
        "slot_id": data.started, "patient_record_id": pid, "exam_code": "CT_HEAD", "channel": "web"})
    assert r.status_code == 409, r.text
    with db.session() as s:
        assert s.get(Slot, data.started).booked == 0


# --- $find --------------------------------------------------------------------------------------

def test_find_never_proposes_a_started_slot(client, data, h):
    today = dt.datetime.now(LOCAL_TZ).date().isoformat()
    b = get(client, f"/fhir/R4/Appointment/$find?service-type=CT_HEAD&start={today}&end={today}", h)
    slots = [e["resource"]["slot"][0]["reference"] for e in b["entry"] if e["search"]["mode"] == "match"]
    assert f"Slot/{data.started}" not in slots


def test_empty_find_carries_the_reasons(client, data, world, h):
    past = (dt.datetime.now(LOCAL_TZ).date() - dt.timedelta(days=3)).isoformat()
    b = get(client, f"/fhir/R4/Appointment/$find?service-type=CT_HEAD&start={past}&end={past}", h)
    assert b["total"] == 0
    (outcome,) = [e["resource"] for e in b["entry"] if e["search"]["mode"] == "outcome"]
    assert outcome["resourceType"] == "OperationOutcome"
    assert "已过" in outcome["issue"][0]["details"]["text"] and "has passed" in outcome["issue"][0]["details"]["text"]
    # a full calendar: the practitioner's clinic has one slot in the window; fill it
    day = data.a.day.isoformat()
    url = f"/fhir/R4/Appointment/$find?service-type=CLINIC_IM&start={day}&end={day}&organization=Organization/{world.org_a}"
    assert len(ids_of_proposed(get(client, url, h))) == 1
    for _ in range(1):  # one place left (capacity 2, one booked by a1)
        r = client.post("/fhir/R4/Appointment", headers=h, json={
            "resourceType": "Appointment", "status": "booked", "slot": [{"reference": f"Slot/{data.slots['clinic']}"}],
            "participant": [{"actor": {"reference": f"Patient/{data.patients['a2']}"}, "status": "accepted"}]})
        assert r.status_code == 201, r.text
    b = get(client, url, h)
    texts = [i["details"]["text"] for e in b["entry"] if e["search"]["mode"] == "outcome" for i in e["resource"]["issue"]]
    assert b["total"] == 0 and any("约满" in t and "fully booked" in t for t in texts), texts
    # no resource performs the exam at B
    b = get(client, f"/fhir/R4/Appointment/$find?service-type=MR_HEAD&organization=Organization/{world.org_b}", h)
    texts = [i["details"]["text"] for e in b["entry"] for i in e["resource"].get("issue", [])]
    assert any("没有能做" in t and "no device, room or clinic session performs" in t for t in texts), texts
    # no sessions on a day without slots (a Sunday after the generated fortnight)
    far = data.a.day + dt.timedelta(days=40)
    b = get(client, f"/fhir/R4/Appointment/$find?service-type=CT_HEAD&start={far}&end={far}", h)
    texts = [i["details"]["text"] for e in b["entry"] for i in e["resource"].get("issue", [])]
    assert any("没有开放" in t and "no " in t and "open" in t for t in texts), texts


def ids_of_proposed(bundle: dict) -> list[str]:
    return [e["resource"]["slot"][0]["reference"] for e in bundle["entry"] if e["search"]["mode"] == "match"]


# --- Appointment ----------------------------------------------------------------------------------

def test_appointment_search_needs_no_patient_and_is_scoped_by_access(client, data, h, doc_a, doc_b):
    A = data.appts
    mine = [A["a1_ct"], A["a2_us"], A["a1_clinic"], A["b1_at_a"]]
    everyone = get(client, "/fhir/R4/Appointment?_count=200", h)  # a system client: all
    assert set(A.values()) <= set(ids(everyone))
    seen_a = set(ids(get(client, "/fhir/R4/Appointment?_count=200", doc_a)))
    assert set(mine) | {A["x_at_b"]} <= seen_a  # at A, booked by A, or a person who consented to A
    assert A["b2_at_b"] not in seen_a  # another institution's, no access
    seen_b = set(ids(get(client, "/fhir/R4/Appointment?_count=200", doc_b)))
    assert {A["b1_at_a"], A["b2_at_b"], A["x_at_b"]} <= seen_b  # booked by B / at B
    assert not {A["a1_ct"], A["a2_us"], A["a1_clinic"]} & seen_b
    # a patient elsewhere without access: 403 (audited); with consent: their appointments
    r = client.get(f"/fhir/R4/Appointment?patient=Patient/{data.patients['b2']}", headers=doc_a)
    assert r.status_code == 403 and r.json()["resourceType"] == "OperationOutcome"
    assert ids(get(client, f"/fhir/R4/Appointment?patient=Patient/{data.patients['x']}", doc_a)) == [A["x_at_b"]]


def test_appointment_search_parameters(client, data, h):
    A, day = data.appts, data.a.day.isoformat()
    base = "/fhir/R4/Appointment?_count=200"

    def found(query: str) -> set[str]:  # among this module's fixture appointments
        return set(ids(get(client, f"{base}&{query}", h))) & set(A.values())

    pa1, pa2 = data.patients["a1"], data.patients["a2"]
    assert found(f"patient=Patient/{pa1}") == {A["a1_ct"], A["a1_clinic"]}
    assert found(f"actor=Patient/{pa1}") == {A["a1_ct"], A["a1_clinic"]}
    assert found(f"patient={pa1}&service-type=urn:onetrip:cs:exam|CT_HEAD") == {A["a1_ct"]}
    assert found(f"slot=Slot/{data.slots['us8']}") == {A["a2_us"]}
    assert found(f"location=Location/{data.a.es}") == {A["b1_at_a"]}
    assert found(f"actor=Location/{data.a.us}&status=booked") == {A["a2_us"]}
    assert found(f"practitioner=Practitioner/{data.practitioner}") == {A["a1_clinic"]}
    assert found(f"actor=Practitioner/{data.practitioner}") == {A["a1_clinic"]}
    assert found(f"patient={pa2}&status=cancelled") == {A["a2_cancelled"]}
    assert found(f"patient={pa2}&status=booked") == {A["a2_us"]}
    assert found(f"patient={pa2}&status=booked,cancelled") == {A["a2_us"], A["a2_cancelled"]}
    # date at every precision
    assert found(f"patient={pa1}&date={q(f'eq{day}T09:00:00+08:00')}") == {A["a1_clinic"]}
    assert found(f"patient={pa1}&date=ge{day}T08:30&date=lt{day}T10:00") == {A["a1_clinic"]}
    assert found(f"patient={pa1}&date={day}") == {A["a1_ct"], A["a1_clinic"]}
    assert found(f"patient={pa1}&date={day[:7]}") == {A["a1_ct"], A["a1_clinic"]}
    assert found(f"patient={pa1}&date={day[:4]}") == {A["a1_ct"], A["a1_clinic"]}
    assert found(f"patient={pa1}&date=gt{day}") == set()
    assert found(f"patient={pa1}&date=lt{day}T08:00") == set()
    assert found(f"patient={pa1}&date=le{day}T08:00") == {A["a1_ct"]}
    for bad in ("status=maybe", "patient=Practitioner/1", "date=2026-12-08T8", "actor=Organization/1",
                "colour=blue", "actor=Patient/1&actor=Patient/2"):
        r = client.get(f"/fhir/R4/Appointment?{bad}", headers=h)
        assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome", bad


def test_appointment_paging(client, data, h, doc_a):
    url = f"/fhir/R4/Appointment?date=ge{data.a.day}&_count=2"
    seen, pages = [], 0
    while url:
        b = get(client, url, doc_a)
        seen += ids(b)
        pages += 1
        nxt = [link["url"] for link in b["link"] if link["relation"] == "next"]
        url = nxt[0][nxt[0].index("/fhir/R4/"):] if nxt else None
    assert pages >= 2 and len(seen) == len(set(seen))
    assert {data.appts["a1_ct"], data.appts["a1_clinic"], data.appts["b1_at_a"]} <= set(seen)


# --- Schedule and CapabilityStatement ------------------------------------------------------------

def test_schedule_by_actor_and_service_type(client, data, world, h):
    b = get(client, f"/fhir/R4/Schedule?actor=Practitioner/{data.practitioner}", h)
    assert ids(b) == [data.clinic]
    b = get(client, f"/fhir/R4/Schedule?actor=Organization/{world.org_a}&service-type=US_ABD,ES_GASTRO", h)
    assert set(ids(b)) == {data.a.us, data.a.es}
    assert ids(get(client, f"/fhir/R4/Schedule?actor=Organization/{world.org_b}&service-type=CLINIC_IM", h)) == []
    assert client.get("/fhir/R4/Schedule?actor=Patient/1", headers=h).status_code == 400


def test_capability_statement_declares_what_is_served(client, h):
    cap = get(client, "/fhir/R4/metadata", h)
    types = {r["type"]: {p["name"]: p["type"] for p in r.get("searchParam", [])} for r in cap["rest"][0]["resource"]}
    assert types["Appointment"].items() >= {"date": "date", "slot": "reference", "actor": "reference",
                                          "patient": "reference", "practitioner": "reference",
                                          "location": "reference", "service-type": "token",
                                          "status": "token"}.items()
    assert {"schedule", "service-type", "start", "status"} <= set(types["Slot"])
    assert types["Slot"]["start"] == "date"
    assert {"actor", "service-type"} <= set(types["Schedule"])


def test_find_takes_datetimes(client, data, world, h):
    day = data.a.day.isoformat()
    r = client.post("/fhir/R4/Appointment/$find", headers=h, json={"resourceType": "Parameters", "parameter": [
        {"name": "service-type", "valueString": "US_THY"},
        {"name": "start", "valueDateTime": f"{day}T13:30:00+08:00"},
        {"name": "end", "valueDateTime": f"{day}T14:00:00+08:00"},
        {"name": "organization", "valueReference": {"reference": f"Organization/{world.org_a}"}}]})
    assert r.status_code == 200, r.text
    starts = [e["resource"]["start"] for e in r.json()["entry"] if e["search"]["mode"] == "match"]
    assert starts == [f"{day}T13:30:00+08:00", f"{day}T13:45:00+08:00"]
    assert client.get(f"/fhir/R4/Appointment/$find?service-type=US_THY&start={day}T1", headers=h).status_code == 400
