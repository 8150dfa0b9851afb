"""Crash safety (issue 4 acceptance): stream 200 messages to a listener in its own process, kill -9 it
part-way, restart it, resend every message that was not ACKed (and a few that were) — exactly one stored copy of each remains,
and the handlers of messages stored before the crash still run after the restart."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

from sqlalchemy import func, select

from onetrip.interop.hl7v2.models import InboxMessage
from onetrip.persons.models import PatientRecord
from tests.hl7v2.helpers import Peer, adt, segment

TOTAL, KILL_AFTER = 200, 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(db_url: str, port: int) -> subprocess.Popen:
    env = {**os.environ, "ONETRIP_DATABASE_URL": db_url}
    proc = subprocess.Popen([sys.executable, "-m", "onetrip.interop.hl7v2.mllp", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    assert "listening" in line, f"listener did not start: {line!r}"
    return proc


def test_kill_9_mid_stream_then_resend_leaves_one_copy_each(db, world):
    port = _free_port()
    messages = {f"K9-{i:03d}": adt(world.org_a_code, f"K9-{i:03d}", mrn=f"K{i:03d}", family="测", given=f"试{i}",
                                   birth=f"19{50 + i % 50:02d}0{1 + i % 9}1{i % 10}").encode()
                for i in range(TOTAL)}
    proc = _start(db.url, port)
    acked: dict[str, bytes] = {}
    peer = Peer(port)

    def send_all() -> None:
        try:
            for payload in messages.values():
                peer.send(payload)
        except OSError:
            pass  # the listener died under us: expected

    sender = threading.Thread(target=send_all, daemon=True)
    sender.start()
    try:
        while len(acked) < KILL_AFTER:
            ack = peer.read_ack()
            assert segment(ack, "MSA")[1] == "AA"
            acked[segment(ack, "MSA")[2]] = ack
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        try:  # ACKs already on the wire before the kill still count as ACKed
            peer.sock.settimeout(1)
            while True:
                ack = peer.read_ack()
                acked[segment(ack, "MSA")[2]] = ack
        except (OSError, ConnectionError):
            pass
    finally:
        peer.close()
        sender.join(10)
    assert KILL_AFTER <= len(acked) < TOTAL, "the kill should land part-way through the stream"

    proc = _start(db.url, port)
    try:
        peer = Peer(port)
        for cid, payload in messages.items():
            if cid not in acked:
                ack = peer.call(payload)
                assert segment(ack, "MSA")[1:3] == ["AA", cid]
        for cid in list(acked)[:5]:  # an over-cautious sender resending ACKed ones gets the same ACK back
            assert peer.call(messages[cid]) == acked[cid]
        peer.close()
        with db.session() as s:
            per_id = dict(s.execute(select(InboxMessage.control_id, func.count()).where(
                InboxMessage.control_id.like("K9-%")).group_by(InboxMessage.control_id)).all())
        assert per_id == dict.fromkeys(messages, 1)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with db.session() as s:
                done = s.scalar(select(func.count()).select_from(InboxMessage).where(
                    InboxMessage.control_id.like("K9-%"), InboxMessage.status == "processed"))
            if done == TOTAL:
                break
            time.sleep(0.2)
        assert done == TOTAL
        with db.session() as s:
            mrns = s.scalars(select(PatientRecord.mrn).where(PatientRecord.organization_id == world.org_a,
                                                             PatientRecord.mrn.like("K%"))).all()
        assert sorted(mrns) == sorted(f"K{i:03d}" for i in range(TOTAL))
    finally:
        proc.kill()
        proc.wait(10)
