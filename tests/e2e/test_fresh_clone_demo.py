"""The README's demo command in a fresh clone: `./dev.sh demo` creates its own virtualenv, installs the
package from pyproject.toml, loads a (small) synthetic district and serves the web UI and FHIR API on
127.0.0.1. Uses the committed tree (git clone of HEAD), so an undeclared dependency or an uncommitted
file fails here."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pyotp
import pytest

from onetrip.cli.main import DEMO_PASSWORD

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_readme_demo_command_in_a_fresh_clone(tmp_path):
    if not (REPO / ".git").exists() or shutil.which("git") is None:
        pytest.skip("needs a git checkout")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ONETRIP_", "VIRTUAL_ENV", "PYTEST"))}
    env["ONETRIP_DATABASE_URL"] = f"sqlite:///{tmp_path / 'demo.db'}"
    log = (tmp_path / "demo.log").open("w")
    proc = subprocess.Popen(["./dev.sh", "demo", "--residents", "300", "--port", str(port)], cwd=clone, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail("demo exited early:\n" + (tmp_path / "demo.log").read_text()[-3000:])
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        else:
            pytest.fail("demo did not start within 10 minutes:\n" + (tmp_path / "demo.log").read_text()[-3000:])
        login = httpx.get(f"{base}/ui/login", timeout=10)
        assert login.status_code == 200 and "OneTrip" in login.text
        meta = httpx.get(f"{base}/fhir/R4/metadata", timeout=10)
        assert meta.status_code == 200 and meta.json()["fhirVersion"] == "4.0.1"
        # The demo admin has no second factor yet: enrol on the web sign-in (as a person would), then use it.
        step = httpx.post(f"{base}/ui/login", data={"username": "admin", "password": DEMO_PASSWORD}, timeout=10)
        assert step.status_code == 200 and 'id="totp-secret"' in step.text, step.text[-2000:]
        secret = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', step.text).group(1).replace(" ", "")
        ticket = re.search(r'name="ticket" value="([^"]+)"', step.text).group(1)
        done = httpx.post(f"{base}/ui/login/enrol", timeout=10,
                          data={"ticket": ticket, "totp": pyotp.TOTP(secret).at(time.time() - 30)})
        assert done.status_code == 200 and "<li>" in done.text
        tok = httpx.post(f"{base}/auth/token", data={"grant_type": "password", "username": "admin",
                                                     "password": DEMO_PASSWORD, "totp": pyotp.TOTP(secret).now()},
                         timeout=10)
        assert tok.status_code == 200, tok.text
        h = {"Authorization": f"Bearer {tok.json()['access_token']}"}
        patients = httpx.get(f"{base}/fhir/R4/Patient?_count=5", headers=h, timeout=10).json()
        assert len(patients["entry"]) == 5
        output = (tmp_path / "demo.log").read_text()
        assert DEMO_PASSWORD in output and "127.0.0.1" in output
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
