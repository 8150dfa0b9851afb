"""The admin's chain check says what it compared with (issue 26): the latest signed checkpoint (its time, line,
chains), none written yet, or no checkpoint directory — so an operator sees whether a deleted tail of the log
could be detected. API and page, both databases."""

from __future__ import annotations

import pytest

from onetrip.audit import integrity
from onetrip.config import get_settings
from tests.factories import auth, token


@pytest.fixture
def admin(client, world):
    return auth(token(client, world.users["admin"]))


@pytest.fixture
def checkpoint_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("ONETRIP_AUDIT_CHECKPOINT_DIR", str(tmp_path / "cp"))
    get_settings.cache_clear()
    yield tmp_path / "cp"
    get_settings.cache_clear()


def test_verify_reports_none_yet_then_the_checkpoint(client, db, admin, checkpoint_dir):
    first = client.get("/api/audit/verify", headers=admin)
    assert first.status_code == 200, first.text
    assert first.json()["ok"] and first.json()["checkpoint"]["state"] == "none-yet"
    page = client.post("/ui/audit/verify", headers={**admin, "HX-Request": "true"})
    assert page.status_code == 200 and "onetrip audit checkpoint" in page.text
    with db.session() as s:
        written = integrity.write_checkpoint(s)
        s.commit()
    assert written.written and not written.problems
    after = client.get("/api/audit/verify", headers=admin).json()
    c = after["checkpoint"]
    assert after["ok"] and c["state"] == "compared" and c["line"] >= 1 and c["chains"] == len(written.heads)
    assert c["taken_at"] and c["key_id"]
    page = client.post("/ui/audit/verify", headers={**admin, "HX-Request": "true"})
    assert c["taken_at"] in page.text


def test_verify_says_when_no_directory_is_configured(client, admin, monkeypatch):
    monkeypatch.setattr(integrity, "default_checkpoint_dir", lambda: None)
    r = client.get("/api/audit/verify", headers=admin)
    assert r.status_code == 200 and r.json()["checkpoint"]["state"] == "not-configured"
    page = client.post("/ui/audit/verify", headers={**admin, "HX-Request": "true"})
    assert "ONETRIP_AUDIT_CHECKPOINT_DIR" in page.text
