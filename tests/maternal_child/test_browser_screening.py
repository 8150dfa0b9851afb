"""Browser (issue 21 point 5): an 妇幼保健医生 creates a 两癌 screening campaign on the page, invites the eligible
women, records a positive breast result (BI-RADS 5, 40 days ago) with one inline error first, finds her on the
overdue worklist marked in words, and records the diagnosis from the worklist."""

from __future__ import annotations

import datetime as dt

import pytest

from onetrip.auth.service import create_user
from onetrip.identity import service as identity
from onetrip.identity.schemas import PatientInput
from onetrip.kit import clock
from onetrip.kit.principal import cli_principal
from tests.browser_kit import sign_in
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser
TOWN = "桃源镇"


@pytest.fixture(scope="module")
def scene(db, world):
    today = clock.local_date(clock.utcnow())
    username = f"mchscr{world.org_a_code}"
    with db.session() as s:
        create_user(s, username, PASSWORD, ["mch_doctor"], "妇幼医生丙", world.org_a)
        for i, (name, sex, birth, phone) in enumerate((
                ("何秀英", "2", dt.date(1970, 4, 2), "13700137101"),
                ("林美玲", "2", dt.date(1985, 6, 9), "13700137102"),
                ("何建军", "1", dt.date(1970, 1, 1), "13700137103"),
                ("吴小妹", "2", dt.date(2001, 1, 1), "13700137104"))):
            identity.register(s, cli_principal(), PatientInput(
                organization_id=world.org_a, mrn=f"SCR{world.org_a_code}{i}", name=name, sex=sex, birth_date=birth,
                phone=phone, street=TOWN))
        s.commit()
    return {"user": username, "today": today}


def test_campaign_results_and_overdue_worklist(browser_page, scene):
    page, today = browser_page, scene["today"]
    sign_in(page, scene["user"])
    page.goto("/ui/maternal-child/screening")
    page.fill("#campaign-code", "LA-BROWSER")
    page.fill("#campaign-name", "两癌免费筛查")
    page.fill("#campaign-township", TOWN)
    page.fill("#campaign-start", (today - dt.timedelta(days=60)).isoformat())
    page.fill("#campaign-end", (today + dt.timedelta(days=60)).isoformat())
    with page.expect_navigation():
        page.click("#campaign-create")
    assert page.locator("#screening-eligible tr.eligible-row").count() == 2  # the two women 35–64
    with page.expect_navigation():
        page.click("#screening-invite")
    assert page.locator("#invite-result").count() == 1
    assert page.inner_text("#screening-figures .fig-invited").strip() == "2"

    page.select_option("#result-person", index=1)
    page.fill("#result-birads", "5")
    page.fill("#result-breast-date", (today + dt.timedelta(days=3)).isoformat())  # in the future: refused
    with page.expect_navigation():
        page.click("#result-save")
    assert page.locator("#result-error").get_attribute("data-field") == "breast_date"
    assert page.input_value("#result-birads") == "5"  # what was typed is kept
    page.fill("#result-breast-date", (today - dt.timedelta(days=40)).isoformat())
    with page.expect_navigation():
        page.click("#result-save")
    assert page.locator("#result-saved").count() == 1
    assert page.inner_text("#screening-figures .fig-rate").strip() == "50.0 %"
    assert page.inner_text("#screening-figures .fig-overdue").strip() == "1"

    with page.expect_navigation():
        page.click("#link-overdue")
    row = page.locator("#screening-worklist tr.worklist-row[data-status=overdue]")
    assert row.count() == 1
    assert row.locator(".overdue-label").inner_text().strip() in ("⚠ 已逾期", "⚠ OVERDUE")  # words, not colour
    row.locator("input[name=diagnosis_date]").fill(today.isoformat())
    row.locator("select[name=diagnosis_result]").select_option("cancer")
    with page.expect_navigation():
        row.locator("button[type=submit]").click()
    assert page.locator("#worklist-empty").count() == 1  # diagnosed; the treatment is not yet due
