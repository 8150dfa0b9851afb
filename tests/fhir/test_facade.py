"""The FHIR façade: the CapabilityStatement is the registry, and every type it lists answers search and read."""

from __future__ import annotations

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.operationoutcome import OperationOutcome

from onetrip.interop.fhir.capability import interactions, search_params
from onetrip.interop.fhir.registry import build, resource_types
from onetrip.kit.fhir import ResourceType, Variant
from tests.factories import auth, token

# Types whose search needs a parameter: the one given here (an unknown patient) must still answer.
REQUIRED = {"Appointment": "patient=Patient/none"}


@pytest.fixture(scope="module")
def admin(client, world):
    return auth(token(client, world.users["admin"]))


def listed(client) -> dict[str, dict]:
    return {r["type"]: r for r in client.get("/fhir/R4/metadata").json()["rest"][0]["resource"]}


def test_capability_statement_equals_the_registry(client):
    cs = listed(client)
    types = resource_types()
    assert list(cs) == list(types)
    for name, rt in types.items():
        entry = cs[name]
        assert [i["code"] for i in entry["interaction"]] == interactions(rt)
        assert [(p["name"], p["type"]) for p in entry["searchParam"]] == search_params(rt)
        assert [o["name"] for o in entry.get("operation", [])] == [op.name for op in rt.operations]
        assert entry["conditionalCreate"] == rt.conditional_create
        assert {"read", "search-type"} <= {i["code"] for i in entry["interaction"]}, name


def test_every_listed_type_answers_search_and_read(client, admin):
    for name in listed(client):
        q = REQUIRED.get(name, "_count=5")
        r = client.get(f"/fhir/R4/{name}?{q}", headers=admin)
        if name in REQUIRED:  # the unknown patient of the required parameter: an OperationOutcome, not a crash
            assert r.status_code in (200, 404), (name, r.status_code, r.text)
            if r.status_code == 404:
                OperationOutcome.model_validate(r.json())
                assert "unsupported resource type" not in r.text
                continue
        assert r.status_code == 200, (name, r.status_code, r.text)
        b = Bundle.model_validate(r.json())
        assert b.type == "searchset", name
        r = client.get(f"/fhir/R4/{name}/no-such-id-0", headers=admin)
        assert r.status_code in (404, 410), (name, r.status_code, r.text)
        outcome = OperationOutcome.model_validate(r.json())
        assert outcome.issue[0].code != "not-supported", (name, r.text)
        assert "unsupported resource type" not in r.text, name


def test_encounter_is_served_as_listed(client, admin):
    """The CapabilityStatement listed Encounter while GET /fhir/R4/Encounter answered 'unsupported type'."""
    r = client.get("/fhir/R4/Encounter?date=ge2020-01-01&class=AMB", headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["type"] == "searchset"
    r = client.get("/fhir/R4/Encounter?colour=red", headers=admin)
    assert r.status_code == 400 and "colour" in r.text


def test_unknown_type_and_unserved_interaction(client, admin):
    r = client.get("/fhir/R4/Spaceship", headers=admin)
    assert r.status_code == 404 and r.json()["issue"][0]["code"] == "not-supported"
    r = client.put("/fhir/R4/Slot/x", json={"resourceType": "Slot"}, headers=admin)
    assert r.status_code == 405 and r.json()["resourceType"] == "OperationOutcome"


def test_registry_refuses_a_type_declared_twice_and_an_orphan_variant():
    class A:
        RESOURCES = [ResourceType("Basic")]

    class B:
        RESOURCES = [ResourceType("Basic")]

    class V:
        VARIANTS = {"Linkage": Variant("orphan")}

    with pytest.raises(ValueError, match="declared twice"):
        build((A, B), ())
    with pytest.raises(ValueError, match="no domain serves"):
        build((A,), (V,))
    assert build((A,), ())["Basic"].variants == ()


def test_variants_are_asked_first_not_shadowed_routes(app):
    """Observation and ServiceRequest each have one route per interaction; family and referral are variants."""
    types = resource_types()
    assert [v.name for v in types["Observation"].variants] == ["self-check readings (family)"]
    assert [v.name for v in types["ServiceRequest"].variants] == ["referrals (category 3457005)"]
    routes = [(tuple(sorted(r.methods)), r.path) for r in app.router.routes if hasattr(r, "methods")
              and r.path.startswith("/fhir/R4/")]
    assert len(routes) == len(set(routes)), "a FHIR path is routed twice"
