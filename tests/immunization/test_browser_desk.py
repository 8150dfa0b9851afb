"""Browser (issue 20 acceptance): the whole desk flow with typed scanner input — a keyboard-wedge scanner types
the certificate QR and Enter, the contraindication answers, the vaccine's trace code and Enter — every check
ticked, the dose recorded, ending on the observation board; then the refusals shown at the desk (the same
package again: beyond its doses; the next HepB dose too early: interval)."""

from __future__ import annotations

import datetime as dt

import pytest

from onetrip.auth.service import create_user
from onetrip.immunization import service
from onetrip.immunization.schemas import InboundIn
from onetrip.kit import clock
from onetrip.kit.principal import cli_principal
from tests.browser_kit import shot, sign_in
from tests.factories import PASSWORD, register_patient

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def scene(db, world, schedule_seeded):
    today = clock.local_date(clock.utcnow())
    username = f"vacweb{world.org_a_code}"
    with db.session() as s:
        create_user(s, username, PASSWORD, ["vaccinator"], "接种员乙", world.org_a)
        service.receive_lot(s, cli_principal(), InboundIn(
            organization_id=world.org_a, vaccine_code="HepB", product_name="重组乙型肝炎疫苗（酿酒酵母）10μg",
            holder="示例生物制品有限公司", specification="0.5 mL/支", doses_per_package=1, lot_number="B2026-118",
            expiry=today + dt.timedelta(days=300),
            trace_codes=["81234567890123456701", "81234567890123456702"]))
        s.commit()
    a = register_patient(db, world.org_a, name="周小米", sex="2", birth_date=today - dt.timedelta(days=75))
    b = register_patient(db, world.org_a, name="吴小麦", sex="1", birth_date=today - dt.timedelta(days=80))
    return {"user": username, "a": a, "b": b}


def scan(page, selector: str, text: str) -> None:
    """What a keyboard-wedge scanner does: type the characters into the focused field, then Enter."""
    page.focus(selector)
    page.keyboard.type(text, delay=5)
    page.keyboard.press("Enter")


def answer_no(page) -> None:
    for radio in page.locator("#desk-check-form input[type=radio][value=no]").all():
        radio.check()


def test_scan_to_vaccinate_ends_on_the_observation_board(browser_page, db_kind, scene):
    page = browser_page
    sign_in(page, scene["user"])
    page.goto(f"/ui/immunization/certificate/{scene['a']}")
    qr_text = page.inner_text("#certificate-qr-text").strip()
    assert page.locator("#certificate svg").count() == 1

    page.goto("/ui/immunization/desk")
    with page.expect_navigation():
        scan(page, "#desk-child", qr_text)
    due = page.locator("#desk-due tr.due-row[data-vaccine=HepB]")
    assert due.count() == 1 and due.get_attribute("data-dose") == "1"
    answer_no(page)
    with page.expect_navigation():
        scan(page, "#desk-code", "81234567890123456701")
    assert page.locator("#desk-verdict").get_attribute("data-ok") == "yes"
    keys = [li.get_attribute("data-key") for li in page.locator("#desk-checks li[data-ok=yes]").all()]
    assert keys == ["code", "package", "lot", "expiry", "patient", "vaccine", "interval", "contraindications"]
    page.select_option("#desk-site", "right-thigh")
    page.select_option("#desk-route", "IM")
    shot(page, "immunization-desk", db_kind, docs="immunization-desk.png")
    page.click("#desk-record")
    page.wait_for_url("**/ui/immunization/observation*")
    row = page.locator("#observation-board tr.obs-row.new")
    assert row.count() == 1 and int(row.get_attribute("data-minutes")) == 30
    assert "周" in row.inner_text() and "周小米" not in row.inner_text()  # masked on the board
    shot(page, "immunization-observation", db_kind, docs="immunization-observation.png")

    # The same package for another child: its one dose is used — refused with the reason.
    page.goto("/ui/immunization/desk")
    with page.expect_navigation():
        scan(page, "#desk-child", scene["b"])
    answer_no(page)
    with page.expect_navigation():
        scan(page, "#desk-code", "81234567890123456701")
    assert page.locator("#desk-verdict").get_attribute("data-ok") == "no"
    failed = page.locator("#desk-checks li[data-ok=no]")
    assert failed.count() == 1 and failed.get_attribute("data-key") == "package"
    assert "已全部使用" in failed.inner_text()
    assert page.locator("#desk-record").count() == 0

    # The first child's next HepB dose today: too early (R6.2 28 days) — refused with the earliest date.
    page.goto("/ui/immunization/desk")
    with page.expect_navigation():
        scan(page, "#desk-child", qr_text)
    answer_no(page)
    with page.expect_navigation():
        scan(page, "#desk-code", "8123 4567 8901 2345 6702")  # a scanner that prints groups: spaces ignored
    failed = page.locator("#desk-checks li[data-ok=no]")
    assert failed.count() == 1 and failed.get_attribute("data-key") == "interval"
    assert "最早接种日期" in failed.inner_text()
    assert not page.console_errors
