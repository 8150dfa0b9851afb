"""Browser (issue 20 point 6): a vaccinator creates the influenza campaign on the page, invites the eligible
residents, gives one resident the influenza dose at the desk with typed scanner input, and the programme page's
coverage moves."""

from __future__ import annotations

import datetime as dt

import pytest

from onetrip.auth.service import create_user
from onetrip.identity import service as identity
from onetrip.identity.schemas import PatientInput
from onetrip.immunization import service
from onetrip.immunization.schemas import InboundIn
from onetrip.kit import clock
from onetrip.kit.principal import cli_principal
from tests.browser_kit import sign_in
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser
TOWN = "柳林镇"


@pytest.fixture(scope="module")
def scene(db, world, schedule_seeded):
    today = clock.local_date(clock.utcnow())
    username = f"vacflu{world.org_a_code}"
    with db.session() as s:
        create_user(s, username, PASSWORD, ["vaccinator"], "接种员丙", world.org_a)
        service.receive_lot(s, cli_principal(), InboundIn(
            organization_id=world.org_a, vaccine_code="IIV", product_name="流感病毒裂解疫苗",
            holder="示例生物制品有限公司", specification="0.5 mL/支", doses_per_package=1, lot_number="F2026-07",
            expiry=today + dt.timedelta(days=200), trace_codes=["61234567890123456701"]))
        ids = [identity.register(s, cli_principal(), PatientInput(
            organization_id=world.org_a, mrn=f"FLU{world.org_a_code}{i}", name=name, sex=sex, birth_date=birth,
            phone=phone, street=TOWN)).id
            for i, (name, sex, birth, phone) in enumerate((
                ("郑老伯", "1", dt.date(1948, 4, 2), "13700137001"),
                ("冯阿姨", "2", dt.date(1958, 6, 9), "13700137002"),
                ("陈青年", "1", dt.date(1995, 1, 1), "13700137003")))]
        s.commit()
    return {"user": username, "elder": ids[0], "today": today}


def scan(page, selector: str, text: str) -> None:
    page.focus(selector)
    page.keyboard.type(text, delay=5)
    page.keyboard.press("Enter")


def test_campaign_page_invite_desk_dose_and_coverage(browser_page, scene):
    page = browser_page
    sign_in(page, scene["user"])
    page.goto("/ui/immunization/programmes")
    page.fill("#programme-code", "FLU-BROWSER")
    page.fill("#programme-name-zh", "老年人流感疫苗免费接种")
    page.fill("#programme-name-en", "Free influenza vaccination for elderly residents")
    page.fill("#programme-township", TOWN)
    page.fill("#programme-start", (scene["today"] - dt.timedelta(days=1)).isoformat())
    page.fill("#programme-end", (scene["today"] + dt.timedelta(days=60)).isoformat())
    with page.expect_navigation():
        page.click("#programme-create")
    assert page.locator("#programme-eligible tr.eligible-row").count() == 2  # the two aged 60 or more
    assert page.inner_text("#programme-coverage .cov-eligible").strip() == "2"
    with page.expect_navigation():
        page.click("#programme-invite")
    assert page.locator("#invite-result").count() == 1
    assert page.inner_text("#programme-coverage .cov-notified").strip() == "2"
    programme_url = page.url.split("?")[0]

    page.goto("/ui/immunization/desk")
    with page.expect_navigation():
        scan(page, "#desk-child", scene["elder"])
    assert page.locator("#desk-due tr.due-row[data-vaccine=IIV]").count() == 1
    for radio in page.locator("#desk-check-form input[type=radio][value=no]").all():
        radio.check()
    with page.expect_navigation():
        scan(page, "#desk-code", "61234567890123456701")
    assert page.locator("#desk-verdict").get_attribute("data-ok") == "yes"
    page.select_option("#desk-site", "left-deltoid")
    page.select_option("#desk-route", "IM")
    page.click("#desk-record")
    page.wait_for_url("**/ui/immunization/observation*")

    page.goto(programme_url)
    assert page.inner_text("#programme-coverage .cov-vaccinated").strip() == "1"
    assert page.inner_text("#programme-coverage .cov-percent").strip() == "50.0 %"
    assert page.locator("#programme-eligible tr[data-invitation=vaccinated]").count() == 1
