"""The receiver registry: admin API, FHIR R4 Subscription (validated with fhir.resources), the web page
with its filters and "redeliver" button, the CLI — and who may use them."""

from __future__ import annotations

import re

import pytest
from fhir.resources.R4B.subscription import Subscription as FhirSubscription
from sqlalchemy import select

from onetrip.audit.models import AuditEvent
from onetrip.kit.principal import cli_principal
from onetrip.notify import service
from onetrip.notify.dispatcher import Dispatcher
from onetrip.notify.models import Delivery
from onetrip.outbox.models import OutboxEvent
from tests.factories import PASSWORD, auth, token, totp_code
from tests.notify.conftest import FAST, emit, set_rules, subscribe, unsubscribe_all
from tests.notify.receiver import Receiver

FHIR = {"Content-Type": "application/fhir+json"}


@pytest.fixture(autouse=True)
def _clean(db):
    yield
    unsubscribe_all(db)


@pytest.fixture(scope="module")
def admin(client, world):
    return auth(token(client, world.users["admin"]))


def rest_hook(**over) -> dict:
    body = {"resourceType": "Subscription", "status": "requested", "reason": "HIS 转诊提醒",
            "criteria": "ServiceRequest?event=referral.*",
            "channel": {"type": "rest-hook", "endpoint": "https://his.example/hook", "payload": "application/json",
                        "header": ["Authorization: Bearer abc"]}}
    body.update(over)
    return body


# --- admin API ---------------------------------------------------------------------------------------

def test_webhook_crud_through_the_admin_api(client, admin, db):
    r = client.post("/api/notify/subscriptions", headers=admin, json={
        "name": "县医院 HIS", "endpoint": "https://his.example/onetrip", "event_types": ["referral.*", "appointment.booked"],
        "headers": ["Authorization: Bearer t0ken"]})
    assert r.status_code == 201, r.text
    sub = r.json()
    assert sub["secret"].startswith("whsec_") and sub["active"] and sub["kind"] == "webhook"
    assert sub["event_types"] == ["appointment.booked", "referral.*"]
    assert sub["headers"] == ["Authorization: ***"]  # header values are not shown back
    got = client.get(f"/api/notify/subscriptions/{sub['id']}", headers=admin).json()
    assert got["secret"] is None  # the secret is shown only once
    assert any(s["id"] == sub["id"] for s in client.get("/api/notify/subscriptions", headers=admin).json())

    r = client.patch(f"/api/notify/subscriptions/{sub['id']}", headers=admin, json={"active": False})
    assert r.status_code == 200 and r.json()["active"] is False and r.json()["secret"] is None
    r = client.patch(f"/api/notify/subscriptions/{sub['id']}", headers=admin, json={"rotate_secret": True})
    assert r.json()["secret"] not in (None, sub["secret"])
    assert client.delete(f"/api/notify/subscriptions/{sub['id']}", headers=admin).status_code == 204
    r = client.get(f"/api/notify/subscriptions/{sub['id']}", headers=admin)
    assert r.status_code == 410 and r.json()["resourceType"] == "OperationOutcome"
    with db.session() as s:  # every change audited and written to the outbox
        whats = s.scalars(select(AuditEvent.subtype).where(AuditEvent.entity_what == f"Subscription/{sub['id']}"))
        assert sorted(whats) == ["create", "delete", "update", "update"]
        events = s.scalars(select(OutboxEvent.event_type).where(OutboxEvent.aggregate_id == sub["id"]))
        assert sorted(events) == ["subscription.created", "subscription.deleted", "subscription.updated",
                                  "subscription.updated"]


@pytest.mark.parametrize("body, where", [
    ({"name": "x", "endpoint": "ftp://his.example/x", "event_types": ["*"]}, "endpoint"),
    ({"name": "x", "endpoint": "https://user:pw@his.example/x", "event_types": ["*"]}, "endpoint"),
    ({"name": "x", "endpoint": "https://his.example/x", "event_types": ["Referral.*"]}, "event_types"),
    ({"name": "x", "endpoint": "https://his.example/x", "event_types": ["*"], "headers": ["X-OneTrip-Event-Id: 1"]},
     "headers"),
    ({"name": "x", "endpoint": "https://his.example/x", "event_types": ["*"], "headers": ["no colon"]}, "headers"),
    ({"name": "x", "endpoint": "https://his.example/x", "event_types": []}, None),
    ({"name": "x", "endpoint": "https://his.example/x", "event_types": ["*"], "secret": "short"}, None),
])
def test_bad_registrations_are_4xx_outcomes(client, admin, body, where):
    r = client.post("/api/notify/subscriptions", headers=admin, json=body)
    assert 400 <= r.status_code < 500, r.text
    if where:
        assert r.json()["resourceType"] == "OperationOutcome"
        assert r.json()["issue"][0]["expression"] == [where]


