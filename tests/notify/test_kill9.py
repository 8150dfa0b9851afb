"""Acceptance 3b: ``kill -9`` the dispatcher (a real ``onetrip notify run`` or ``onetrip serve --notify``
subprocess) while it is in the middle of delivering — events committed, claimed, the POST on the wire — and while more events are
committed. After a restart every event is delivered; the idempotent receiver processed each exactly once
(a second copy of the interrupted one may arrive: duplicates only at the network level)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from sqlalchemy import select

from onetrip.notify.models import Attempt, Delivery
from tests.notify.conftest import emit, set_rules, subscribe
from tests.notify.receiver import Receiver, free_port, wait_for

# The dispatcher on its own, and inside the web server (`onetrip serve --notify`, 4 senders).
COMMANDS = {
    "notify-run": (["notify", "run", "--poll", "0.1", "--concurrency", "2"], 2),
    "serve-notify": (["serve", "--notify", "--port", "{port}"], 4),
}


def _start(db_url: str, kind: str) -> subprocess.Popen:
    env = {**os.environ, "ONETRIP_DATABASE_URL": db_url}
    args = [a.replace("{port}", str(free_port())) for a in COMMANDS[kind][0]]
    proc = subprocess.Popen([sys.executable, "-m", "onetrip.cli.main", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    lines = []
    for _ in range(5):  # `serve` prints its address first
        lines.append(proc.stdout.readline())
        if "dispatcher running" in lines[-1]:
            return proc
    raise AssertionError(f"dispatcher did not start: {lines!r}")


@pytest.mark.parametrize("kind", list(COMMANDS))
def test_kill_9_between_commit_and_delivery_then_restart_delivers_everything(db, kind):
    # A short lease so the restarted dispatcher may take over the killed one's claims quickly (N4).
    set_rules(db, base_delay_seconds=0.1, max_delay_seconds=0.5, timeout_seconds=1, lease_seconds=8,
              max_attempts=100)
    receiver = Receiver().start()
    receiver.hold.clear()  # the first requests hang: the dispatcher is caught mid-delivery
    procs = []
    try:
        sub_id, receiver.secret = subscribe(db, receiver.url, events=["crash.*"])
        sent = emit(db, 15, "crash.x")
        proc = _start(db.url, kind)
        procs.append(proc)
        assert receiver.arrived.wait(30), "the dispatcher never started a delivery"
        with db.session() as s:
            leased = s.scalar(select(Delivery.locked_by).where(Delivery.subscription_id == sub_id,
                                                              Delivery.locked_by.is_not(None)).limit(1))
        assert leased, "deliveries should be claimed (committed lease) when the kill lands"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert not receiver.processed, "nothing may have been acknowledged before the kill"
        sent += emit(db, 10, "crash.x")  # committed while no dispatcher runs
        receiver.hold.set()  # the receiver is fine again; the killed process will never read its answers

        proc = _start(db.url, kind)
        procs.append(proc)
        assert wait_for(lambda: set(receiver.processed) == set(sent), 90), \
            f"missing after restart: {len(set(sent) - set(receiver.processed))}"
        assert wait_for(lambda: all(d.status == "delivered" for d in _deliveries(db, sub_id)), 30)
        proc.send_signal(signal.SIGTERM)  # graceful stop (uvicorn re-raises the signal once it has shut down)
        assert proc.wait(30) in (0, -signal.SIGTERM)
        with db.session() as s:
            assert s.scalar(select(Delivery.id).where(Delivery.locked_by.is_not(None)).limit(1)) is None
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
        receiver.stop()
    assert len(receiver.processed) == 25  # processed once each (idempotent receiver)
    assert set(receiver.hits) == set(sent)  # duplicates, if any, only of what was on the wire at the kill
    assert len(receiver.hits) - len(set(receiver.hits)) <= COMMANDS[kind][1]  # at most the POSTs in flight
    with db.session() as s:
        ok = s.scalars(select(Attempt.delivery_id).join(Delivery, Delivery.id == Attempt.delivery_id)
                       .where(Delivery.subscription_id == sub_id, Attempt.ok.is_(True))).all()
    assert len(ok) == 25 and len(set(ok)) == 25  # one logged success per delivery


def _deliveries(db, sub_id):
    with db.session() as s:
        return list(s.scalars(select(Delivery).where(Delivery.subscription_id == sub_id)))
