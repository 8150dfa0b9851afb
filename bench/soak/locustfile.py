"""Mixed staff traffic for the soak test (bench/bench_soak.py writes the fixture and runs this headless).

Each simulated user is a clinician of one institution (a bearer token of a real password sign-in) working
on that institution's own patients, as at a clinic desk: FHIR Patient read and searches, Observation
search, the results timeline, the recognition check before ordering an exam, and a booking followed by its
cancellation (so the slot pool never runs dry and every booking is a real write with its audit rows).
Weights: reads 80 %, check 10 %, book + cancel 10 % of task picks.

Any answer other than the expected status counts as a failure in locust's statistics; the driver
requires 0 failures.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import threading

from locust import FastHttpUser, between, events, task

FIXTURE: dict = {}
_slot_lock = threading.Lock()
_slot_cycle: dict[str, itertools.cycle] = {}


@events.init.add_listener
def _load_fixture(environment, **_kwargs):
    with open(os.environ["ONETRIP_SOAK_FIXTURE"], encoding="utf-8") as f:
        FIXTURE.update(json.load(f))
    for org, slots in FIXTURE["slots"].items():
        _slot_cycle[org] = itertools.cycle(slots)


class Clinician(FastHttpUser):
    wait_time = between(float(os.environ.get("ONETRIP_SOAK_WAIT_MIN", "0.05")),
                        float(os.environ.get("ONETRIP_SOAK_WAIT_MAX", "0.25")))

    def on_start(self):
        desk = random.choice(FIXTURE["desks"])
        self.org = desk["org"]
        self.headers = {"Authorization": f"Bearer {desk['token']}", "Accept": "application/fhir+json"}
        self.patients = FIXTURE["patients"][self.org]

    def _patient(self) -> dict:
        return random.choice(self.patients)

    @task(25)
    def read_patient(self):
        p = self._patient()
        self.client.get(f"/fhir/R4/Patient/{p['record']}", headers=self.headers, name="/fhir/R4/Patient/[id]")

    @task(10)
    def search_identifier(self):
        p = self._patient()
        self.client.get(f"/fhir/R4/Patient?identifier={p['identifier']}", headers=self.headers,
                        name="/fhir/R4/Patient?identifier=")

    @task(10)
    def search_name(self):
        p = self._patient()
        self.client.get(f"/fhir/R4/Patient?name={p['name']}&_count=20", headers=self.headers,
                        name="/fhir/R4/Patient?name=")

    @task(15)
    def observations(self):
        p = self._patient()
        self.client.get(f"/fhir/R4/Observation?patient={p['record']}&_count=20", headers=self.headers,
                        name="/fhir/R4/Observation?patient=")

    @task(20)
    def timeline(self):
        p = self._patient()
        self.client.get(f"/api/persons/{p['person']}/timeline", headers=self.headers,
                        name="/api/persons/[id]/timeline")

    @task(10)
    def order_check(self):
        p = self._patient()
        self.client.post("/api/recognition/check", headers=self.headers, name="/api/recognition/check",
                         json={"person_id": p["person"], "item_code": random.choice(FIXTURE["items"]),
                               "ordering_org_id": self.org})

    @task(10)
    def book_and_cancel(self):
        with _slot_lock:
            slot = next(_slot_cycle[self.org])
        p = self._patient()
        with self.client.post("/api/scheduling/appointments", headers=self.headers, catch_response=True,
                              name="/api/scheduling/appointments (book)",
                              json={"slot_id": slot["slot"], "patient_record_id": p["record"],
                                    "exam_code": slot["exam"], "channel": "clinic"}) as r:
            if r.status_code == 409:  # the slot is full (another user holds its last place): a valid answer
                r.success()
                return
            if r.status_code != 201:
                r.failure(f"{r.status_code}: {r.text[:200]}")
                return
            appointment = r.json()["id"]
        self.client.post(f"/api/scheduling/appointments/{appointment}/cancel", headers=self.headers,
                         json={"reason": "soak"}, name="/api/scheduling/appointments/[id]/cancel")