def test_only_operators_manage_subscriptions(client, world, admin):
    clinician = auth(token(client, world.users["doc_a"]))
    assert client.get("/api/notify/subscriptions", headers=clinician).status_code == 403
    assert client.post("/api/notify/subscriptions", headers=clinician, json={
        "name": "x", "endpoint": "https://his.example/x", "event_types": ["*"]}).status_code == 403
    assert client.get("/fhir/R4/Subscription", headers=clinician).status_code == 403
    assert client.get("/api/notify/subscriptions").status_code == 401
    # A system client (system/*.cruds) may, e.g. a HIS registering its own receiver.
    r = client.post("/auth/token", data={"grant_type": "client_credentials", "client_id": world.client_id,
                                         "client_secret": world.client_secret})
    system = auth(r.json()["access_token"])
    assert client.get("/api/notify/subscriptions", headers=system).status_code == 200


# --- FHIR Subscription -------------------------------------------------------------------------------

def test_fhir_subscription_create_read_search_delete(client, admin):
    r = client.post("/fhir/R4/Subscription", headers={**admin, **FHIR}, json=rest_hook())
    assert r.status_code == 201, r.text
    created = r.json()
    FhirSubscription.model_validate(created)
    assert created["status"] == "active" and created["channel"]["type"] == "rest-hook"
    assert created["channel"]["header"] == ["Authorization: ***"]
    secret = [e["valueString"] for e in created["extension"] if e["url"] == "urn:onetrip:sd:notify-secret"]
    assert secret and secret[0].startswith("whsec_")
    assert r.headers["Location"].endswith(f"/Subscription/{created['id']}/_history/1")
    sid = created["id"]

    read = client.get(f"/fhir/R4/Subscription/{sid}", headers=admin)
    assert read.status_code == 200 and read.headers["ETag"] == 'W/"1"'
    body = read.json()
    FhirSubscription.model_validate(body)
    assert body["criteria"] == "ServiceRequest?event=referral.*"
    assert "urn:onetrip:sd:notify-secret" not in str(body)

    found = client.get("/fhir/R4/Subscription", params={"status": "active", "url": "https://his.example/hook"},
                       headers=admin).json()
    assert found["resourceType"] == "Bundle" and [e["resource"]["id"] for e in found["entry"]] == [sid]
    assert client.get("/fhir/R4/Subscription", params={"status": "off"}, headers=admin).json()["total"] == 0
    bad = client.get("/fhir/R4/Subscription", params={"name": "x"}, headers=admin)
    assert bad.status_code == 400 and bad.json()["resourceType"] == "OperationOutcome"

    assert client.delete(f"/fhir/R4/Subscription/{sid}", headers=admin).status_code == 204
    assert client.get(f"/fhir/R4/Subscription/{sid}", headers=admin).status_code == 410
    assert client.get("/fhir/R4/Subscription", headers=admin).json()["total"] == 0
    assert client.put(f"/fhir/R4/Subscription/{sid}", headers={**admin, **FHIR}, json=rest_hook()).status_code == 405


def test_fhir_criteria_choose_aggregate_and_event_types(client, admin, db):
    r = client.post("/fhir/R4/Subscription", headers={**admin, **FHIR},
                    json=rest_hook(criteria="Appointment", channel={"type": "rest-hook",
                                                                    "endpoint": "http://127.0.0.1:9/x"}))
    assert r.status_code == 201, r.text
    with db.session() as s:
        sub = service.get_subscription(s, r.json()["id"])
        assert (sub.aggregate_type, sub.event_types, sub.payload, sub.kind) == ("Appointment", ["*"], "empty", "fhir")


