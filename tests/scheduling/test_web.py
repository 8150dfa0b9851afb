"""The scheduling pages: board (day and week), booking screen with the itinerary and its reasons, booking
from the screen, the printable slip."""

from __future__ import annotations

import pytest

from tests.scheduling.conftest import admin_headers, build_sched, patient


@pytest.fixture(scope="module")
def sched(db, world):
    return build_sched(db, world.org_a, days=10)


def test_board_patient_screen_book_and_slip(client, db, world, sched):
    h = admin_headers(client, world)
    client.cookies.set("lang", "en")  # the assertions below read the English UI; Chinese is the default
    r = client.get(f"/ui/scheduling/board?organization={world.org_a}&date={sched.day}", headers=h)
    assert r.status_code == 200 and "Slot board" in r.text and "08:00–08:20" in r.text
    r = client.get(f"/ui/scheduling/board?organization={world.org_a}&date=2026-09-28&view=week", headers=h)
    assert r.status_code == 200 and "National Day" in r.text
    pid = patient(db, world.org_a)
    r = client.get(f"/ui/scheduling/patients/{pid}?exams=ES_GASTRO,US_ABD", headers=h)
    assert r.status_code == 200 and "Why this order" in r.text and "endoscopy gas spoils ultrasound" in r.text
    import re

    items = re.findall(r'name="item" value="([^"]+)"', r.text)
    assert len(items) == 2
    r = client.post(f"/ui/scheduling/patients/{pid}/book", headers=h, data={"item": items, "channel": "clinic"},
                    follow_redirects=False)
    assert r.status_code == 303, r.text
    page = client.get(f"/ui/scheduling/patients/{pid}", headers=h).text
    slip_url = re.findall(r'href="(/ui/scheduling/appointments/[^"]+/slip)"', page)[0]
    r = client.get(slip_url, headers=h)
    assert r.status_code == 200 and "Preparation" in r.text and "禁食" in r.text
    # booking the same slots again: the places are gone → an error page, not a traceback
    r = client.post(f"/ui/scheduling/patients/{patient(db, world.org_a)}/book", headers=h,
                    data={"item": items, "channel": "clinic"}, follow_redirects=False)
    assert r.status_code == 409 and "text/html" in r.headers["content-type"]
    client.cookies.delete("lang")


def test_board_is_chinese_by_default(client, world, sched):
    from tests.factories import auth, token

    client.cookies.clear()
    r = client.get("/ui/scheduling/board", headers=auth(token(client, world.users["admin"])))
    assert r.status_code == 200 and "号源看板" in r.text and "Slot board" not in r.text
