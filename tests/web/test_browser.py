"""The web UI in a real browser: Debian's Chromium driven by Playwright against the app served by uvicorn.

Needs the system Chromium (``apt-get install chromium``); Playwright's own browser downloads are not used
(hospital build machines have no internet). Fixtures live in tests/browser_kit.py.

Set ONETRIP_DOCS_SCREENSHOTS=1 to also refresh the screenshots in docs/img/ used by docs/web.md.
"""

from __future__ import annotations

import datetime as dt

import pytest

from onetrip.kit.identifiers import make_resident_id
from onetrip.kit.masking import mask_id_number
from tests.browser_kit import shot, sign_in
from tests.factories import register_patient

pytestmark = pytest.mark.browser


def test_search_and_open_a_patient(browser_page, db, db_kind, world):
    from playwright.sync_api import expect

    page = browser_page
    page.console_errors.clear()
    idn = make_resident_id("110101", dt.date(1975, 8, 2), 246)
    rec = register_patient(db, world.org_a, name="林美华", id_number=idn, phone="+8613812345678",
                           mrn="BR-0001", sex="2")
    register_patient(db, world.org_a, name="林建国", mrn="BR-0002", sex="1", birth_date=dt.date(1950, 1, 9))

    sign_in(page, world.users["doc_a"])
    expect(page.locator("header")).to_contain_text("OneTrip 医共体平台")
    expect(page.locator("header")).to_contain_text("测试总院")

    page.click("nav.mainnav >> text=患者")
    page.wait_for_url("**/ui/patients")
    page.locator("#q").press_sequentially("林", delay=60)  # live search: no Enter
    results = page.locator("#patient-results")
    expect(results).to_contain_text("林美华")
    expect(results).to_contain_text("林建国")
    expect(results).to_contain_text(mask_id_number(idn))
    assert idn not in page.content()
    shot(page, "patient-search", db_kind, docs="patient-search.png")

    page.locator("#q").press_sequentially("美", delay=60)
    expect(results).not_to_contain_text("林建国")
    page.click("#patient-results >> text=林美华")
    page.wait_for_url(f"**/ui/patients/{rec}")
    expect(page.locator("#patient-name")).to_have_text("林美华")
    expect(page.locator("#timeline #results-link")).to_contain_text("跨机构检查检验结果与趋势")
    expect(page.locator("#id-number")).to_have_text(mask_id_number(idn))
    path = shot(page, "patient-page", db_kind, docs="patient-page.png")
    assert path.exists() and path.stat().st_size > 10_000

    # reveal the ID on demand (an audited read, swapped in by HTMX)
    page.click("#id-number + a")
    expect(page.locator(".revealed").first).to_have_text(idn)

    # English on request
    page.click("header a.lang")
    expect(page.locator("#patient-name")).to_have_text("林美华")
    expect(page.locator("h2").first).to_have_text("Demographics")
    page.click("header a.lang")
    expect(page.locator("h2").first).to_have_text("基本信息")

    page.click("nav.mainnav >> text=机构目录")
    expect(page.locator(".tree").first).to_contain_text("医共体总院")
    shot(page, "directory", db_kind)
    assert not page.console_errors, page.console_errors  # no CSP violations, no script errors


def test_break_the_glass_in_the_browser(browser_page, db, db_kind, world):
    from playwright.sync_api import expect

    page = browser_page
    page.console_errors.clear()
    rec = register_patient(db, world.org_a, name="周晓梅", mrn="BR-0003",
                           id_number=make_resident_id("110101", dt.date(1968, 4, 21), 358))
    page.context.clear_cookies()
    sign_in(page, world.users["doc_b"])
    response = page.goto(f"/ui/patients/{rec}")
    assert response is not None and response.status == 403
    page.console_errors.clear()  # Chromium logs the (expected) 403 of the document itself
    expect(page.locator("#break-glass-form")).to_be_visible()
    page.fill("#break-glass-form textarea[name=reason_text]", "急诊抢救，患者昏迷，需要既往病史")
    shot(page, "break-glass", db_kind, docs="break-glass.png")
    page.click("#break-glass-form button[type=submit]")
    page.wait_for_url(f"**/ui/patients/{rec}")
    expect(page.locator("#glass-banner")).to_be_visible()
    expect(page.locator("#patient-name")).to_have_text("周晓梅")

    page.context.clear_cookies()
    sign_in(page, world.users["admin"])
    page.goto("/ui/audit")
    expect(page.locator("#break-glass-reviews")).to_contain_text("急诊抢救")
    page.click("text=校验审计链")
    expect(page.locator("#verify-result")).to_contain_text("审计链完整")
    shot(page, "audit", db_kind, docs="audit-log.png")
    assert not page.console_errors, page.console_errors
