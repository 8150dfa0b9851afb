"""Acceptance: 50 concurrent clients booking the last place of one slot — exactly one 201, 49 × 409
with an OperationOutcome, one appointment row — on SQLite and on PostgreSQL. Each client is its own
HTTP request through the real app (its own session and transaction); half use REST, half FHIR."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select

from onetrip.kit.clock import utcnow
from onetrip.kit.principal import cli_principal
from onetrip.scheduling import repository as repo
from onetrip.scheduling import service
from onetrip.scheduling.models import Appointment, Slot
from tests.scheduling.conftest import build_sched, patient, system_headers

CLIENTS = 50


def _widen_threadpool(tokens: int) -> None:
    import anyio.to_thread

    anyio.to_thread.current_default_thread_limiter().total_tokens = tokens


def test_fifty_clients_race_for_the_last_place(client, db, world):
    sc = build_sched(db, world.org_a, capacity=2, days=3)
    first = patient(db, world.org_a)
    with db.session() as s:
        slot_id = repo.slots(s, resource_ids=[sc.ct], start=utcnow(), only_free=True)[0].id
        service.book(s, cli_principal(), slot_id=slot_id, patient_record_id=first,
                     exam_code="CT_HEAD", channel="clinic")  # one of two places gone: one left
        s.commit()
    pids = [patient(db, world.org_a) for _ in range(CLIENTS)]
    headers = system_headers(client, world)
    # More worker threads than clients: a request holding the write lock (SQLite) or the slot's row lock
    # (PostgreSQL) must always find a thread for its next step, or it starves behind the waiters
    # (anyio's default is 40 — see the report to the lead about serving).
    client.portal.call(_widen_threadpool, CLIENTS * 2)
    barrier = threading.Barrier(CLIENTS)

    def attempt(i: int):
        barrier.wait()
        if i % 2:
            r = client.post("/fhir/R4/Appointment", headers={**headers, "Content-Type": "application/fhir+json"},
                            json={"resourceType": "Appointment", "status": "booked",
                                  "slot": [{"reference": f"Slot/{slot_id}"}],
                                  "serviceType": [{"coding": [{"system": "urn:onetrip:cs:exam", "code": "CT_HEAD"}]}],
                                  "participant": [{"actor": {"reference": f"Patient/{pids[i]}"}, "status": "accepted"}],
                                  "extension": [{"url": "urn:onetrip:sd:booking-channel", "valueCode": "app"}]})
        else:
            r = client.post("/api/scheduling/appointments", headers=headers, json={
                "slot_id": slot_id, "patient_record_id": pids[i], "exam_code": "CT_HEAD", "channel": "web"})
        return r.status_code, r.json()

    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(attempt, range(CLIENTS)))
    codes = sorted(c for c, _ in results)
    assert codes.count(201) == 1, codes
    assert codes.count(409) == CLIENTS - 1, codes
    for code, body in results:
        if code == 409:
            assert body["resourceType"] == "OperationOutcome" and body["issue"][0]["code"] == "conflict"
    with db.session() as s:
        slot = s.get(Slot, slot_id)
        assert slot.booked == slot.capacity == 2
        rows = s.scalar(select(func.count()).select_from(Appointment).where(Appointment.slot_id == slot_id))
        assert rows == 2  # the earlier booking + exactly one winner
