"""Cold-chain pages and the manual-record check (issue 20 point 4, RULES R6.7) on SQLite and PostgreSQL: the pure
check of a day's manual records (complete, missing afternoon, 5 h apart), the worklist API of incomplete fridges,
the page (range, last reading, morning / afternoon present or missing, open alarms with their quarantined lots),
the manual-record form (errors inline keeping what was typed), release without a note refused inline, the fridge
page, the nav links; audit and outbox rows of what is written."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select

from onetrip.audit.models import AuditEvent
from onetrip.immunization import rules
from onetrip.immunization.models import TemperatureReading, VaccineLot
from onetrip.kit import clock
from onetrip.outbox.models import OutboxEvent
from tests.factories import auth, token
from tests.immunization.test_desk_api import inbound

API = "/api/immunization"
UI = "/ui/immunization"


def t(hhmm: str) -> dt.time:
    return dt.time(*(int(x) for x in hhmm.split(":")))


# --- the pure check (R6.7) --------------------------------------------------------------------------------

def test_manual_check_complete_missing_and_too_close():
    done = rules.manual_record_check([t("15:00"), t("08:30")])
    assert (done.status, done.morning, done.afternoon, done.complete) == ("complete", t("08:30"), t("15:00"), True)
    assert rules.manual_record_check([t("08:30")]).status == "missing-afternoon"
    assert rules.manual_record_check([t("08:30"), t("11:59")]).status == "missing-afternoon"
    assert rules.manual_record_check([t("14:00")]).status == "missing-morning"
    assert rules.manual_record_check([]).status == "missing-both"
    close = rules.manual_record_check([t("08:30"), t("13:30")])  # 5 h apart
    assert close.status == "too-close" and not close.complete
    # the widest pair counts: an extra record close to the morning one does not spoil a complete day
    assert rules.manual_record_check([t("08:00"), t("12:30"), t("14:00")]).status == "complete"
    assert rules.manual_record_check([t("08:30"), t("14:29")]).status == "too-close"
    assert rules.manual_record_check([t("08:30"), t("14:30")]).status == "complete"  # exactly 6 h
    # the rule value decides: a 5-hour gap is enough when the operator sets 5, noon moved to 13:00
    assert rules.manual_record_check([t("08:30"), t("13:30")], {"min_gap_hours": 5}).status == "complete"
    assert rules.manual_record_check([t("08:30"), t("12:30")], {"morning_before": "13:00"}).status == \
        "missing-afternoon"
    assert rules.manual_record_check([t("07:00"), t("17:00")], {"per_day": 3}).status == "too-few"


def test_the_rule_row_is_seeded(db):
    from onetrip.rules.service import rule_values

    with db.session() as s:
        assert rule_values(s, "immunization")["manual_record"] == {"per_day": 2, "min_gap_hours": 6,
                                                                   "morning_before": "12:00"}


# --- fixtures --------------------------------------------------------------------------------------------

def fridge(client, hdr, name, frozen=False):
    r = client.post(f"{API}/fridges", headers=hdr, json={"name": name, "frozen": frozen})
    assert r.status_code == 201, r.text
    return r.json()


def manual(client, hdr, fridge_id, celsius, at: dt.datetime):
    r = client.post(f"{API}/cold-chain/readings", headers=hdr,
                    json={"fridge_id": fridge_id, "celsius": celsius, "measured_at": at.isoformat()})
    assert r.status_code == 201, r.text
    return r.json()


def today() -> dt.date:
    return clock.local_date(clock.utcnow())


def morning_today() -> dt.datetime:
    """A morning record today that is not in the future, whatever the time of day the tests run."""
    now = clock.utcnow()
    early = clock.local_datetime(today(), "00:01")
    return max(early, min(now - dt.timedelta(minutes=1), clock.local_datetime(today(), "08:00")))


# --- the worklist API -------------------------------------------------------------------------------------

def test_worklist_lists_fridges_whose_record_is_incomplete(client, vac, doc, world):
    day = today() - dt.timedelta(days=3)
    ok, half, close = (fridge(client, vac, n) for n in ("清单柜-完整", "清单柜-缺下午", "清单柜-间隔短"))
    manual(client, vac, ok["id"], 4.0, clock.local_datetime(day, "08:30"))
    manual(client, vac, ok["id"], 5.0, clock.local_datetime(day, "15:00"))
    manual(client, vac, half["id"], 4.0, clock.local_datetime(day, "08:30"))
    manual(client, vac, close["id"], 4.0, clock.local_datetime(day, "08:30"))
    manual(client, vac, close["id"], 4.5, clock.local_datetime(day, "13:30"))
    # the day before at 23:30 local and the day after at 00:30 are other days (Asia/Shanghai days)
    manual(client, vac, half["id"], 4.0, clock.local_datetime(day - dt.timedelta(days=1), "23:30"))
    manual(client, vac, half["id"], 4.0, clock.local_datetime(day + dt.timedelta(days=1), "00:30"))

    r = client.get(f"{API}/cold-chain/manual-check", params={"date": day.isoformat()}, headers=doc)
    assert r.status_code == 200, r.text
    rows = {x["fridge_id"]: x for x in r.json()}
    assert ok["id"] not in rows
    assert (rows[half["id"]]["status"], rows[half["id"]]["morning"], rows[half["id"]]["afternoon"],
            rows[half["id"]]["records"]) == ("missing-afternoon", "08:30", None, 1)
    assert (rows[close["id"]]["status"], rows[close["id"]]["afternoon"]) == ("too-close", "13:30")
    assert rows[half["id"]]["date"] == day.isoformat() and rows[half["id"]]["fridge_name"] == "清单柜-缺下午"
    # another day: nothing recorded for any of them
    other = client.get(f"{API}/cold-chain/manual-check", params={"date": (day - dt.timedelta(days=5)).isoformat()},
                       headers=doc).json()
    assert {ok["id"], half["id"], close["id"]} <= {x["fridge_id"] for x in other}
    assert {x["status"] for x in other if x["fridge_id"] == ok["id"]} == {"missing-both"}
    bad = client.get(f"{API}/cold-chain/manual-check", params={"date": "2026-13-01"}, headers=doc)
    assert bad.status_code in (400, 422) and bad.json()["resourceType"] == "OperationOutcome"


def test_worklist_is_the_callers_clinic_only(client, vac, world):
    mine = fridge(client, vac, "本院柜-清单")
    future = client.post(f"{API}/cold-chain/readings", headers=vac, json={
        "fridge_id": mine["id"], "celsius": 4.0, "measured_at": (clock.utcnow() + dt.timedelta(hours=1)).isoformat()})
    assert future.status_code == 400 and future.json()["issue"][0]["expression"] == ["measured_at"]
    other = auth(token(client, world.users["doc_b"]))
    rows = client.get(f"{API}/cold-chain/manual-check", headers=other).json()
    assert mine["id"] not in {x["fridge_id"] for x in rows}


# --- the page ---------------------------------------------------------------------------------------------

def test_the_page_shows_a_missing_afternoon_record_and_the_last_reading(client, vac, db):
    f = fridge(client, vac, "页面柜-上午")
    at = morning_today()
    manual(client, vac, f["id"], 4.2, at)
    html = client.get(f"{UI}/cold-chain", headers=vac).text
    card = _card(html, f["id"])
    assert 'data-manual="missing-afternoon"' in card
    assert 'class="manual-morning" data-present="yes"' in card and clock.local_hhmm(at) in card
    assert 'class="manual-afternoon" data-present="no"' in card
    assert "4.2 °C" in card and "2–8 °C" in card
    # a freezer shows its own range; nothing recorded: both halves missing
    fz = fridge(client, vac, "页面柜-低温", frozen=True)
    card = _card(client.get(f"{UI}/cold-chain", headers=vac).text, fz["id"])
    assert 'data-manual="missing-both"' in card and "≤ -20 °C" in card


def _card(html: str, fridge_id: str) -> str:
    m = re.search(rf'<section class="card fridge" id="fridge-{fridge_id}".*?</section>', html, re.S)
    assert m, f"no card for fridge {fridge_id}"
    return m.group(0)


def _audit(db, what: str) -> list[AuditEvent]:
    with db.session() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.entity_what == what)))


def _outbox(db, event_type: str, aggregate_id: str) -> list[OutboxEvent]:
    with db.session() as s:
        return list(s.scalars(select(OutboxEvent).where(OutboxEvent.event_type == event_type,
                                                        OutboxEvent.aggregate_id == aggregate_id)))


def test_the_form_records_and_keeps_what_was_typed_on_error(client, vac, db):
    f = fridge(client, vac, "页面柜-表单")
    r = client.post(f"{UI}/cold-chain/readings", headers=vac, follow_redirects=False,
                    data={"fridge_id": f["id"], "celsius": "abc", "measured_at": "08:10"})
    assert r.status_code == 400
    assert 'id="reading-error"' in r.text and 'value="abc"' in r.text and 'value="08:10"' in r.text
    r = client.post(f"{UI}/cold-chain/readings", headers=vac, follow_redirects=False,
                    data={"fridge_id": f["id"], "celsius": "4.5", "measured_at": "25:99"})
    assert r.status_code == 400 and 'value="25:99"' in r.text and 'value="4.5"' in r.text
    assert 'aria-invalid="true"' in r.text
    with db.session() as s:
        assert s.scalars(select(TemperatureReading).where(TemperatureReading.fridge_id == f["id"])).all() == []
    hhmm = clock.local_hhmm(morning_today())
    r = client.post(f"{UI}/cold-chain/readings", headers=vac, follow_redirects=False,
                    data={"fridge_id": f["id"], "celsius": "5,5", "measured_at": hhmm})
    assert r.status_code == 303 and r.headers["location"].endswith("done=reading")
    with db.session() as s:
        reading = s.scalar(select(TemperatureReading).where(TemperatureReading.fridge_id == f["id"]))
    assert (reading.celsius, reading.source, reading.excursion) == (5.5, "manual", False)
    assert clock.local_hhmm(clock.as_utc(reading.measured_at)) == hhmm
    assert len(_audit(db, f"Observation/imm-temperature-{reading.id}")) == 1
    assert len(_outbox(db, "immunization.temperature.recorded", reading.id)) == 1


def test_release_without_a_note_is_refused_inline(client, vac, world, db):
    f = fridge(client, vac, "页面柜-报警")
    got = inbound(client, vac, world, code="MMR", fridge_id=f["id"])
    r = client.post(f"{UI}/cold-chain/readings", headers=vac, follow_redirects=False,
                    data={"fridge_id": f["id"], "celsius": "9.8", "measured_at": ""})
    assert r.status_code == 303 and r.headers["location"].endswith("done=alarm")
    html = client.get(r.headers["location"], headers=vac).text
    card = _card(html, f["id"])
    alarm_id = re.search(r'data-alarm="([0-9a-f]+)"', card).group(1)
    assert 'data-alarms="1"' in card and f'data-lot="{got["lot_id"]}" data-status="quarantined"' in card
    assert _outbox(db, "immunization.cold_chain_alarm.opened", alarm_id)

    r = client.post(f"{UI}/cold-chain/alarms/{alarm_id}/release", headers=vac, data={"note": "  "},
                    follow_redirects=False)
    assert r.status_code == 400
    card = _card(r.text, f["id"])
    assert f'id="release-error-{alarm_id}"' in card and "note" in card
    with db.session() as s:
        assert s.get(VaccineLot, got["lot_id"]).status == "quarantined"
    note = "停电 15 分钟，最高 9.8 °C，疾控评估可用"
    r = client.post(f"{UI}/cold-chain/alarms/{alarm_id}/release", headers=vac, data={"note": note},
                    follow_redirects=False)
    assert r.status_code == 303
    with db.session() as s:
        assert s.get(VaccineLot, got["lot_id"]).status == "available"
    card = _card(client.get(f"{UI}/cold-chain", headers=vac).text, f["id"])
    assert 'data-alarms="0"' in card
    assert {e.subtype for e in _audit(db, f"Flag/imm-alarm-{alarm_id}")} == {"create", "update"}
    assert _outbox(db, "immunization.cold_chain_alarm.released", alarm_id)
    page = client.get(f"{UI}/cold-chain/fridges/{f['id']}", headers=vac).text
    assert note in page and 'data-status="released"' in page


def test_the_fridge_page_shows_the_last_days(client, vac, world):
    f = fridge(client, vac, "页面柜-历史")
    for days_ago, hhmm, c in ((2, "08:00", 4.0), (2, "16:00", 5.0), (1, "09:00", 3.5)):
        manual(client, vac, f["id"], c, clock.local_datetime(today() - dt.timedelta(days=days_ago), hhmm))
    r = client.get(f"{UI}/cold-chain/fridges/{f['id']}", headers=vac)
    assert r.status_code == 200
    html = r.text
    assert html.count('class="reading-row"') == 3 and 'id="fridge-sparkline"' in html
    assert len(re.search(r'<polyline points="([^"]+)"', html).group(1).split()) == 3
    two = (today() - dt.timedelta(days=2)).isoformat()
    one = (today() - dt.timedelta(days=1)).isoformat()
    assert f'data-date="{two}" data-status="complete"' in html
    assert f'data-date="{one}" data-status="missing-afternoon"' in html
    other = auth(token(client, world.users["doc_b"]))  # another institution's fridge: refused
    assert client.get(f"{UI}/cold-chain/fridges/{f['id']}", headers=other).status_code == 403


@pytest.mark.parametrize("who", ["vac", "doc", "doc_b"])
def test_nav_links(client, vac, doc, world, who):
    fridge(client, vac, f"导航柜-{who}")
    hdr = {"vac": vac, "doc": doc}.get(who) or auth(token(client, world.users["doc_b"]))
    home = client.get("/ui/", headers=hdr).text
    if who == "vac":  # vaccinators: the desk and the cold chain in the main nav
        assert 'id="nav-vaccination-desk"' in home and 'id="nav-cold-chain"' in home
        return
    assert 'id="nav-vaccination-desk"' not in home and 'hx-get="/ui/immunization/nav"' in home
    frag = client.get(f"{UI}/nav", headers=hdr).text
    # a clinician of clinic A (which has fridges) gets the cold-chain link; of B (no fridge) nothing
    assert ('id="nav-cold-chain"' in frag) is (who == "doc")
