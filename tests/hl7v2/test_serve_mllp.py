"""``onetrip serve --mllp-port N``: HTTP and the MLLP listener in one process, over real sockets; SIGTERM stops
both cleanly (exit 0, both ports closed)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from sqlalchemy import select

from onetrip.persons.models import PatientRecord
from tests.hl7v2.helpers import Peer, adt, segment
from tests.hl7v2.test_kill9 import _free_port


def _wait_http(port: int, proc: subprocess.Popen, timeout: float = 40.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                return {"status": r.status, "body": r.read().decode()}
        except OSError:
            time.sleep(0.2)
    raise AssertionError("HTTP did not come up")


def _closed(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_serve_runs_http_and_mllp_in_one_process(db, world):
    http_port, mllp_port = _free_port(), _free_port()
    env = {**os.environ, "ONETRIP_DATABASE_URL": db.url, "COLUMNS": "200"}
    proc = subprocess.Popen([sys.executable, "-m", "onetrip.cli.main", "serve", "--port", str(http_port),
                             "--mllp-port", str(mllp_port)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        health = _wait_http(http_port, proc)
        assert health["status"] == 200 and '"ok"' in health["body"]
        peer = Peer(mllp_port)
        try:
            ack = peer.call(adt(world.org_a_code, "SRV-1", mrn="SRV001", family="同", given="进程"))
        finally:
            peer.close()
        assert segment(ack, "MSA")[1] == "AA"
        deadline = time.monotonic() + 20
        found = None
        while time.monotonic() < deadline and found is None:
            with db.session() as s:
                found = s.scalar(select(PatientRecord).where(PatientRecord.organization_id == world.org_a,
                                                             PatientRecord.mrn == "SRV001"))
            time.sleep(0.1)
        assert found is not None and found.name == "同进程"  # the handler ran in the serving process
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, out
        assert "MLLP listener stopped" in out
        assert _closed(http_port) and _closed(mllp_port)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_mllp_port_needs_one_worker(cli_env):
    from onetrip.cli.main import app

    r = cli_env.invoke(app, ["serve", "--workers", "2", "--mllp-port", "2575"])
    assert r.exit_code == 2 and "--workers 1" in r.output
