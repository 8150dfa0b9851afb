"""Browser: an administrator opens 通知推送, filters the delivery log to dead letters, presses 重发 (redeliver)
and, once the dispatcher ran, sees the delivery as delivered with its attempts."""

from __future__ import annotations

import pytest

from onetrip.notify.dispatcher import Dispatcher
from tests.browser_kit import shot, sign_in
from tests.notify.conftest import FAST, emit, set_rules, subscribe
from tests.notify.receiver import Receiver

pytestmark = pytest.mark.browser


def test_admin_redelivers_a_dead_letter_from_the_page(browser_page, db, db_kind, world):
    page = browser_page
    set_rules(db, **{**FAST, "max_attempts": 2})
    receiver = Receiver().start()
    receiver.status = 503
    try:
        _, receiver.secret = subscribe(db, receiver.url, events=["browser.*"], name="区域平台接收")
        [event_id] = emit(db, 1, "browser.check")
        d = Dispatcher(db.factory)
        d.run_once()
        import time
        time.sleep(0.6)  # the back-off before the second attempt
        d.run_once()
        sign_in(page, world.users["admin"])
        page.click("nav.mainnav >> text=通知推送")
        page.wait_for_url("**/ui/notify")
        assert page.locator("#notify-subscriptions").inner_text().count("区域平台接收") == 1
        page.select_option("#delivery-filters select[name=status]", "dead")
        page.click("#delivery-filters button[type=submit]")
        page.wait_for_url("**status=dead**")
        row = page.locator(f"#notify-deliveries tr[data-event-id='{event_id}']")
        assert row.get_attribute("data-status") == "dead"
        assert "死信" in row.inner_text() and row.inner_text().count("HTTP 503") == 1
        shot(page, "notify-dead-letters", db_kind, docs="notify.png")
        receiver.status = 200
        row.locator("button", has_text="重发").click()
        page.wait_for_url("**status=dead**")
        d.run_once()
        d.close()
        assert event_id in receiver.processed
        page.goto(f"/ui/notify?event_id={event_id}")
        page.locator(f"#notify-deliveries tr[data-event-id='{event_id}'] a").click()
        assert page.locator("#delivery-status").get_attribute("data-status") == "delivered"
        assert page.locator("#delivery-status").inner_text() == "已送达"
        attempts = page.locator("#delivery-attempts tbody tr")
        assert attempts.count() == 3 and "HTTP 200" in attempts.nth(2).inner_text()
        shot(page, "notify-delivery", db_kind)
        assert not page.console_errors
    finally:
        receiver.stop()
