"""Browser: an integration engineer filters the HL7 inbox to failed messages and re-runs one with the HTMX
button once its patient is registered; the row turns to processed in place."""

from __future__ import annotations

import pytest

from onetrip.auth.service import create_user
from tests.browser_kit import shot, sign_in
from tests.factories import PASSWORD, register_patient
from tests.hl7v2.test_inbox_web import _store_and_process
from tests.hl7v2.test_oru import oru_message

pytestmark = pytest.mark.browser


def test_rerun_a_failed_message_in_the_browser(browser_page, db, db_kind, world):
    failed = _store_and_process(db, oru_message(world.org_a_code, "BRW-ORU-1", mrn="BRW404", filler="BRWF1").encode())
    with db.session() as s:
        create_user(s, "integ_browser", PASSWORD, ["integration"], "接口工程师", world.org_a)
        s.commit()
    page = browser_page
    sign_in(page, "integ_browser")
    page.click("nav.mainnav >> text=HL7 收件箱")
    page.select_option("select[name=status]", "failed")
    page.click("#inbox-filter button[type=submit]")
    page.wait_for_url("**/ui/hl7/inbox?status=failed")
    row = page.locator(f"#msg-{failed}")
    assert "failed" in row.locator(".status").inner_text()
    assert "WEB404" not in row.inner_text() and "BRW404" in row.locator(".error").inner_text()
    shot(page, "hl7-inbox", db_kind, docs="hl7-inbox.png")
    register_patient(db, world.org_a, name="张三", mrn="BRW404")
    row.locator("button").click()
    page.locator(f"#msg-{failed} .status >> text=processed").wait_for()
    assert page.locator(f"#msg-{failed} form.rerun").count() == 0
    page.click(f"#msg-{failed} a")
    assert "ORU^R01" in page.locator("#message-facts").inner_text()
    assert "OBR|1|" in page.locator("#raw").inner_text()
    assert not page.console_errors, page.console_errors
