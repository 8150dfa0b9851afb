"""Browser (issue 17 acceptance): a scheduler walks the booking flow — patient page → 安排检查 → the
suggestion with its sites → book all → the slip (masked name, Chinese status, QR) → cancel one → reschedule
the other — and books a patient from a free place on the slot board."""

from __future__ import annotations

import pytest

from onetrip.auth.service import create_user
from onetrip.kit.principal import cli_principal
from onetrip.scheduling import service
from tests.browser_kit import shot, sign_in
from tests.factories import PASSWORD, register_patient
from tests.scheduling.conftest import build_sched, resident_id

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def scene(db, world):
    sched = build_sched(db, world.org_a, capacity=2, days=10)
    rid = register_patient(db, world.org_a, name="欧阳春花", id_number=resident_id(), phone="13812345678")
    with db.session() as s:
        for code in ("US_ABD", "ES_GASTRO"):
            service.create_order(s, cli_principal(), rid, code)
        user = create_user(s, f"sched_browser_{world.org_a_code.lower()}", PASSWORD, ["scheduler"], "预约员小李",
                           world.org_a).username
        s.commit()
    return sched, rid, user


def test_scheduler_books_prints_cancels_and_reschedules(browser_page, db, db_kind, world, scene):
    sched, rid, user = scene
    page = browser_page
    sign_in(page, user)

    # the patient page: pending orders → 安排检查
    page.goto(f"/ui/patients/{rid}")
    orders = page.locator("#pending-orders").inner_text()
    assert "腹部" in orders
    page.click("#schedule-exams-link")
    page.wait_for_url(f"**/ui/scheduling/patients/{rid}")

    # the suggestion, with a site for each exam
    rows = page.locator("#suggestion tr.suggestion-row")
    assert rows.count() == 2
    for i in range(2):
        assert rows.nth(i).locator("td.site").inner_text().startswith("测试总院")
    assert "院区" in page.locator("#suggestion thead").inner_text()
    shot(page, "scheduling-suggestion", db_kind, docs="scheduling-suggestion.png")
    page.select_option("select[name=channel]", "phone")
    page.click("#book-all")
    page.wait_for_url("**/slip?a=*")

    # the slip: masked name, Chinese status, a QR per exam, preparation
    assert page.inner_text("#slip-name") == "欧***"
    assert "欧阳春花" not in page.inner_text("body")
    statuses = page.locator(".slip-status")
    assert statuses.count() == 2 and all(statuses.nth(i).inner_text() == "已预约" for i in range(2))
    assert page.locator("#slip svg.qr").count() == 2
    assert "男" in page.inner_text("#slip-sex-age") and "岁" in page.inner_text("#slip-sex-age")  # ID: male
    assert "禁食" in page.inner_text("#slip")
    assert "booked" not in page.inner_text("#slip") and "phone" not in page.inner_text("#slip")
    shot(page, "scheduling-slip", db_kind, docs="scheduling-slip.png")
    page.emulate_media(media="print")
    assert not page.locator(".topbar").first.is_visible()  # printed: the slip only
    shot(page, "scheduling-slip-print", db_kind)
    page.emulate_media(media="screen")

    # back to the booking screen: cancel the ultrasound's appointment with a reason
    page.goto(f"/ui/scheduling/patients/{rid}")
    us = page.locator("tr.appt-row[data-exam=US_ABD][data-status=booked]")
    us.locator("select[name=reason]").select_option("patient-request")
    us.locator("button.act-cancel").click()
    page.wait_for_url(f"**/ui/scheduling/patients/{rid}")
    cancelled = page.locator("tr.appt-row[data-exam=US_ABD][data-status=cancelled]")
    assert cancelled.count() == 1 and "已取消" in cancelled.inner_text() and "患者要求" in cancelled.inner_text()

    # reschedule the endoscopy: times breaking a rule are greyed; pick the first allowed one
    page.locator("tr.appt-row[data-exam=ES_GASTRO][data-status=booked] a.act-reschedule").click()
    page.wait_for_url("**/reschedule")
    choice = page.locator("#reschedule-form input[name=slot_id]:not([disabled])").first
    choice.check()
    page.click("#reschedule-submit")
    page.wait_for_url("**/slip?a=*")
    assert page.locator(".slip-item").count() == 1 and page.inner_text(".slip-status") == "已预约"
    page.goto(f"/ui/scheduling/patients/{rid}")
    assert page.locator("tr.appt-row[data-exam=ES_GASTRO][data-status=cancelled]").count() == 1  # the old one
    assert page.locator("tr.appt-row[data-exam=ES_GASTRO][data-status=booked]").count() == 1  # the new one
    shot(page, "scheduling-patient", db_kind, docs="scheduling-booking.png")

    # the slot board: click a free place → book a patient found by phone
    other = register_patient(db, world.org_a, name="司马青", id_number=resident_id(), phone="13712345670")
    page.goto(f"/ui/scheduling/board?organization={world.org_a}&date={sched.day}")
    page.locator("tr.slot-free a.slot-free").first.click()
    page.wait_for_url("**/ui/scheduling/slots/*")
    page.fill("#slot-q", "13712345670")
    page.keyboard.press("Enter")
    page.wait_for_selector(f"#pick-{other}")
    page.check(f"#pick-{other}")
    page.click("#slot-book-submit")
    page.wait_for_url(f"**/ui/scheduling/patients/{other}/slip?a=*")
    assert page.inner_text("#slip-name") == "司**"
    assert not page.console_errors
