"""Issue 26 §7: FHIR search parameters are validated by type before any handler runs — ``_count`` and
``_offset`` are plain digits with ``_offset`` bounded (no integer overflow in the database), and every
declared ``date`` parameter goes through the date parser. Errors are 400 with an OperationOutcome."""

from __future__ import annotations

import pytest

from onetrip.interop.fhir.registry import resource_types
from onetrip.kit.fhir import MAX_OFFSET
from tests.factories import auth, token


@pytest.fixture(scope="module")
def admin(client, world) -> dict[str, str]:
    return auth(token(client, world.users["admin"]))


def _searchable() -> list[str]:
    return [name for name, rt in resource_types().items() if rt.search is not None]


def _date_params() -> list[tuple[str, str]]:
    out = []
    for name, rt in resource_types().items():
        if rt.search is not None:
            out += [(name, p.name) for p in rt.search_params if p.type == "date"]
    return out


def _outcome(r, *words: str) -> None:
    assert r.status_code == 400, (r.request.url, r.status_code, r.text[:300])
    body = r.json()
    assert body["resourceType"] == "OperationOutcome"
    text = " ".join(i.get("details", {}).get("text", "") for i in body["issue"])
    for w in words:
        assert w in text, (r.request.url, text)


@pytest.mark.parametrize("value", ["1" + "0" * 30, str(MAX_OFFSET + 1), "-1", "+5", "1_0", "abc", " 5", "١",
                                   "1e3", "9" * 5000])
def test_offset_out_of_range_or_not_digits_is_400(client, admin, value):
    for name in _searchable():
        _outcome(client.get(f"/fhir/R4/{name}", params={"_offset": value}, headers=admin), "_offset")


@pytest.mark.parametrize("value", ["-1", "abc", "1" + "0" * 30, "2.5"])
def test_bad_count_is_400(client, admin, value):
    _outcome(client.get("/fhir/R4/Patient", params={"_count": value}, headers=admin), "_count")


def test_offset_at_the_bound_is_served(client, admin):
    r = client.get("/fhir/R4/Organization", params={"_offset": str(MAX_OFFSET)}, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["resourceType"] == "Bundle"


def test_there_are_date_parameters_to_check():
    names = {f"{t}.{p}" for t, p in _date_params()}
    assert {"Observation.date", "Patient.birthdate", "Appointment.date"} <= names, names


@pytest.mark.parametrize("value", ["garbage", "2026-13-01", "ge", "2026-02-30", "20261201", "ge2026-12-08T25:00"])
def test_every_date_parameter_is_parsed(client, admin, value):
    for rtype, param in _date_params():
        _outcome(client.get(f"/fhir/R4/{rtype}", params={param: value}, headers=admin), param)


def test_observation_date_garbage_is_400_and_a_good_date_is_200(client, admin):
    _outcome(client.get("/fhir/R4/Observation?date=garbage", headers=admin), "date")
    assert client.get("/fhir/R4/Observation?date=ge2026-01-01", headers=admin).status_code == 200


def _rest_paged_routes(app) -> list[str]:
    """Every GET under /api without path parameters that takes an ``offset`` query parameter (from the
    OpenAPI document, which lists every route)."""
    out = []
    for path, ops in app.openapi()["paths"].items():
        get = ops.get("get")
        if (get and path.startswith("/api") and "{" not in path
                and any(p["name"] == "offset" and p["in"] == "query" for p in get.get("parameters", []))):
            out.append(path)
    return sorted(out)


def test_every_rest_offset_is_bounded(app, client, admin):
    """A REST list's ``offset`` past the bound is a 400, not an integer overflow in the database (schemathesis
    found ``GET /api/referrals?offset=599085078058444521472`` raising on SQLite)."""
    routes = _rest_paged_routes(app)
    assert "/api/referrals" in routes
    for path in routes:
        _outcome(client.get(path, params={"offset": str(10 ** 21)}, headers=admin))
        _outcome(client.get(path, params={"offset": str(MAX_OFFSET + 1)}, headers=admin))
