"""Request body limits and credentials before bodies (issue 26, api/limits.py)."""

from __future__ import annotations

import json

import anyio
import pytest
from fastapi.testclient import TestClient

from onetrip.app import create_app
from onetrip.config import Settings
from tests.factories import auth, token
from tests.fhir.test_patient_crud import patient_json

FHIR = "application/fhir+json"
MB = 1024 * 1024


@pytest.fixture(scope="module")
def small_app(db):
    """Small limits, so a test need not send megabytes: 64 KB for FHIR, 128 KB for a Bundle, 4 KB elsewhere."""
    return create_app(Settings(database_url=db.url, max_body_fhir=64 * 1024, max_body_bundle=128 * 1024,
                               max_body_api=4096, max_body_form=4096), factory=db.factory)


@pytest.fixture(scope="module")
def small(small_app):
    with TestClient(small_app) as c:
        yield c


@pytest.fixture(scope="module")
def doc_a(small, world):
    return auth(token(small, world.users["doc_a"]))


def _outcome(r, code: str) -> dict:
    body = r.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["code"] == code
    return body


def _call(app, method: str, path: str, headers: dict[str, str], chunks: list[bytes]) -> tuple[int, dict, int]:
    """Call the ASGI app directly; return (status, headers, how many body chunks the app asked for)."""
    asked = 0
    sent: list[dict] = []

    async def receive():
        nonlocal asked
        if asked < len(chunks):
            asked += 1
            return {"type": "http.request", "body": chunks[asked - 1], "more_body": asked < len(chunks)}
        await anyio.sleep_forever()

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
             "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
             "client": ("127.0.0.1", 1234), "server": ("testserver", 80), "app": app, "state": {}}

    async def run():
        with anyio.fail_after(10):
            await app(scope, receive, send)

    anyio.run(run)
    start = next(m for m in sent if m["type"] == "http.response.start")
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, asked


def test_declared_length_over_the_limit_is_refused_unread(small_app, small, doc_a):
    # 200 MB declared, nothing sent: answered at once, the body never asked for.
    status, headers, asked = _call(small_app, "POST", "/fhir/R4/Patient",
                                   {**doc_a, "content-type": FHIR, "content-length": str(200 * MB)}, [b"{}"])
    assert (status, asked) == (413, 0)
    assert headers["content-type"].startswith(FHIR)

    r = small.post("/fhir/R4/Patient", content=b" " * (65 * 1024), headers={**doc_a, "content-type": FHIR})
    assert r.status_code == 413
    text = _outcome(r, "too-costly")["issue"][0]["details"]["text"]
    assert "请求体过大" in text and "too large" in text and "64 KB" in text
    assert r.headers["cache-control"] == "no-store"


def test_route_classes_have_their_own_limits(small, doc_a):
    # A Bundle may be larger than any other FHIR body; the REST API and web forms are smaller still.
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [], "padding": "x" * (100 * 1024)}
    r = small.post("/fhir/R4", content=json.dumps(bundle), headers={**doc_a, "content-type": FHIR})
    assert r.status_code != 413, r.text
    r = small.post("/fhir/R4", content=b" " * (129 * 1024), headers={**doc_a, "content-type": FHIR})
    assert r.status_code == 413
    r = small.post("/api/consents", content=b" " * 5000, headers={**doc_a, "content-type": "application/json"})
    assert r.status_code == 413
    assert r.headers["content-type"].startswith("application/json")
    _outcome(r, "too-costly")
    r = small.post("/ui/login", content=b"a=" + b"x" * 5000,
                   headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413


def test_chunked_body_is_counted_and_stopped_at_the_limit(small_app, small, doc_a):
    def body():
        for _ in range(40):
            yield b" " * 4096

    # Through the HTTP client: no Content-Length, Transfer-Encoding: chunked.
    r = small.post("/fhir/R4/Patient", content=body(), headers={**doc_a, "content-type": FHIR})
    assert r.status_code == 413
    _outcome(r, "too-costly")

    # Directly: the app stops asking for chunks as soon as the limit (64 KB = 16 chunks) is passed.
    status, _, asked = _call(small_app, "POST", "/fhir/R4/Patient",
                             {**doc_a, "content-type": FHIR, "transfer-encoding": "chunked"}, [b" " * 4096] * 40)
    assert status == 413
    assert asked == 17


def test_no_credentials_is_401_before_the_body_is_read(small_app, small):
    # Well under the limit, and still not read: no Authorization header, no session cookie.
    for headers in ({"content-length": "60000"}, {"transfer-encoding": "chunked"}):
        status, answer, asked = _call(small_app, "POST", "/fhir/R4/Patient",
                                      {"content-type": FHIR, **headers}, [b" " * 1000] * 60)
        assert (status, asked) == (401, 0)
        assert answer["www-authenticate"] == "Bearer"
        assert answer["cache-control"] == "no-store"
    # Over the limit too: the missing credentials are what the caller learns.
    status, _, asked = _call(small_app, "POST", "/api/consents",
                             {"content-type": "application/json", "content-length": str(300 * MB)}, [b"{}"])
    assert (status, asked) == (401, 0)
    r = small.post("/fhir/R4/Patient", content=b"{}", headers={"content-type": FHIR})
    assert r.status_code == 401
    _outcome(r, "login")
    # The token endpoint is exempt: it is how credentials are obtained.
    r = small.post("/auth/token", data={"grant_type": "password", "username": "nobody", "password": "x"})
    assert r.status_code in (400, 401)
    assert r.json().get("error")


def test_a_bad_token_still_reaches_the_endpoint_check(small):
    r = small.post("/fhir/R4/Patient", content=b"{}", headers={"content-type": FHIR, "authorization": "Bearer nope"})
    assert r.status_code == 401
    r = small.post("/fhir/R4/Patient", content=b"{}", headers={"content-type": FHIR},
                   cookies={"onetrip_token": "nope"})
    assert r.status_code == 401


def test_authenticated_fhir_create_still_works(client, world):
    doc = auth(token(client, world.users["doc_a"]))
    r = client.post("/fhir/R4/Patient", json=patient_json(world.org_a, "SEC-1"), headers=doc)
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    r = client.get(f"/fhir/R4/Patient/{r.json()['id']}", headers=doc)
    assert r.status_code == 200


def test_invalid_content_length_is_400(small_app):
    status, _, asked = _call(small_app, "POST", "/api/consents", {"authorization": "Bearer x",
                                                                   "content-length": "lots"}, [b"{}"])
    assert (status, asked) == (400, 0)
