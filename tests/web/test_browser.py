"""The web UI in a real browser: Debian's Chromium driven by Playwright against the app served by uvicorn.

Needs the system Chromium (``apt-get install chromium``); Playwright's own browser downloads are not used
(hospital build machines have no internet). Without Chromium the test is skipped — with CI=true it fails.

Set ONETRIP_DOCS_SCREENSHOTS=1 to also refresh the screenshots in docs/img/ used by docs/web.md.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from onetrip.kit.identifiers import make_resident_id
from onetrip.kit.masking import mask_id_number
from tests.factories import PASSWORD, register_patient

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
DOCS_IMG = ROOT / "docs" / "img"
IN_CI = os.environ.get("CI", "").lower() == "true"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
HOWTO = ("browser test skipped: no system Chromium found. Install it with `apt-get install chromium` "
         "(Playwright's `playwright install` is not used: no browser downloads on the intranet).")


def chromium_path() -> str | None:
    found = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def chromium() -> str:
    path = chromium_path()
    if path is None:
        if IN_CI:
            pytest.fail("CI=true but " + HOWTO)
        pytest.skip(HOWTO)
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        if IN_CI:
            pytest.fail("CI=true but the playwright package is missing: pip install -e '.[test]'")
        pytest.skip("playwright is not installed: pip install -e '.[test]'")
    return path


@pytest.fixture(scope="module")
def live_server(db) -> Iterator[str]:
    """The real application on 127.0.0.1:<free port>, in a background thread, against this module's db."""
    import uvicorn

    from onetrip.app import create_app
    from onetrip.config import Settings

    app = create_app(Settings(database_url=db.url), factory=db.factory)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser_page(chromium, live_server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN",
                                      base_url=live_server)
        page = context.new_page()
        page.set_default_timeout(15_000)
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.console_errors = errors  # type: ignore[attr-defined]
        yield page
        context.close()
        browser.close()


def shot(page, name: str, db_kind: str, *, docs: str | None = None) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}-{db_kind}.png"
    page.screenshot(path=str(path), full_page=True)
    if docs and os.environ.get("ONETRIP_DOCS_SCREENSHOTS") and db_kind == "sqlite":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOCS_IMG / docs), full_page=False)
    return path


def sign_in(page, username: str) -> None:
    page.goto("/ui/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit].primary")
    page.wait_for_url("**/ui/")


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
    expect(page.locator("#timeline")).to_contain_text("检查检验结果将在此显示")
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
