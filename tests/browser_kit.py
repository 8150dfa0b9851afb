"""Browser-test kit: Debian's Chromium driven by Playwright against the real app served by uvicorn.

The fixtures (``chromium``, ``live_server``, ``browser_page``) are registered for every test by
tests/conftest.py; test modules import the helpers: ``from tests.browser_kit import shot, sign_in``.

Needs the system Chromium (``apt-get install chromium``); Playwright's own browser downloads are not used
(hospital build machines have no internet). Without Chromium the tests are skipped — with CI=true they fail.
Set ONETRIP_DOCS_SCREENSHOTS=1 to also refresh the screenshots in docs/img/ used by the docs pages.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.factories import PASSWORD, totp_code

ROOT = Path(__file__).resolve().parents[1]
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
    """Sign in through the form; a privileged user goes through the second step (or enrols on first use)."""
    page.goto("/ui/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():  # to /ui/, or (privileged) the second step on /ui/login
        page.click("button[type=submit].primary")
    if page.locator("#totp-secret").count():  # first sign-in of a privileged user: enrol
        import pyotp

        secret = page.inner_text("#totp-secret").replace(" ", "")
        page.fill("input[name=totp]", pyotp.TOTP(secret).at(time.time() - 30))  # the previous step's code
        page.click("button[type=submit].primary")
        page.click("#continue")
    elif page.locator("form[action='/ui/login/totp']").count():
        page.fill("input[name=totp]", totp_code(username))
        page.click("button[type=submit].primary")
    page.wait_for_url("**/ui/")