@pytest.mark.parametrize("change, status", [
    ({"criteria": "Appointment?status=booked"}, 400),  # we forward events, we do not re-run searches
    ({"criteria": "not a criteria"}, 400),
    ({"channel": {"type": "websocket"}}, 422),
    ({"channel": {"type": "rest-hook", "endpoint": "https://his.example/h", "payload": "application/fhir+json"}}, 422),
    ({"channel": {"type": "rest-hook"}}, 400),
    ({"status": "error"}, 400),
    ({"status": "bogus"}, 400),  # fhir.resources refuses it
    ({"resourceType": "Patient"}, 400),
    ({"end": "2026-13-45"}, 400),
])
def test_fhir_subscription_validation(client, admin, change, status):
    r = client.post("/fhir/R4/Subscription", headers={**admin, **FHIR}, json=rest_hook(**change))
    assert r.status_code == status, r.text
    assert r.json()["resourceType"] == "OperationOutcome"


def test_fhir_empty_payload_is_a_ping_with_the_event_id_in_the_headers(client, admin, db):
    set_rules(db, **FAST)
    receiver = Receiver().start()
    try:
        r = client.post("/fhir/R4/Subscription", headers={**admin, **FHIR}, json=rest_hook(
            criteria="Task?event=ping.*", channel={"type": "rest-hook", "endpoint": receiver.url}))
        receiver.secret = next(e["valueString"] for e in r.json()["extension"]
                               if e["url"] == "urn:onetrip:sd:notify-secret")
        [event_id] = emit(db, 1, "ping.me")
        d = Dispatcher(db.factory)
        d.run_once()
        d.close()
        assert receiver.processed == {event_id: {}}  # no body; signed all the same
        assert receiver.headers[event_id]["X-OneTrip-Event-Type"] == "ping.me"
        assert receiver.bad_signatures == 0
    finally:
        receiver.stop()


# --- web page ----------------------------------------------------------------------------------------

def signed_in(app, username: str, lang: str | None = None):
    from fastapi.testclient import TestClient

    c = TestClient(app, follow_redirects=False)
    if lang:
        c.cookies.set("lang", lang)
    r = c.post("/ui/login", data={"username": username, "password": PASSWORD, "next": "/ui/",
                                  "totp": totp_code(username)})
    assert r.status_code == 303, r.text
    return c


def test_admin_page_lists_filters_and_redelivers(app, db, world):
    set_rules(db, **{**FAST, "max_attempts": 1})
    receiver = Receiver().start()
    receiver.status = 503
    try:
        sub_id, receiver.secret = subscribe(db, receiver.url, events=["web.*"], name="门诊系统接收")
        [dead_event] = emit(db, 1, "web.dead")
        d = Dispatcher(db.factory)
        d.run_once()
        with db.session() as s:
            dead = s.scalar(select(Delivery).where(Delivery.event_id == dead_event))
        assert dead.status == "dead"

        web = signed_in(app, world.users["admin"])
        page = web.get("/ui/notify")
        assert page.status_code == 200
        assert "通知" in page.text and "门诊系统接收" in page.text and "投递记录" in page.text
        assert dead_event in page.text and "重发" in page.text
        filtered = web.get("/ui/notify", params={"status": "delivered", "subscription": sub_id})
        assert dead_event not in filtered.text
        assert dead_event in web.get("/ui/notify", params={"event_type": "web.*", "status": "dead"}).text
        assert web.get("/ui/notify", params={"status": "nonsense"}).status_code == 400
        english = web.get("/ui/notify?lang=en")
        assert "Delivery log" in english.text and "Redeliver" in english.text
        detail = web.get(f"/ui/notify/deliveries/{dead.id}")
        assert detail.status_code == 200 and "HTTP 503" in detail.text

        receiver.status = 200
        r = web.post(f"/ui/notify/deliveries/{dead.id}/redeliver", data={"back": "status=dead"})
        assert r.status_code == 303 and r.headers["location"] == "/ui/notify?status=dead"
        d.run_once()
        d.close()
        assert dead_event in receiver.processed
        with db.session() as s:
            assert s.get(Delivery, dead.id).status == "delivered"

        r = web.post("/ui/notify/subscriptions", data={"name": "网页登记", "endpoint": "https://his.example/w",
                                                       "event_types": "referral.*，appointment.booked"})
        assert r.status_code == 303
        shown = web.get(r.headers["location"])
        secret = re.search(r"whsec_[A-Za-z0-9_-]+", shown.text)
        assert secret and "网页登记" in shown.text
        assert "whsec_" not in web.get("/ui/notify").text  # shown once only
        r = web.post(f"/ui/notify/subscriptions/{sub_id}/active", data={"active": "off"})
        assert r.status_code == 303
        with db.session() as s:
            assert service.get_subscription(s, sub_id).active is False

        clinician = signed_in(app, world.users["doc_a"])
        assert clinician.get("/ui/notify").status_code == 403
        assert clinician.post(f"/ui/notify/deliveries/{dead.id}/redeliver").status_code == 403
    finally:
        receiver.stop()


