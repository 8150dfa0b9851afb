"""REST API, FHIR (ServiceRequest category referral + Task) and the web pages, through the real app."""

from __future__ import annotations

import datetime as dt

import pytest

from onetrip.referral.package import CRITERIA_SYSTEM, DIRECTION_EXT, REFERRAL_CATEGORY
from tests.factories import auth, token
from tests.referral.conftest import branch_patient
from tests.scheduling.conftest import build_sched


@pytest.fixture(scope="module")
def h(client, world):
    return {"a": auth(token(client, world.users["doc_a"])), "b": auth(token(client, world.users["doc_b"])),
            "mgr": auth(token(client, world.users["mgr"])), "admin": auth(token(client, world.users["admin"]))}


@pytest.fixture(scope="module")
def sched(db, world):
    return build_sched(db, world.org_a, capacity=2, share=0.5, days=7)


def _send(client, h, db, world, **extra) -> dict:
    _, rec = branch_patient(db, world)
    body = {"patient_record_id": rec, "direction": "up", "reason": "反复胸痛待查", "criteria_codes": ["U5"],
            "diagnoses": [{"code": "R07.400"}], "medications": [{"name": "硝酸甘油片", "dose": "0.5 mg prn"}],
            "submit": True} | extra
    r = client.post("/api/referrals", json=body, headers=h["b"])
    assert r.status_code == 201, r.text
    return r.json()


def test_send_with_reserved_slot_accept_and_read_the_package(client, db, world, h, sched):
    slots = client.get(f"/api/scheduling/slots?exam=US_ABD&organization={world.org_a}&purpose=primary_care",
                       headers=h["b"])
    assert slots.status_code == 200, slots.text
    slot = next(s for s in slots.json() if s["reserved"] > 0)
    extra = {"slot_id": slot["id"], "exam_code": "US_ABD"}
    out = _send(client, h, db, world, **extra)
    assert out["status"] == "submitted" and out["sla"] == "ok" and out["ui_url"] == f"/ui/referrals/{out['id']}"
    assert out["reserved_slot"] is True
    wl = client.get("/api/referrals?box=incoming", headers=h["a"]).json()
    row = next(i for i in wl["items"] if i["id"] == out["id"])
    assert "*" in row["id_number_masked"] and row["minutes_left"] > 47 * 60
    assert client.get("/api/referrals/badges", headers=h["a"]).json()["new"] >= 1
    acc = client.post(f"/api/referrals/{out['id']}/accept", json={"note": "已接收"}, headers=h["a"])
    assert acc.status_code == 200, acc.text
    assert acc.json()["status"] == "scheduled"
    b = client.get(f"/api/referrals/{out['id']}/package", headers=h["a"]).json()
    assert b["resourceType"] == "Bundle" and b["type"] == "collection"
    assert {"Patient", "ServiceRequest", "Task", "Condition", "MedicationStatement"} <= {
        e["resource"]["resourceType"] for e in b["entry"]}


def test_errors_are_operation_outcomes(client, db, world, h):
    out = _send(client, h, db, world)
    r = client.post(f"/api/referrals/{out['id']}/complete", headers=h["a"])
    assert r.status_code == 409 and r.json()["resourceType"] == "OperationOutcome"
    r = client.post(f"/api/referrals/{out['id']}/reject", json={"reason": ""}, headers=h["a"])
    assert r.status_code == 400
    r = client.post(f"/api/referrals/{out['id']}/accept", headers=h["b"])
    assert r.status_code == 403
    r = client.post("/api/referrals", json={"direction": "sideways"}, headers=h["b"])
    assert r.status_code in (400, 422)
    r = client.get("/api/referrals/nope", headers=h["a"])
    assert r.status_code == 404
    r = client.post(f"/api/referrals/{out['id']}/fly", headers=h["a"])
    assert r.status_code == 404
    assert client.get("/api/referrals?box=sideways", headers=h["a"]).status_code == 400


def test_fhir_service_request_and_task(client, db, world, h):
    _, rec = branch_patient(db, world)
    sr = {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
          "category": [{"coding": [REFERRAL_CATEGORY]}], "subject": {"reference": f"Patient/{rec}"},
          "extension": [{"url": DIRECTION_EXT, "valueCode": "up"}],
          "performer": [{"reference": f"Organization/{world.org_a}"}], "priority": "urgent",
          "reasonCode": [{"coding": [{"system": CRITERIA_SYSTEM, "code": "U1"}]}, {"text": "急性胸痛"}]}
    r = client.post("/fhir/R4/ServiceRequest", json=sr, headers=h["b"])
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    assert r.json()["status"] == "active" and r.json()["priority"] == "urgent"
    found = client.get("/fhir/R4/ServiceRequest?category=referral&status=active", headers=h["a"]).json()
    assert rid in [e["resource"]["id"] for e in found.get("entry", [])]
    task = client.get(f"/fhir/R4/Task/{rid}", headers=h["a"]).json()
    assert task["status"] == "requested" and task["owner"]["reference"] == f"Organization/{world.org_a}"
    assert "restriction" in task
    tasks = client.get(f"/fhir/R4/Task?owner=Organization/{world.org_a}&status=requested", headers=h["a"]).json()
    assert rid in [e["resource"]["id"] for e in tasks.get("entry", [])]
    task["status"] = "rejected"
    r = client.put(f"/fhir/R4/Task/{rid}", json=task, headers=h["a"])
    assert r.status_code == 400  # a rejection needs statusReason
    task["statusReason"] = {"text": "专科床位已满"}
    r = client.put(f"/fhir/R4/Task/{rid}", json=task, headers=h["a"])
    assert r.status_code == 200 and r.json()["status"] == "rejected"
    task["status"] = "accepted"
    task.pop("statusReason")
    assert client.put(f"/fhir/R4/Task/{rid}", json=task, headers=h["a"]).status_code == 409
    # A ServiceRequest without the referral category is still an exam order of the shared-results store.
    other = client.get("/fhir/R4/ServiceRequest", headers=h["a"])
    assert other.status_code == 200 and other.json()["resourceType"] == "Bundle"
    # Draft + Task POST = send.
    sr["status"] = "draft"
    d = client.post("/fhir/R4/ServiceRequest", json=sr, headers=h["b"]).json()
    t = {"resourceType": "Task", "status": "requested", "intent": "order",
         "focus": {"reference": f"ServiceRequest/{d['id']}"}}
    r = client.post("/fhir/R4/Task", json=t, headers=h["b"])
    assert r.status_code == 201 and r.json()["status"] == "requested"
    bad = dict(sr, extension=[])
    assert client.post("/fhir/R4/ServiceRequest", json=bad, headers=h["b"]).status_code == 400


