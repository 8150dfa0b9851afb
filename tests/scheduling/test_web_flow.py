"""The booking flow's pages (issue 17), without a browser: the patient page's 安排检查 link, the booking
screen's sites, book all → the slip (masked name, Chinese status, QR, A5), the slot page (book a patient
found by name/ID/phone), cancel with a reason, reschedule keeping the rules, check-in; form errors come back
inline with what was typed, cross-site posts are refused, and bad input is a 4xx page, never a 500."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from onetrip.auth.service import create_user
from onetrip.kit.clock import utcnow
from onetrip.kit.masking import mask_id_number
from onetrip.kit.principal import cli_principal
from onetrip.scheduling import service
from onetrip.scheduling.models import Appointment, Slot
from tests.factories import PASSWORD, auth, register_patient, token
from tests.scheduling.conftest import build_sched, resident_id


@pytest.fixture(scope="module")
def sched(db, world):
    return build_sched(db, world.org_a, days=10)


@pytest.fixture(scope="module")
def scheduler(db, world) -> str:
    with db.session() as s:
        name = create_user(s, f"sched_flow_{world.org_a_code.lower()}", PASSWORD, ["scheduler"], "预约员",
                           world.org_a).username
        s.commit()
    return name


@pytest.fixture
def h(client, scheduler) -> dict[str, str]:
    client.cookies.clear()  # Chinese by default
    return auth(token(client, scheduler))


def _patient_with_orders(db, org_id: str, codes: list[str], *, name: str = "王芳", phone: str | None = None) -> str:
    rid = register_patient(db, org_id, name=name, id_number=resident_id(), phone=phone)
    with db.session() as s:
        for c in codes:
            service.create_order(s, cli_principal(), rid, c)
        s.commit()
    return rid


def _book_all(client, h, rid: str) -> str:
    r = client.get(f"/ui/scheduling/patients/{rid}", headers=h)
    assert r.status_code == 200, r.text
    items = re.findall(r'name="item" value="([^"]+)"', r.text)
    assert items
    r = client.post(f"/ui/scheduling/patients/{rid}/book", headers=h, data={"item": items, "channel": "phone"},
                    follow_redirects=False)
    assert r.status_code == 303, r.text
    return r.headers["location"]


def test_patient_page_links_to_booking_and_the_screen_shows_sites(client, db, world, sched, h):
    rid = _patient_with_orders(db, world.org_a, ["US_ABD", "ES_GASTRO"])
    r = client.get(f"/ui/patients/{rid}", headers=h)
    assert r.status_code == 200
    assert "安排检查" in r.text and f'href="/ui/scheduling/patients/{rid}"' in r.text
    assert "待预约的检查申请" in r.text and "腹部" in r.text  # the pending orders, by name
    r = client.get(f"/ui/scheduling/patients/{rid}", headers=h)
    assert r.status_code == 200 and "院区" in r.text
    sites = re.findall(r'<td class="site">([^<]+)<', r.text)
    assert len(sites) == 2 and all(s.strip().startswith("测试总院") for s in sites)
    # the English switch
    r = client.get(f"/ui/patients/{rid}?lang=en", headers=h)
    assert "Schedule exams" in r.text and "安排检查" not in r.text
    client.cookies.clear()


def test_book_all_gives_a_slip_a_patient_can_use(client, db, world, sched, h):
    rid = _patient_with_orders(db, world.org_a, ["US_ABD", "ES_GASTRO"], name="欧阳春花")
    slip_url = _book_all(client, h, rid)
    assert slip_url.startswith(f"/ui/scheduling/patients/{rid}/slip?a=")
    r = client.get(slip_url, headers=h)
    assert r.status_code == 200
    body = r.text
    assert 'id="slip-name">欧***<' in body and "欧阳春花" not in body  # masked as for printouts (RULES §10)
    assert rid not in body.split('id="slip"')[1].split("</section>")[0].replace(f"/patients/{rid}", "")
    assert body.count('class="slip-item"') == 2
    assert body.count("<svg") == 2 and 'class="qr"' in body  # one QR per appointment, inline SVG
    assert "已预约" in body and "booked" not in body.split('id="slip"')[1] and "phone" not in body.split('id="slip"')[1]
    assert "禁食" in body and "岁" in body  # preparation in Chinese, the age
    assert "测试总院" in body
    css = client.get("/static/css/scheduling.css").text
    assert "@page { size: A5" in css
    # the same slip for one appointment, and the upcoming ones of the patient
    one = re.findall(r"a=([0-9a-f]+)", slip_url)[0]
    assert client.get(f"/ui/scheduling/appointments/{one}/slip", headers=h).text.count('class="slip-item"') == 1
    assert client.get(f"/ui/scheduling/patients/{rid}/slip", headers=h).text.count('class="slip-item"') == 2
    # the patient page lists them, with a slip link
    r = client.get(f"/ui/patients/{rid}", headers=h)
    assert 'id="upcoming-appointments"' in r.text and "已预约" in r.text


def test_cancel_reschedule_and_check_in(client, db, world, sched, h):
    rid = _patient_with_orders(db, world.org_a, ["US_ABD", "ES_GASTRO"])
    _book_all(client, h, rid)
    with db.session() as s:
        appts = {a.exam_code: a.id for a in s.query(Appointment).filter_by(patient_record_id=rid)}
    # cancel without a reason: the screen again, with the error, nothing cancelled
    r = client.post(f"/ui/scheduling/appointments/{appts['US_ABD']}/cancel", headers=h, data={"reason": ""},
                    follow_redirects=False)
    assert r.status_code == 422 and "请选择取消原因" in r.text
    # reschedule the endoscopy: slots breaking a rule (before the ultrasound, I3; an afternoon, which breaks
    # the fast, I1) are offered greyed. (Not the ultrasound: when the itinerary puts the endoscopy right after
    # it, every other ultrasound slot breaks I3 and none is left to choose.)
    r = client.get(f"/ui/scheduling/appointments/{appts['ES_GASTRO']}/reschedule", headers=h)
    assert r.status_code == 200
    enabled = re.findall(r'name="slot_id" value="([^"]+)" id="c-[^"]+"\s*>', r.text)
    greyed = re.findall(r'name="slot_id" value="([^"]+)" id="c-[^"]+" disabled', r.text)
    assert enabled and greyed
    r = client.post(f"/ui/scheduling/appointments/{appts['ES_GASTRO']}/reschedule", headers=h,
                    data={"slot_id": greyed[0]}, follow_redirects=False)
    assert r.status_code == 422 and "违反检查顺序规则" in r.text and 'checked' in r.text
    r = client.post(f"/ui/scheduling/appointments/{appts['ES_GASTRO']}/reschedule", headers=h, data={},
                    follow_redirects=False)
    assert r.status_code == 422 and "请选择新的时间" in r.text
    r = client.post(f"/ui/scheduling/appointments/{appts['ES_GASTRO']}/reschedule", headers=h,
                    data={"slot_id": enabled[0]}, follow_redirects=False)
    assert r.status_code == 303 and "/slip?a=" in r.headers["location"]
    with db.session() as s:
        old = s.get(Appointment, appts["ES_GASTRO"])
        new = s.query(Appointment).filter_by(rescheduled_from_id=old.id).one()
        assert old.status == "cancelled" and old.cancel_reason == "rescheduled" and new.slot_id == enabled[0]
    # cancel with a reason; check in the other (the ultrasound)
    r = client.post(f"/ui/scheduling/appointments/{new.id}/cancel", headers=h,
                    data={"reason": "patient-request", "back": f"/ui/scheduling/patients/{rid}"},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/ui/scheduling/patients/{rid}"
    r = client.post(f"/ui/scheduling/appointments/{appts['US_ABD']}/check-in", headers=h,
                    data={"back": "https://evil.example/"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/ui/scheduling/patients/{rid}"  # no open redirect
    with db.session() as s:
        assert s.get(Appointment, new.id).cancel_reason == "patient-request"
        assert s.get(Appointment, appts["US_ABD"]).status == "checked-in"
    # no-show before the start: refused on the screen (409), not a 500
    rid2 = _patient_with_orders(db, world.org_a, ["CT_HEAD"])
    _book_all(client, h, rid2)
    with db.session() as s:
        a2 = s.query(Appointment).filter_by(patient_record_id=rid2).one().id
    r = client.post(f"/ui/scheduling/appointments/{a2}/no-show", headers=h, follow_redirects=False)
    assert r.status_code == 409 and "预约时间未到" in r.text
    page = client.get(f"/ui/scheduling/patients/{rid}", headers=h).text
    assert "已签到" in page and "已改约" in page and "患者要求" in page


def test_board_slot_click_books_a_patient_found_by_name_id_or_phone(client, db, world, sched, h):
    rid = register_patient(db, world.org_a, name="司马青", id_number=(idn := resident_id()), phone="13712345670")
    r = client.get(f"/ui/scheduling/board?organization={world.org_a}&date={sched.day}", headers=h)
    assert r.status_code == 200
    free = re.findall(r'data-slot="([^"]+)" data-state="free"', r.text)
    assert free and "/ui/scheduling/slots/" in r.text
    slot = free[0]
    for q in ("司马青", idn, "13712345670"):
        r = client.get(f"/ui/scheduling/slots/{slot}", params={"q": q}, headers=h)
        assert r.status_code == 200 and f'value="{rid}"' in r.text, q
        assert "137****5670" in r.text and f'<td class="mono">{mask_id_number(idn)}</td>' in r.text  # masked
    # no patient chosen: inline error, the search kept
    r = client.post(f"/ui/scheduling/slots/{slot}/book", headers=h, data={"q": "司马青", "exam_code": "CT_HEAD"},
                    follow_redirects=False)
    assert r.status_code == 422 and "请先查找并选择患者" in r.text and 'value="司马青"' in r.text
    # an exam this resource does not do: inline 400, choices kept
    r = client.post(f"/ui/scheduling/slots/{slot}/book", headers=h,
                    data={"q": "司马青", "record_id": rid, "exam_code": "ES_COLON", "channel": "kiosk"},
                    follow_redirects=False)
    assert r.status_code == 400 and "该号源不做此检查" in r.text
    assert 'value="kiosk" selected' in r.text and f'value="{rid}" id="pick-{rid}" checked' in r.text
    r = client.post(f"/ui/scheduling/slots/{slot}/book", headers=h,
                    data={"q": "司马青", "record_id": rid, "exam_code": "CT_HEAD", "channel": "clinic"},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith(f"/ui/scheduling/patients/{rid}/slip?a=")
    r = client.get(f"/ui/scheduling/slots/{slot}", headers=h)
    assert "司马青" in r.text and "签到" in r.text and "取消预约" in r.text
    # the slot is full now (one place): booking another patient is refused inline (409)
    other = register_patient(db, world.org_a, name="司马红", id_number=resident_id())
    r = client.post(f"/ui/scheduling/slots/{slot}/book", headers=h,
                    data={"q": "司马红", "record_id": other, "exam_code": "CT_HEAD", "channel": "clinic"},
                    follow_redirects=False)
    assert r.status_code == 409 and "号源已满" in r.text and 'value="司马红"' in r.text
    # a patient without a resident ID cannot be booked (real-name): inline 422
    no_id = register_patient(db, world.org_a, name="司马无证")
    r = client.post(f"/ui/scheduling/slots/{free[1]}/book", headers=h,
                    data={"q": "司马无证", "record_id": no_id, "exam_code": "CT_HEAD", "channel": "clinic"},
                    follow_redirects=False)
    assert r.status_code == 422 and "实名预约" in r.text


def test_started_slots_are_grey_and_cannot_be_booked(client, db, world, sched, h):
    now = utcnow()
    with db.session() as s:
        s.add(Slot(resource_id=sched.ct, organization_id=world.org_a, start=now - dt.timedelta(minutes=10),
                   end=now + dt.timedelta(minutes=10), capacity=2))
        s.commit()
    from onetrip.kit.clock import local_date

    r = client.get(f"/ui/scheduling/board?organization={world.org_a}&date={local_date(now - dt.timedelta(minutes=10))}", headers=h)
    assert r.status_code == 200
    started = re.findall(r'data-slot="([^"]+)" data-state="started"', r.text)
    assert started and "已开始" in r.text
    r = client.get(f"/ui/scheduling/slots/{started[0]}", headers=h)
    assert r.status_code == 200 and 'id="slot-book-form"' not in r.text and 'id="slot-search"' not in r.text
    rid = register_patient(db, world.org_a, name="晚到", id_number=resident_id())
    r = client.post(f"/ui/scheduling/slots/{started[0]}/book", headers=h,
                    data={"record_id": rid, "exam_code": "CT_HEAD", "channel": "clinic"}, follow_redirects=False)
    assert r.status_code == 409 and 'id="sched-error"' in r.text  # the service's reason, on the slot's page


def test_cross_site_posts_are_refused(client, db, world, sched, h):
    rid = _patient_with_orders(db, world.org_a, ["CT_CHEST"])
    r = client.get(f"/ui/scheduling/patients/{rid}", headers=h)
    items = re.findall(r'name="item" value="([^"]+)"', r.text)
    evil = {**h, "Origin": "https://evil.example"}
    r = client.post(f"/ui/scheduling/patients/{rid}/book", headers=evil, data={"item": items, "channel": "clinic"},
                    follow_redirects=False)
    assert r.status_code == 403 and "text/html" in r.headers["content-type"]
    with db.session() as s:
        assert s.query(Appointment).filter_by(patient_record_id=rid).count() == 0
    slot = items[0].split("|")[0]
    for url, data in ((f"/ui/scheduling/slots/{slot}/book", {"record_id": rid, "exam_code": "CT_CHEST"}),
                      ("/ui/scheduling/appointments/x/cancel", {"reason": "clinical"}),
                      ("/ui/scheduling/appointments/x/check-in", {}),
                      ("/ui/scheduling/appointments/x/reschedule", {"slot_id": slot})):
        r = client.post(url, headers=evil, data=data, follow_redirects=False)
        assert r.status_code == 403, url
    # the same origin is fine
    same = {**h, "Origin": "http://testserver"}
    r = client.post(f"/ui/scheduling/patients/{rid}/book", headers=same, data={"item": items, "channel": "clinic"},
                    follow_redirects=False)
    assert r.status_code == 303


def test_bad_input_is_a_4xx_page_not_a_500(client, db, world, sched, h):
    rid = _patient_with_orders(db, world.org_a, ["CT_HEAD"])
    cases = [
        ("get", "/ui/scheduling/slots/nope", None, 404),
        ("get", "/ui/scheduling/appointments/nope/slip", None, 404),
        ("get", "/ui/scheduling/appointments/nope/reschedule", None, 404),
        ("get", "/ui/scheduling/patients/nope", None, 404),
        ("get", "/ui/scheduling/patients/nope/slip", None, 404),
        ("get", f"/ui/scheduling/patients/{rid}/slip?a=nope", None, 404),
        ("post", "/ui/scheduling/appointments/nope/cancel", {"reason": "clinical"}, 404),
        ("post", "/ui/scheduling/appointments/nope/check-in", {}, 404),
        ("post", "/ui/scheduling/appointments/nope/no-show", {}, 404),
        ("post", "/ui/scheduling/slots/nope/book", {"record_id": rid}, 404),
        ("get", "/ui/scheduling/board?date=not-a-date", None, 400),
    ]
    for method, url, data, status in cases:
        r = client.request(method.upper(), url, headers=h, data=data, follow_redirects=False)
        assert r.status_code == status, (url, r.status_code, r.text[:300])
    # book with nothing chosen / a forged item: the screen with the reason, the channel kept
    r = client.post(f"/ui/scheduling/patients/{rid}/book", headers=h, data={"channel": "kiosk"},
                    follow_redirects=False)
    assert r.status_code == 400 and "没有要预约的项目" in r.text and 'value="kiosk" selected' in r.text
    r = client.post(f"/ui/scheduling/patients/{rid}/book", headers=h, data={"item": ["nope|CT_HEAD|"],
                                                                           "channel": "web"}, follow_redirects=False)
    assert r.status_code == 400 and 'value="web" selected' in r.text
    # an unknown exam typed in: said beside the box, what was typed kept
    r = client.get(f"/ui/scheduling/patients/{rid}?exams=CT_HEAD,BOGUS", headers=h)
    assert r.status_code == 400 and 'id="exams-error"' in r.text and 'value="CT_HEAD,BOGUS"' in r.text
    # a user of another institution cannot open the screen of this one's patient
    other = auth(token(client, world.users["doc_b"]))
    r = client.get(f"/ui/scheduling/patients/{rid}", headers=other)
    assert r.status_code == 403 and "text/html" in r.headers["content-type"]
