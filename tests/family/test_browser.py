"""In a real browser: a family doctor opens the overdue worklist, opens an overdue hypertensive patient,
records a follow-up with BP 185/112 and sees the urgent-referral draft, then opens it."""

from __future__ import annotations

import datetime as dt

import pytest

from onetrip.family import common
from onetrip.family.followups import service as followups
from onetrip.kit.principal import cli_principal
from tests.browser_kit import shot, sign_in
from tests.family.conftest import enrolled

pytestmark = pytest.mark.browser


def test_overdue_worklist_followup_and_urgent_referral(browser_page, db, db_kind, fam):
    from playwright.sync_api import expect

    page = browser_page
    page.console_errors.clear()
    pid, reg = enrolled(db, fam, enrolled_on=common.today() - dt.timedelta(days=300))
    with db.session() as s:  # last seen 4 months ago, controlled: due a month ago → overdue
        followups.record_followup(s, cli_principal(), reg, visit_date=common.today() - dt.timedelta(days=120),
                                sbp=134, dbp=84, adherence="regular")
        s.commit()

    sign_in(page, fam.username)
    page.click("nav.mainnav >> text=家庭医生")
    page.wait_for_url("**/ui/family/")
    expect(page.locator("h1")).to_contain_text("家庭医生团队")
    page.click("#overdue-link")
    page.wait_for_url("**/ui/family/worklist**")
    row = page.locator(f"#worklist a[href='/ui/family/patients/{pid}']")
    expect(row).to_have_count(1)
    shot(page, "family-worklist", db_kind, docs="family-worklist.png")
    row.click()
    page.wait_for_url(f"**/ui/family/patients/{pid}")
    expect(page.locator("#previsit")).to_be_visible()

    form = page.locator("#registry-hypertension form.followup-form")
    form.locator("input[name=sbp]").fill("185")
    form.locator("input[name=dbp]").fill("112")
    form.locator("select[name=adherence]").select_option("regular")
    form.locator("button[type=submit]").click()
    page.wait_for_url(f"**/ui/family/patients/{pid}?fu=*")
    expect(page.locator("#classification")).to_have_attribute("data-code", "urgent")
    expect(page.locator("#classification")).to_contain_text("紧急转诊")
    draft = page.locator("#referral-draft a")
    expect(draft).to_have_count(1)
    href = draft.get_attribute("href")
    assert href and href.startswith("/ui/referrals/")
    expect(page.locator("#referral-draft")).to_contain_text("草稿")
    shot(page, "family-urgent-referral", db_kind, docs="family-followup.png")
    draft.click()
    page.wait_for_url(f"**{href}")
    expect(page.locator("main")).to_contain_text("R3.4")  # the referral page shows the drafted reason
    assert not page.console_errors, page.console_errors
