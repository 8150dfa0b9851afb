"""/docs (Swagger UI) and /redoc (ReDoc) work on an intranet (issue 25 point 7): every script, style and icon
they load comes from this server, so they render with the network to anything but 127.0.0.1 blocked."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from onetrip.app import create_app
from onetrip.config import Settings
from tests.browser_kit import ARTIFACTS
from tests.factories import auth, token

PROD_SECRET = "a-production-secret-for-tests-0123456789abcdef"
URL_IN_HTML = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|(?:url\(|["'])((?:https?:)?//[^"')\s]+)""")


def foreign_urls(html: str) -> list[str]:
    """Every URL in the page that names a host (http://…, https://…, //…): none may, the page must be local."""
    found = [a or b for a, b in URL_IN_HTML.findall(html)]
    return [u for u in found if urlsplit(u).netloc]


def viewport_shot(page, name: str, db_kind: str) -> None:
    # the viewport only: a full-page shot of a document this long outlasts the screenshot timeout
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}-{db_kind}.png"), full_page=False)


def local_assets(html: str) -> list[str]:
    return [a for a, _ in URL_IN_HTML.findall(html) if a.startswith("/")]


def test_foreign_url_detector_catches_a_cdn():
    # the check below is not vacuous: FastAPI's own default page (jsdelivr CDN) fails it
    from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html

    assert foreign_urls(get_swagger_ui_html(openapi_url="/openapi.json", title="x").body.decode())
    assert foreign_urls(get_redoc_html(openapi_url="/openapi.json", title="x").body.decode())


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_docs_pages_reference_only_local_files_in_development(client, path):
    r = client.get(path)
    assert r.status_code == 200
    assert foreign_urls(r.text) == []
    # and the browser is told to load nothing from another host (ReDoc's menu logo would come from a CDN)
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "img-src 'self' data: blob:;" in csp
    assets = local_assets(r.text)
    assert any(a.endswith(".js") for a in assets), assets
    for asset in assets:  # and each of them is served
        got = client.get(asset)
        assert got.status_code == 200, asset
        assert len(got.content) > 1000, asset


def test_docs_pages_reference_only_local_files_in_production_for_admins(db, world):
    app = create_app(Settings(database_url=db.url, env="production", secret_key=PROD_SECRET), factory=db.factory)
    with TestClient(app) as c:
        admin = auth(token(c, world.users["admin"]))
        doc = auth(token(c, world.users["doc_a"]))
        for path in ("/docs", "/redoc"):
            assert c.get(path).status_code in (401, 404), path
            assert c.get(path, headers=doc).status_code == 403, path
            r = c.get(path, headers=admin)
            assert r.status_code == 200, path
            assert foreign_urls(r.text) == [], path
            assert all(c.get(a).status_code == 200 for a in local_assets(r.text)), path


@pytest.mark.browser
def test_swagger_ui_and_redoc_render_with_the_network_blocked(browser_page, live_server, db_kind):
    page = browser_page
    local = urlsplit(live_server).hostname
    blocked: list[str] = []

    def only_local(route):
        url = route.request.url
        if urlsplit(url).hostname == local or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            blocked.append(url)
            route.abort()

    page.route("**/*", only_local)
    try:
        page.goto("/docs")
        page.wait_for_selector(".swagger-ui .opblock", timeout=30_000)
        assert page.locator(".swagger-ui .opblock").count() > 20
        paths = page.locator(".opblock-summary-path").all_inner_texts()
        assert any("/healthz" in p for p in paths)
        assert "OneTrip" in page.locator(".swagger-ui .info .title").inner_text()
        viewport_shot(page, "docs-swagger-offline", db_kind)

        page.goto("/redoc")
        page.wait_for_selector("[data-section-id^='operation']", state="attached", timeout=30_000)
        assert page.locator("[data-section-id^='operation']").count() > 20
        assert "OneTrip" in page.locator("h1").first.inner_text()
        assert "healthz" in page.locator(".menu-content").inner_text().lower() or \
            page.locator("[data-section-id*='healthz']").count() > 0
        viewport_shot(page, "docs-redoc-offline", db_kind)
    finally:
        page.unroute("**/*")
    assert blocked == [], f"the docs pages asked another host for {blocked}"
