"""Cold chain (issue 20 point 4, RULES R6.7) on SQLite and PostgreSQL: a sensor posts with its fridge's key, an
excursion outside 2–8 °C (a freezer above −20 °C) quarantines the fridge's lots — the desk then refuses them —
until a person releases them with a note; the manual record; everything audited."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from onetrip.audit.models import AuditEvent
from onetrip.immunization.models import VaccineLot
from tests.immunization.test_desk_api import check, child, failed, inbound

API = "/api/immunization"


@pytest.fixture(scope="module")
def fridge(client, vac):
    r = client.post(f"{API}/fridges", headers=vac, json={"name": "冷链测试柜"})
    assert r.status_code == 201, r.text
    return r.json()


def sensor(client, fridge, celsius, key=None):
    return client.post(f"{API}/cold-chain/sensor-readings", json={"fridge_id": fridge["id"], "celsius": celsius},
                       headers={"X-Device-Token": key if key is not None else fridge["sensor_key"]})


def lot_status(db, lot_id):
    with db.session() as s:
        return s.scalar(select(VaccineLot.status).where(VaccineLot.id == lot_id))


def test_a_sensor_needs_its_fridges_key(client, fridge):
    wrong = sensor(client, fridge, 5.0, key="wrong")
    assert wrong.status_code == 401 and "X-Device-Token" in wrong.text
    r = client.post(f"{API}/cold-chain/sensor-readings", json={"fridge_id": fridge["id"], "celsius": 5.0})
    assert r.status_code == 401  # no credential at all: refused before the body is read
    ok = sensor(client, fridge, 5.0)
    assert ok.status_code == 201 and ok.json()["excursion"] is False and ok.json()["alarm_id"] is None


def test_excursion_quarantines_until_released_with_a_note(client, vac, world, db, fridge):
    got = inbound(client, vac, world, fridge_id=fridge["id"])
    outside = inbound(client, vac, world)  # not in this fridge: untouched
    r = sensor(client, fridge, 9.5)
    assert r.status_code == 201 and r.json()["excursion"] is True
    alarm = r.json()["alarm_id"]
    assert alarm and lot_status(db, got["lot_id"]) == "quarantined" and lot_status(db, outside["lot_id"]) == "available"
    v = check(client, vac, child(db, world), got["codes"][0])
    assert list(failed(v)) == ["lot"] and "quarantined" in failed(v)["lot"]
    again = sensor(client, fridge, 10.0)  # the alarm is open: no second alarm
    assert again.json()["excursion"] is True and again.json()["alarm_id"] is None
    opened = client.get(f"{API}/cold-chain/alarms", params={"status": "open"}, headers=vac).json()
    assert [a["id"] for a in opened if a["fridge_id"] == fridge["id"]] == [alarm]
    assert got["lot_id"] in opened[0]["lot_ids"]

    no_note = client.post(f"{API}/cold-chain/alarms/{alarm}/release", headers=vac, json={"note": ""})
    assert no_note.status_code == 400 and "note" in no_note.text
    assert lot_status(db, got["lot_id"]) == "quarantined"
    r = client.post(f"{API}/cold-chain/alarms/{alarm}/release", headers=vac,
                    json={"note": "停电 20 分钟，最高 9.5 °C，经疾控评估可继续使用"})
    assert r.status_code == 200 and r.json()["status"] == "released" and r.json()["release_note"].startswith("停电")
    assert lot_status(db, got["lot_id"]) == "available"
    assert check(client, vac, child(db, world), got["codes"][0])["ok"]
    twice = client.post(f"{API}/cold-chain/alarms/{alarm}/release", headers=vac, json={"note": "again"})
    assert twice.status_code == 409
    with db.session() as s:
        events = {e.subtype for e in s.scalars(select(AuditEvent).where(
            AuditEvent.entity_what == f"Flag/imm-alarm-{alarm}"))}
    assert events == {"create", "update"}


def test_the_manual_record_and_a_freezer(client, vac, doc, world, db):
    freezer = client.post(f"{API}/fridges", headers=vac, json={"name": "低温冰箱", "frozen": True}).json()
    got = inbound(client, vac, world, fridge_id=freezer["id"])
    r = client.post(f"{API}/cold-chain/readings", headers=vac, json={"fridge_id": freezer["id"], "celsius": -25})
    assert r.status_code == 201 and r.json()["source"] == "manual" and r.json()["excursion"] is False
    r = client.post(f"{API}/cold-chain/readings", headers=vac, json={"fridge_id": freezer["id"], "celsius": -12})
    assert r.json()["excursion"] is True and r.json()["alarm_id"]
    assert lot_status(db, got["lot_id"]) == "quarantined"
    denied = client.post(f"{API}/cold-chain/readings", headers=doc, json={"fridge_id": freezer["id"], "celsius": 5})
    assert denied.status_code == 403  # a clinician has no Immunization.c
    bad = client.post(f"{API}/cold-chain/readings", headers=vac, json={"fridge_id": freezer["id"], "celsius": "hot"})
    assert bad.status_code == 400
