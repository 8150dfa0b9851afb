"""Delivery against a real HTTP receiver (tests/notify/receiver.py): outages, dead letters, redelivery,
two dispatchers at once, signatures, privacy, late-committing outbox rows."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
from sqlalchemy import func, select

from onetrip.kit.clock import utcnow
from onetrip.kit.principal import cli_principal
from onetrip.notify import dispatcher as D
from onetrip.notify import service
from onetrip.notify.models import Attempt, Delivery, Feed
from onetrip.outbox.service import record_event
from tests.factories import auth, register_patient, token
from tests.notify.conftest import FAST, deliveries, emit, set_rules, subscribe, unsubscribe_all
from tests.notify.receiver import Receiver, free_port, wait_for


@pytest.fixture(autouse=True)
def _fast_rules_and_clean(db):
    set_rules(db, **FAST)
    yield
    unsubscribe_all(db)


def attempts_by_delivery(db, sub_id: str) -> dict[str, list[Attempt]]:
    with db.session() as s:
        rows = s.execute(select(Attempt, Delivery.event_id).join(Delivery, Delivery.id == Attempt.delivery_id)
                         .where(Delivery.subscription_id == sub_id).order_by(Attempt.started_at)).all()
    out: dict[str, list[Attempt]] = {}
    for a, event_id in rows:
        out.setdefault(event_id, []).append(a)
    return out


def test_receiver_down_for_a_while_then_every_event_arrives_once(db, running):
    """Acceptance 3a: events keep coming while the receiver is down; once it is back every event is
    delivered, none twice (distinct == total at the receiver), and the log shows the failed attempts."""
    port = free_port()
    receiver = Receiver(port)
    sub_id, secret = subscribe(db, receiver.url, events=["outage.*"])
    receiver.secret = secret
    with running(concurrency=4):
        sent = emit(db, 10, "outage.tick")
        assert wait_for(lambda: sum(len(v) for v in attempts_by_delivery(db, sub_id).values()) >= 20, 30), \
            "the dispatcher should be retrying while the receiver is down"
        sent += emit(db, 10, "outage.tick")  # more events while it is still down
        time.sleep(0.5)
        receiver.start()
        try:
            assert wait_for(lambda: set(receiver.processed) == set(sent), 60), \
                f"missing: {set(sent) - set(receiver.processed)}"
            assert wait_for(lambda: all(d.status == "delivered" for d in deliveries(db, sub_id)), 30)
        finally:
            receiver.stop()
    assert len(receiver.hits) == len(set(receiver.hits)) == 20, Counter(receiver.hits).most_common(3)
    assert receiver.bad_signatures == 0
    log = attempts_by_delivery(db, sub_id)
    assert set(log) == set(sent)
    for event_id, tries in log.items():
        assert [a.ok for a in tries].count(True) == 1, event_id  # exactly one successful attempt each
        assert tries[-1].ok and tries[-1].status_code == 200
    failed = [a for tries in log.values() for a in tries if not a.ok]
    assert failed and all(a.status_code is None and "unreachable" in a.error for a in failed)
    assert any(len(tries) > 1 for tries in log.values())


def test_dead_letter_after_max_attempts_then_redelivered_through_the_api(db, client, world, running):
    """Acceptance 3e: a receiver answering 500 → dead after max_attempts (visible in the log); the
    administrator redelivers it once the receiver is fixed."""
    set_rules(db, max_attempts=3)
    receiver = Receiver().start()
    receiver.status = 500
    try:
        sub_id, receiver.secret = subscribe(db, receiver.url, events=["dead.*"])
        [event_id] = emit(db, 1, "dead.letter")
        with running():
            assert wait_for(lambda: [d.status for d in deliveries(db, sub_id)] == ["dead"], 30)
            [d] = deliveries(db, sub_id)
            assert d.attempts == 3 and d.last_status_code == 500 and d.last_error == "HTTP 500"
            assert receiver.hits == [event_id] * 3 and not receiver.processed
            time.sleep(0.5)
            assert len(receiver.hits) == 3, "a dead letter must not be retried on its own"

            h = auth(token(client, world.users["admin"]))
            page = client.get("/api/notify/deliveries", params={"status": "dead", "subscription_id": sub_id},
                              headers=h).json()
            assert page["total"] == 1 and page["items"][0]["event_id"] == event_id
            detail = client.get(f"/api/notify/deliveries/{d.id}", headers=h).json()
            assert [(a["attempt_no"], a["status_code"], a["ok"]) for a in detail["log"]] == \
                [(1, 500, False), (2, 500, False), (3, 500, False)]

            receiver.status = 200
            r = client.post(f"/api/notify/deliveries/{d.id}/redeliver", headers=h)
            assert r.status_code == 200 and r.json()["status"] == "pending"
            assert wait_for(lambda: [x.status for x in deliveries(db, sub_id)] == ["delivered"], 30)
        assert list(receiver.processed) == [event_id]
        detail = client.get(f"/api/notify/deliveries/{d.id}", headers=h).json()
        assert [a["ok"] for a in detail["log"]] == [False, False, False, True]
        clinician = auth(token(client, world.users["doc_a"]))
        assert client.post(f"/api/notify/deliveries/{d.id}/redeliver", headers=clinician).status_code == 403
    finally:
        receiver.stop()


def test_retry_after_and_4xx_are_retried_not_dropped(db, running):
    receiver = Receiver().start()
    receiver.status = 429
    try:
        sub_id, receiver.secret = subscribe(db, receiver.url, events=["busy.*"])
        [event_id] = emit(db, 1, "busy.x")
        with running():
            assert wait_for(lambda: len(receiver.hits) >= 2, 20)
            receiver.status = 204
            assert wait_for(lambda: [d.status for d in deliveries(db, sub_id)] == ["delivered"], 20)
        assert event_id in receiver.processed
    finally:
        receiver.stop()


def test_two_dispatchers_never_send_the_same_event_at_once(db, running):
    """N4: two dispatchers share the work; no event reaches the receiver twice, let alone concurrently."""
    receiver = Receiver().start()
    receiver.delay = 0.02
    try:
        sub_id, receiver.secret = subscribe(db, receiver.url, events=["pair.*"])
        sent = emit(db, 60, "pair.x")
        with running(concurrency=4, worker="first"), running(concurrency=4, worker="second"):
            assert wait_for(lambda: set(receiver.processed) == set(sent), 60)
        assert receiver.overlaps == []
        assert len(receiver.hits) == len(set(receiver.hits)) == 60
        workers = Counter(a.worker for tries in attempts_by_delivery(db, sub_id).values() for a in tries)
        assert set(workers) <= {"first", "second"} and sum(workers.values()) == 60
    finally:
        receiver.stop()


def test_each_event_fanned_out_once_to_each_matching_receiver(db):
    a = Receiver().start()
    b = Receiver().start()
    try:
        sub_a, a.secret = subscribe(db, a.url, events=["fan.one"])
        sub_b, b.secret = subscribe(db, b.url, events=["fan.*"])
        emit(db, 2, "fan.one")
        emit(db, 1, "fan.two")
        emit(db, 1, "other.thing")
        d1, d2 = D.Dispatcher(db.factory, worker="w1"), D.Dispatcher(db.factory, worker="w2")
        rules = d1.rules()
        errors = []

        def pass_(d):
            try:
                d.fan_out_all(rules)
            except Exception as e:  # noqa: BLE001
                errors.append(e)

        threads = [threading.Thread(target=pass_, args=(d,)) for d in (d1, d2, d1, d2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert sorted(d.event_type for d in deliveries(db, sub_a)) == ["fan.one", "fan.one"]
        assert sorted(d.event_type for d in deliveries(db, sub_b)) == ["fan.one", "fan.one", "fan.two"]
        d1.run_once()
        d1.close()
        d2.close()
        assert len(a.processed) == 2 and len(b.processed) == 3
    finally:
        a.stop()
        b.stop()


def test_signed_body_headers_and_privacy(db, world, running):
    """Acceptance 3d end to end: the receiver checks X-OneTrip-Signature with its own HMAC code; the body
    carries the event id, type, time, aggregate and a payload without patient identifiers."""
    receiver = Receiver().start()
    try:
        sub_id, receiver.secret = subscribe(db, receiver.url, events=["patient.created", "privacy.*"])
        record_id = register_patient(db, world.org_a, name="王小明", id_number="110101199003071233",
                                     phone="13812345678")
        with db.session() as s:
            ev = record_event(s, "privacy.check", "Task", "t1", {"person_id": "p-secret", "phone": "13812345678",
                                                                  "note": "身份证110101199003071234", "ok": True},
                              person_id="p-secret")
            s.commit()
        with running():
            assert wait_for(lambda: len(receiver.processed) == 2, 30)
        assert receiver.bad_signatures == 0
        created = next(b for b in receiver.processed.values() if b["type"] == "patient.created")
        assert created["aggregate"] == {"type": "Patient", "id": record_id}
        assert created["data"]["organization_id"] == world.org_a
        assert set(created) == {"id", "type", "time", "sequence", "aggregate", "data", "subscription"}
        body = receiver.processed[ev.event_id]
        assert body["data"] == {"note": "身份证110***********1234", "ok": True}
        assert body["subscription"] == sub_id and body["time"].endswith("Z")
        import json
        text = json.dumps(list(receiver.processed.values()), ensure_ascii=False)
        for leaked in ("王小明", "110101199003071233", "110101199003071234", "13812345678", "p-secret"):
            assert leaked not in text
        h = receiver.headers[ev.event_id]
        assert h["X-OneTrip-Event-Id"] == ev.event_id and h["X-OneTrip-Event-Type"] == "privacy.check"
        assert h["X-OneTrip-Delivery-Attempt"] == "1"
        # Tampering is detected by the receiver: a wrong secret makes it refuse (401) and we retry.
        receiver.secret = "whsec_not-the-right-one-123"
        emit(db, 1, "privacy.again")
        with running():
            assert wait_for(lambda: receiver.bad_signatures >= 1, 20)
    finally:
        receiver.stop()


def test_new_subscription_gets_only_events_after_it_and_inactive_gets_none(db, running):
    receiver = Receiver().start()
    try:
        before = emit(db, 2, "late.x")
        sub_id, receiver.secret = subscribe(db, receiver.url, events=["late.*"])
        after = emit(db, 1, "late.x")
        with running():
            assert wait_for(lambda: set(receiver.processed) == set(after), 20)
            with db.session() as s:
                service.update_subscription(s, cli_principal(), sub_id, active=False)
                s.commit()
            off = emit(db, 1, "late.x")
            time.sleep(0.6)
        assert not set(before) & set(receiver.hits) and not set(off) & set(receiver.hits)
        assert [d.event_id for d in deliveries(db, sub_id)] == after
    finally:
        receiver.stop()


def test_graceful_stop_gives_back_unsent_leases(db):
    receiver = Receiver().start()
    try:
        sub_id, receiver.secret = subscribe(db, receiver.url, events=["stop.*"])
        emit(db, 5, "stop.x")
        d = D.Dispatcher(db.factory, worker="stopper")
        stop = threading.Event()
        stop.set()  # asked to stop before sending: every claimed delivery is released, none sent
        d.run_once(stop)
        d.close()
        rows = deliveries(db, sub_id)
        assert len(rows) == 5 and all(r.status == "pending" and r.locked_by is None for r in rows)
        assert receiver.hits == []
    finally:
        receiver.stop()


def test_outbox_row_committed_late_is_not_skipped(db):
    """N5: on PostgreSQL a lower outbox id can commit after a higher one was read; the fan-out keeps the
    gap open and picks the late row up. (SQLite serialises writers, so the situation cannot arise.)"""
    if db.kind != "postgresql":
        pytest.skip("SQLite hands out ids under its single writer lock: no out-of-order commits")
    receiver = Receiver()
    sub_id, _ = subscribe(db, receiver.url, events=["gap.*"])
    slow = db.session()
    early = record_event(slow, "gap.early", "Task", "t", {})
    slow.flush()  # id taken, not committed
    [late_id] = emit(db, 1, "gap.later")  # a higher id, committed first
    d = D.Dispatcher(db.factory)
    rules = d.rules()
    d.fan_out_all(rules)
    assert [x.event_type for x in deliveries(db, sub_id)] == ["gap.later"]
    with db.session() as s:
        assert str(early.id) in s.get(Feed, 1).gaps
    slow.commit()
    slow.close()
    d.fan_out_all(rules)
    assert sorted(x.event_type for x in deliveries(db, sub_id)) == ["gap.early", "gap.later"]
    with db.session() as s:
        assert str(early.id) not in s.get(Feed, 1).gaps
        assert s.scalar(select(func.count()).select_from(Delivery).where(Delivery.subscription_id == sub_id)) == 2
    d.close()


def test_gap_given_up_after_grace(db):
    """On SQLite (no way to see open transactions) a gap is awaited gap_grace_seconds; on PostgreSQL it is
    settled as soon as no transaction that was open when it was noticed is still open."""
    from onetrip.notify.dispatcher import fan_out
    from onetrip.notify.rules import NotifyRules

    recent = utcnow().isoformat()
    with db.session() as s:
        feed = s.get(Feed, 1, with_for_update=True)
        feed.gaps = {"999999998": "2020-01-01T00:00:00+00:00", "999999999": recent}
        s.commit()
    with db.session() as s:
        fan_out(s, NotifyRules(gap_grace_seconds=600))
        s.commit()
    with db.session() as s:
        gaps = s.get(Feed, 1).gaps
    assert "999999998" not in gaps
    if db.kind == "sqlite":
        assert "999999999" in gaps  # still within the grace period
    else:
        assert "999999999" not in gaps  # nothing open that began before it was noticed: rolled back


def test_gap_kept_while_an_older_transaction_is_open(db):
    """N5 on PostgreSQL: a transaction that has run longer than the grace period can still commit its
    outbox row; it is delivered when it does."""
    if db.kind != "postgresql":
        pytest.skip("SQLite serialises writers: no gaps while a transaction is open")
    from onetrip.notify.rules import NotifyRules

    receiver = Receiver()
    sub_id, _ = subscribe(db, receiver.url, events=["long.*"])
    slow = db.session()
    early = record_event(slow, "long.job", "Task", "t", {})
    slow.flush()
    emit(db, 1, "long.after")
    rules = NotifyRules(gap_grace_seconds=0.01)
    d = D.Dispatcher(db.factory)
    d.fan_out_all(rules)
    time.sleep(0.1)
    d.fan_out_all(rules)  # older than the grace period, but its transaction is still open: kept
    with db.session() as s:
        assert str(early.id) in s.get(Feed, 1).gaps
    slow.commit()
    slow.close()
    d.fan_out_all(rules)
    d.close()
    assert sorted(x.event_type for x in deliveries(db, sub_id)) == ["long.after", "long.job"]


def test_background_dispatcher_of_serve_delivers_and_stops(db):
    """``onetrip serve --notify`` runs this thread next to the web server."""
    from onetrip.notify.dispatcher import start_background, stop_background

    receiver = Receiver().start()
    try:
        _, receiver.secret = subscribe(db, receiver.url, events=["bg.*"])
        thread, stop, dispatcher = start_background(db.factory, poll_seconds=0.05)
        sent = emit(db, 3, "bg.x")
        assert wait_for(lambda: set(receiver.processed) == set(sent), 30)
        stop_background(thread, stop, dispatcher, timeout=30)
        assert not thread.is_alive()
    finally:
        receiver.stop()


def test_fan_out_position_reset_by_hand_creates_no_second_delivery(db):
    receiver = Receiver()
    sub_id, _ = subscribe(db, receiver.url, events=["reset.*"])
    emit(db, 3, "reset.x")
    d = D.Dispatcher(db.factory)
    rules = d.rules()
    d.fan_out_all(rules)
    with db.session() as s:
        s.get(Feed, 1).floor_id = 0  # an operator "replays" the outbox
        s.commit()
    d.fan_out_all(rules)
    d.close()
    assert sorted(x.event_type for x in deliveries(db, sub_id)) == ["reset.x"] * 3


def test_claims_that_waited_too_long_are_given_back_not_sent_late(db):
    """N4 with a slow receiver: a batch bigger than the senders can finish within the lease — the claims
    whose attempt could outlast the lease are released (another dispatcher may take them at once) instead
    of being sent after the lease has run out."""
    set_rules(db, timeout_seconds=1, lease_seconds=8)  # an attempt may start up to 8 - 3 - 1 = 4 s after the claim
    receiver = Receiver().start()
    receiver.delay = 0.9
    try:
        sub_id, receiver.secret = subscribe(db, receiver.url, events=["slow.*"])
        emit(db, 10, "slow.x")
        d = D.Dispatcher(db.factory, worker="slow", concurrency=1)
        stats = d.run_once()
        d.close()
        assert 1 <= stats.sent <= 6 and stats.delivered == stats.sent  # all 10 would take 9 s or more
        rows = deliveries(db, sub_id)
        assert sum(r.status == "delivered" for r in rows) == stats.sent == len(receiver.hits)
        rest = [r for r in rows if r.status == "pending"]
        assert len(rest) == 10 - stats.sent and all(r.locked_by is None and r.attempts == 0 for r in rest)
    finally:
        receiver.stop()


def test_a_request_that_cannot_even_be_built_is_a_failed_attempt(db):
    """A URL httpx refuses (stored before a validation existed, or edited in the database) must count as a
    failed attempt with back-off and, in the end, a dead letter — not loop on lease expiry for ever."""
    set_rules(db, max_attempts=1)
    sub_id, _ = subscribe(db, "http://127.0.0.1:9/ok", events=["broken.*"])
    with db.session() as s:
        service.get_subscription(s, sub_id).endpoint = "http://[::1/broken"
        s.commit()
    emit(db, 1, "broken.x")
    d = D.Dispatcher(db.factory)
    stats = d.run_once()
    d.close()
    assert stats.failed == 1
    [row] = deliveries(db, sub_id)
    assert row.status == "dead" and "cannot send" in row.last_error
