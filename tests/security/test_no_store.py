"""Cache-Control: no-store on responses carrying personal data; the API description closed in production."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from onetrip.app import create_app
from onetrip.config import Settings
from tests.factories import auth, token
from tests.fhir.test_patient_crud import patient_json

PROD_SECRET = "a-production-secret-for-tests-0123456789abcdef"


@pytest.fixture(scope="module")
def doc_a(client, world):
    return auth(token(client, world.users["doc_a"]))


def test_fhir_read_and_api_json_are_no_store(client, world, doc_a):
    r = client.post("/fhir/R4/Patient", json=patient_json(world.org_a, "SEC-NS-1"), headers=doc_a)
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    r = client.get(f"/fhir/R4/Patient/{pid}", headers=doc_a)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    r = client.get("/fhir/R4/Patient", params={"name": "陈"}, headers=doc_a)
    assert r.headers["cache-control"] == "no-store"
    r = client.get("/api/me", headers=doc_a)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.headers["cache-control"] == "no-store"
    r = client.post("/auth/token", data={"grant_type": "password", "username": world.users["doc_a"],
                                         "password": world.password})
    assert r.headers["cache-control"] == "no-store"
    # Errors too: a 404 OperationOutcome names what was asked for.
    r = client.get("/fhir/R4/Patient/no-such-id", headers=doc_a)
    assert r.headers["cache-control"] == "no-store"


def test_openapi_open_in_development(client):
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/docs").status_code == 200


def test_openapi_for_admins_only_in_production(db, world):
    app = create_app(Settings(database_url=db.url, env="production", secret_key=PROD_SECRET), factory=db.factory)
    with TestClient(app) as c:
        for path in ("/openapi.json", "/docs", "/redoc"):
            assert c.get(path).status_code in (401, 404), path
        doc = auth(token(c, world.users["doc_a"]))
        assert c.get("/openapi.json", headers=doc).status_code == 403
        assert c.get("/docs", headers=doc).status_code == 403
        admin = auth(token(c, world.users["admin"]))
        r = c.get("/openapi.json", headers=admin)
        assert r.status_code == 200
        assert r.json()["info"]["title"].startswith("OneTrip")
        assert r.json()["paths"]
        assert c.get("/docs", headers=admin).status_code == 200
