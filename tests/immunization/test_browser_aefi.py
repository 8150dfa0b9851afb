"""Browser (issue 20 point 5): from the observation board's "Report AEFI" link, the report form with one
error (the onset before the dose) shown inline keeping what was typed, fixed and saved; the report in the
worklist with its time left (2 h: a serious event), reported from its page, then listed as reported."""

from __future__ import annotations

import datetime as dt

import pytest

from onetrip.auth.service import create_user
from onetrip.immunization import service
from onetrip.immunization.schemas import InboundIn
from onetrip.kit import clock
from onetrip.kit.principal import cli_principal
from tests.browser_kit import shot, sign_in
from tests.factories import PASSWORD, auth, register_patient, token

pytestmark = pytest.mark.browser
NO = {"fever": False, "allergy": False, "immune": False, "neuro": False, "reaction": False}


@pytest.fixture(scope="module")
def scene(db, world, client, schedule_seeded):
    today = clock.local_date(clock.utcnow())
    username = f"vacaefi{world.org_a_code}"
    with db.session() as s:
        create_user(s, username, PASSWORD, ["vaccinator"], "接种员丙", world.org_a)
        service.receive_lot(s, cli_principal(), InboundIn(
            organization_id=world.org_a, vaccine_code="HepB", product_name="重组乙型肝炎疫苗（酿酒酵母）10μg",
            holder="示例生物制品有限公司", specification="0.5 mL/支", doses_per_package=1, lot_number="B2026-301",
            expiry=today + dt.timedelta(days=300), trace_codes=["61234567890123456701"]))
        s.commit()
    patient = register_patient(db, world.org_a, name="郑小雨", sex="2", birth_date=today - dt.timedelta(days=75))
    r = client.post("/api/immunization/desk/vaccinations", headers=auth(token(client, username)), json={
        "patient_id": patient, "trace_code": "61234567890123456701", "answers": NO, "site": "right-thigh",
        "route": "IM"})
    assert r.status_code == 201, r.text
    return {"user": username, "dose": r.json()}


def field(moment: dt.datetime) -> str:
    return moment.astimezone(clock.LOCAL_TZ).strftime("%Y-%m-%dT%H:%M")


def test_report_an_aefi_from_the_observation_board(browser_page, db_kind, scene):
    page = browser_page
    sign_in(page, scene["user"])
    page.goto("/ui/immunization/observation")
    link = page.locator(f"#observation-board tr.obs-row[data-id='{scene['dose']['id']}'] a.aefi-link")
    assert link.inner_text().strip() == "报告异常反应"
    link.click()
    page.wait_for_url("**/ui/immunization/aefi/new?vaccination=*")
    assert "HepB" in page.inner_text("#aefi-dose") or "乙肝" in page.inner_text("#aefi-dose")
    assert page.input_value("#aefi-vaccination") == scene["dose"]["id"]

    # One error: the onset typed a day before the dose — refused inline, everything typed kept.
    given = dt.datetime.fromisoformat(scene["dose"]["occurred_at"])
    page.fill("#aefi-onset", field(given - dt.timedelta(days=1)))
    page.fill("#aefi-discovered", field(clock.utcnow()))
    page.select_option("#aefi-severity", "serious")
    page.check("#aefi-symptoms input[value=fever]")
    page.check("#aefi-symptoms input[value=convulsion]")
    page.fill("#aefi-description", "接种后高热 39.2 °C，抽搐一次")
    with page.expect_navigation():
        page.click("#aefi-save")
    error = page.locator("#aefi-error")
    assert error.count() == 1 and "发生时间不能早于接种时间" in error.inner_text()
    assert error.get_attribute("data-field") == "onset_at"
    assert page.input_value("#aefi-description") == "接种后高热 39.2 °C，抽搐一次"
    assert page.input_value("#aefi-severity") == "serious"
    assert page.is_checked("#aefi-symptoms input[value=convulsion]")
    assert page.input_value("#aefi-vaccination") == scene["dose"]["id"]
    shot(page, "immunization-aefi-form-error", db_kind)
    assert [e for e in page.console_errors if "400" not in e] == []  # the refused form answers 400
    page.console_errors.clear()

    # Fixed: the onset after the dose; saved as a draft with its 2-hour deadline (serious).
    now = clock.utcnow()
    page.fill("#aefi-onset", field(max(now, given)))
    page.fill("#aefi-discovered", field(max(now, given)))
    with page.expect_navigation():
        page.click("#aefi-save")
    page.wait_for_url("**/ui/immunization/aefi/*")
    report = page.locator("#aefi-report")
    report_id = report.get_attribute("data-id")
    assert report.get_attribute("data-state") == "open"
    assert "剩余 1 小时" in page.inner_text("#aefi-left") or "剩余 2 小时 0 分钟" in page.inner_text("#aefi-left")

    page.goto("/ui/immunization/aefi")
    row = page.locator(f"#aefi-worklist tr.aefi-row[data-id='{report_id}']")
    assert row.count() == 1 and row.get_attribute("data-state") == "open"
    assert 0 < int(row.get_attribute("data-minutes")) <= 120
    assert "郑*" in row.inner_text() and "郑小雨" not in row.inner_text()  # masked in the list
    shot(page, "immunization-aefi-worklist", db_kind, docs="immunization-aefi.png")

    row.locator("a").click()
    page.wait_for_url(f"**/ui/immunization/aefi/{report_id}")
    with page.expect_navigation():
        page.click("#aefi-submit")
    assert page.locator("#aefi-report").get_attribute("data-state") == "reported"
    assert page.locator("#aefi-report").get_attribute("data-late") == "no"

    page.goto("/ui/immunization/aefi?status=reported")
    row = page.locator(f"#aefi-worklist tr.aefi-row[data-id='{report_id}']")
    assert row.count() == 1 and row.get_attribute("data-state") == "reported"
    assert not page.console_errors