def test_figures_by_api(client, db, world, h):
    out = _send(client, h, db, world)
    client.post(f"/api/referrals/{out['id']}/accept", headers=h["a"])
    today = dt.date.today()
    f = client.get(f"/api/referrals/figures?start={today - dt.timedelta(days=1)}&end={today + dt.timedelta(days=1)}",
                   headers=h["mgr"])
    assert f.status_code == 200, f.text
    body = f.json()
    assert body["counts"]["up"]["current"] >= 1 and body["counts"]["up"]["previous"] == 0
    assert body["counts"]["up"]["change"] is None  # no base last year
    assert body["hours_to_acceptance"]["n"] >= 1 and 0 < body["acceptance_rate"] <= 1
    assert client.get("/api/referrals/figures?start=2026-02-01&end=2026-01-01", headers=h["mgr"]).status_code == 400
    assert client.get(f"/api/referrals/figures?start=2026-01-01&end=2026-01-02&organization={world.org_a}",
                      headers=h["b"]).status_code == 403


def test_web_pages(client, db, world, h):
    out = _send(client, h, db, world)
    for url, who in (("/ui/referrals", "a"), ("/ui/referrals?box=outgoing", "b"), ("/ui/referrals?box=followups", "b"),
                     (f"/ui/referrals/{out['id']}", "a"), (f"/ui/referrals/{out['id']}/letter", "b"),
                     (f"/ui/referrals/persons/{out['person_id']}", "b"), ("/ui/referrals/new?direction=up", "b"),
                     (f"/ui/referrals/new?record_id={out['patient_record_id']}&direction=up", "b"),
                     ("/ui/referrals/badge", "a"), ("/ui/referrals?status=submitted&overdue=1&urgent=1", "a")):
        r = client.get(url, headers=h[who])
        assert r.status_code == 200, (url, r.text[:500])
    none = client.get("/ui/referrals?department=nope&lang=en", headers=h["a"]).text
    assert "No referrals match." in none
    letter = client.get(f"/ui/referrals/{out['id']}/letter", headers=h["b"]).text
    assert "双向转诊" in letter and "****" in letter  # identifiers masked on paper
    page = client.get(f"/ui/referrals/{out['id']}?lang=en", headers=h["a"]).text
    assert "Accept" in page and "Reject" in page
    r = client.post(f"/ui/referrals/{out['id']}/accept", data={"note": ""}, headers=h["a"], follow_redirects=False)
    assert r.status_code == 303
    assert "Patient arrived" in client.get(f"/ui/referrals/{out['id']}?lang=en", headers=h["a"]).text


def test_edit_a_draft_then_send_it(client, db, world, h):
    _, rec = branch_patient(db, world)
    d = client.post("/api/referrals", json={"patient_record_id": rec, "direction": "up"}, headers=h["b"]).json()
    assert d["status"] == "draft" and d["allowed_actions"] == ["submit", "cancel"]
    assert client.post(f"/api/referrals/{d['id']}/submit", headers=h["b"]).status_code == 422  # incomplete
    assert client.get(f"/api/referrals/{d['id']}", headers=h["a"]).status_code == 404  # a draft is the sender's
    r = client.patch(f"/api/referrals/{d['id']}", json={"reason": "发热待查", "criteria_codes": ["U2"],
                                                        "diagnoses": [{"code": "R50.900"}]}, headers=h["b"])
    assert r.status_code == 200 and r.json()["diagnoses"][0]["display"] == "发热"
    assert client.patch(f"/api/referrals/{d['id']}", json={"criteria_codes": ["D1"]}, headers=h["b"]).status_code == 400
    assert client.post(f"/api/referrals/{d['id']}/submit", headers=h["b"]).json()["status"] == "submitted"
    assert client.patch(f"/api/referrals/{d['id']}", json={"reason": "x"}, headers=h["b"]).status_code == 409
    hist = client.get(f"/api/referrals/persons/{d['person_id']}", headers=h["b"]).json()
    assert [x["id"] for x in hist] == [d["id"]]
    assert client.get(f"/api/referrals/persons/{d['person_id']}", headers=h["mgr"]).status_code == 403
