"""Browser (issue 6 acceptance): a branch doctor sends an upward referral with a reserved slot; a
lead-hospital user sees it in the 基层科 worklist (badge, SLA timer), accepts it and sees the package,
including the shared results that become readable on acceptance."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from onetrip.kit.principal import cli_principal
from onetrip.records import service as records
from onetrip.records.schemas import ObservationIn, ReportIn
from tests.browser_kit import shot, sign_in
from tests.referral.conftest import resident_id
from tests.scheduling.conftest import build_sched

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def scene(db, world, pcd):
    from tests.factories import register_patient

    build_sched(db, world.org_a, capacity=4, share=0.25, days=7)
    rec = register_patient(db, world.org_b, name="钱卫东", id_number=resident_id(), phone="13912345678")
    when = dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
    with db.session() as s:
        records.store_report(s, cli_principal(), ReportIn(
            organization_id=world.org_b, patient_record_id=rec, identifier_system="urn:test:lis",
            identifier_value=uuid.uuid4().hex, category="lab", section="chemistry", code="24323-8",
            code_system="http://loinc.org", display="心肌酶谱", effective_at=when, issued=when,
            conclusion="肌钙蛋白轻度升高",
            observations=[ObservationIn(identifier_system="urn:test:lis.obs", identifier_value=uuid.uuid4().hex,
                                        code="6598-7", value_quantity=0.08, unit="ng/mL")]))
        s.commit()
    return rec


def test_branch_sends_upward_with_reserved_slot_and_lead_accepts_and_sees_the_package(browser_page, db, db_kind,
                                                                                        world, scene):
    page = browser_page
    sign_in(page, world.users["doc_b"])
    page.goto("/ui/referrals/new?direction=up")
    page.fill("#ref-q", "钱卫东")
    page.keyboard.press("Enter")
    page.click("text=钱卫东")
    page.wait_for_selector("#referral-form")
    page.check("input[name=criteria][value=U5]")
    page.fill("#ref-reason", "胸闷两周，肌钙蛋白轻度升高，需上级医院进一步检查")
    page.select_option("#ref-dx", ["R07.400", "I10.x00"])
    page.fill("textarea[name=history_summary]", "高血压病史5年")
    page.fill("textarea[name=medications]", "苯磺酸氨氯地平片 5mg qd")
    options = page.locator("#ref-slot option").all()
    assert len(options) > 1, "the lead hospital has reserved slots for referrals"
    page.select_option("#ref-slot", index=1)
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, "referral-send", db_kind, docs="referral-send.png")
    page.click("#ref-send")
    page.wait_for_url("**/ui/referrals/*")
    assert page.locator(".ref-status").first.get_attribute("data-status") == "submitted"
    assert page.locator("text=预留号源").count() >= 1
    referral_url = page.url

    page.context.clear_cookies()
    sign_in(page, world.users["doc_a"])
    page.wait_for_selector(".ref-badge-count")
    assert int(page.locator(".ref-badge-count").first.get_attribute("data-new")) >= 1
    page.goto("/ui/referrals")
    row = page.locator("#referral-worklist tr.ref-row", has_text="钱卫东")
    assert row.count() == 1
    assert row.locator(".ref-sla").get_attribute("data-sla") == "ok"
    shot(page, "referral-worklist", db_kind, docs="referral-worklist.png")
    row.locator("a").first.click()
    page.wait_for_url(referral_url)
    # Before acceptance the referral itself is readable and can be accepted or rejected. (The booked
    # reserved slot is already an appointment — a care relationship of its own under A5 — so the shared
    # results show at once here; without a slot they wait for acceptance: test_access_followup.py.)
    assert page.locator("#act-reject").count() == 1
    page.click("#act-accept")
    page.wait_for_url(referral_url)
    assert page.locator(".ref-status").first.get_attribute("data-status") == "scheduled"
    pkg = page.locator("#referral-package").inner_text()
    assert "钱卫东" in pkg and "139****5678" in pkg
    results = page.locator("#referral-results").inner_text()
    assert "肌钙蛋白轻度升高" in results and "心肌酶谱" in results
    assert "R07.400" in page.content() and "苯磺酸氨氯地平片" in page.content()
    shot(page, "referral-accepted", db_kind, docs="referral-detail.png")
    page.goto(referral_url + "/letter")
    assert "双向转诊" in page.content() and "139****5678" in page.inner_text("body")
    shot(page, "referral-letter", db_kind, docs="referral-letter.png")
    assert not page.console_errors