# --- CLI ---------------------------------------------------------------------------------------------

def test_cli_add_list_deliveries_redeliver_and_run_once(cli_env, db):
    from onetrip.cli.main import app as cli

    set_rules(db, **{**FAST, "max_attempts": 1})
    receiver = Receiver().start()
    receiver.status = 500
    try:
        r = cli_env.invoke(cli, ["notify", "add", "--url", receiver.url, "--name", "CLI 接收", "--events", "cli.*"])
        assert r.exit_code == 0, r.output
        receiver.secret = re.search(r"whsec_\S+", r.output).group(0)
        [event_id] = emit(db, 1, "cli.x")
        r = cli_env.invoke(cli, ["notify", "run", "--once"])
        assert r.exit_code == 0 and "failed 1" in r.output, r.output
        r = cli_env.invoke(cli, ["notify", "deliveries", "--status", "dead"])
        assert event_id in r.output
        assert "CLI 接收" in cli_env.invoke(cli, ["notify", "list"]).output
        receiver.status = 200
        r = cli_env.invoke(cli, ["notify", "redeliver", "--all-dead"])
        assert r.exit_code == 0 and "1" in r.output
        r = cli_env.invoke(cli, ["notify", "run", "--once"])
        assert "delivered 1" in r.output, r.output
        assert event_id in receiver.processed and receiver.bad_signatures == 0
        r = cli_env.invoke(cli, ["notify", "add", "--url", "ftp://x", "--name", "bad"])
        assert r.exit_code == 2 and "http(s)" in r.output
        r = cli_env.invoke(cli, ["notify", "redeliver"])
        assert r.exit_code == 2
        r = cli_env.invoke(cli, ["notify", "deliveries", "--status", "bogus"])
        assert r.exit_code == 2
        assert "--notify" in cli_env.invoke(cli, ["serve", "--help"]).output  # dispatcher inside `serve`
    finally:
        receiver.stop()


def test_service_refuses_non_operators(db, world):
    from dataclasses import replace

    from onetrip.kit.errors import Forbidden

    clinician = replace(cli_principal(), kind="user", roles=frozenset({"clinician"}), scopes=())
    with db.session() as s, pytest.raises(Forbidden):
        service.create_subscription(s, clinician, service.SubscriptionInput(
            name="x", endpoint="https://his.example/x", event_types=["*"]))


def test_prune_keeps_dead_letters_and_pending(cli_env, db):
    import datetime as dt

    from onetrip.cli.main import app as cli
    from onetrip.notify.models import Attempt

    set_rules(db, **{**FAST, "max_attempts": 1})
    receiver = Receiver().start()
    try:
        sub_id, receiver.secret = subscribe(db, receiver.url, events=["prune.*"])
        emit(db, 2, "prune.ok")
        d = Dispatcher(db.factory)
        d.run_once()
        receiver.status = 500
        emit(db, 1, "prune.dead")
        d.run_once()
        d.close()
        with db.session() as s:
            rows = list(s.scalars(select(Delivery).where(Delivery.subscription_id == sub_id)))
            assert sorted(r.status for r in rows) == ["dead", "delivered", "delivered"]
            for r in rows:
                r.updated_at = r.updated_at - dt.timedelta(days=100)
            s.commit()
        r = cli_env.invoke(cli, ["notify", "prune", "--older-than-days", "90"])
        assert r.exit_code == 0 and "2 deliveries, 2 attempts" in r.output, r.output
        with db.session() as s:
            left = list(s.scalars(select(Delivery).where(Delivery.subscription_id == sub_id)))
            assert [x.status for x in left] == ["dead"]
            assert s.scalar(select(Attempt.ok).where(Attempt.delivery_id == left[0].id)) is False
    finally:
        receiver.stop()
