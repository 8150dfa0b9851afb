"""Issue 26 §5: every write checks a write scope. Each mutating REST route (POST/PUT/PATCH/DELETE under /api
and /fhir), called with a token that holds only read scopes (an admin's ``user/*.rs``, so roles never stop it
first), answers 401 or 403 — never 2xx, never 500. The body is built from the route's OpenAPI schema (every
required field filled with a value of its type), so a check placed after body validation is still reached."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.factories import auth, token

# Reads over POST by design, each with its reason. Anything else that is not refused is a hole.
READS_OVER_POST = {
    ("POST", "/fhir/R4/Patient/$match"): "MPI match: a search with a Parameters body (needs Patient.s)",
    ("POST", "/fhir/R4/Appointment/$find"): "find free slots: a search with a Parameters body (Slot.s)",
    ("POST", "/api/recognition/check"): "mutual-recognition check: asks which earlier results are valid; "
                                         "records only its own audit trail",
    ("POST", "/api/devices/readings"): "device readings are sent with a device token, not a user token "
                                        "(401 here without one; covered in tests/family)",
    ("POST", "/api/family/checkin"): "clinic check-in: looks the patient up (ID number in the body, not in the "
                                     "URL) and returns the pre-visit summary; writes nothing",
    ("POST", "/api/scheduling/itinerary"): "itinerary proposal: nothing is booked (booking is /itinerary/book)",
    ("POST", "/fhir/R4/$immds-forecast"): "ImmDS forecast: computes recommendations from a Parameters body "
                                          "(ImmunizationRecommendation.r); writes only the audit of a patient read",
}
# Fields the schema cannot describe well enough (patterns), per route: laid over the generated body.
BODIES: dict[tuple[str, str], dict] = {
    ("POST", "/api/scheduling/resources/{resource_id}/templates"): {"start_time": "08:00", "end_time": "12:00"},
    ("POST", "/api/immunization/inbound"): {"trace_codes": ["12345678901234567890"]},  # R6.6: 20 characters
    ("POST", "/fhir/R4"): {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Patient", "name": [{"text": "王五"}]},
         "request": {"method": "POST", "url": "Patient"}}]},
}
BODIES[("POST", "/fhir/R4/")] = BODIES[("POST", "/fhir/R4")]
# Routes answered before any scope matters: the catch-all 404 for types the façade does not serve.
UNSERVED = re.compile(r"^/fhir/R4/\{rtype\}")
READ_ONLY = "user/*.rs"


def _walk(routes, prefix: str = ""):
    for r in routes:
        if hasattr(r, "original_router"):  # an included router (FastAPI ≥ 0.120 keeps it nested)
            yield from _walk(r.original_router.routes, prefix + r.include_context.prefix)
        elif hasattr(r, "routes"):
            yield from _walk(r.routes, prefix + getattr(r, "path", ""))
        elif getattr(r, "methods", None):
            yield prefix + r.path, r.methods


def mutating_routes(app) -> list[tuple[str, str]]:
    out = set()
    for path, methods in _walk(app.routes):
        if path.startswith(("/api", "/fhir")):
            out |= {(m, path) for m in methods & {"POST", "PUT", "PATCH", "DELETE"}}
    return sorted(out)


def _sample(schema: dict, components: dict, depth: int = 0) -> Any:
    if "$ref" in schema:
        return _sample(components[schema["$ref"].rsplit("/", 1)[-1]], components, depth)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"] or schema[key]
            return _sample(options[0], components, depth)
    if "default" in schema:
        return schema["default"]
    if "enum" in schema:
        return schema["enum"][0]
    alternatives = re.fullmatch(r"\^\(([\w-]+)(\|[\w-]+)*\)\$", schema.get("pattern", ""))
    if alternatives:  # "^(permit|deny)$"
        return alternatives.group(1)
    kind, fmt = schema.get("type"), schema.get("format", "")
    if kind == "object" or "properties" in schema:
        if depth > 4:
            return {}
        required = set(schema.get("required", ()))
        return {k: _sample(v, components, depth + 1) for k, v in schema.get("properties", {}).items()
                if k in required}
    if kind == "array":
        return [_sample(schema.get("items", {}), components, depth + 1)] if schema.get("minItems") else []
    if kind == "integer":
        return max(1, schema.get("minimum", 1))
    if kind == "number":
        return max(1.0, schema.get("minimum", 1.0))
    if kind == "boolean":
        return False
    if fmt == "date":
        return "2026-10-15"
    if fmt == "date-time":
        return "2026-10-15T09:00:00+08:00"
    return "x" * max(1, schema.get("minLength", 1))


def _body(openapi: dict, method: str, path: str) -> Any:
    op = openapi.get("paths", {}).get(path, {}).get(method.lower(), {})
    content = op.get("requestBody", {}).get("content", {})
    schema = next(iter(content.values()), {}).get("schema") if content else None
    if schema is None:
        return {"resourceType": "Bundle", "type": "batch", "entry": []} if path.startswith("/fhir") else {}
    return _sample(schema, openapi.get("components", {}).get("schemas", {}))


@pytest.fixture(scope="module")
def read_only(client, world) -> dict[str, str]:
    return auth(token(client, world.users["admin"], scope=READ_ONLY))


def test_the_walk_finds_the_routes(app):
    routes = mutating_routes(app)
    assert ("POST", "/api/reports") in routes
    assert ("POST", "/fhir/R4/Patient") in routes
    assert len(routes) > 50, routes
    assert set(READS_OVER_POST) <= set(routes), set(READS_OVER_POST) - set(routes)


def test_every_write_needs_a_write_scope(app, client, read_only):
    openapi = app.openapi()
    holes = []
    for method, path in mutating_routes(app):
        if (method, path) in READS_OVER_POST or UNSERVED.match(path):
            continue
        url = re.sub(r"\{[^}]+\}", "x", path)
        body = _body(openapi, method, path)
        if isinstance(body, dict):
            body |= BODIES.get((method, path), {})
        r = client.request(method, url, headers=read_only, json=body)
        if r.status_code not in (401, 403):
            holes.append(f"{r.status_code} {method} {path}: {r.text[:160]}")
    assert not holes, "writes not refused to a read-only token:\n" + "\n".join(holes)


def test_report_generation_needs_a_write_scope_and_a_manager(client, world):
    """The reported hole: a family doctor (MeasureReport.r) regenerated the district's report files."""
    params = {"kind": "monthly", "period": "2026-10", "replace": "true"}
    mgr_read = auth(token(client, world.users["mgr"], scope="user/MeasureReport.rs"))
    r = client.post("/api/reports", params=params, headers=mgr_read)
    assert r.status_code == 403, r.text
    assert r.json()["resourceType"] == "OperationOutcome"
    mgr_create = auth(token(client, world.users["mgr"], scope="user/MeasureReport.crs"))
    assert client.post("/api/reports", params=params, headers=mgr_create).status_code == 403  # replace: .u
    clinician_all = auth(token(client, world.users["doc_a"]))  # a role without the cockpit: no MeasureReport.c
    assert client.post("/api/reports", params=params, headers=clinician_all).status_code == 403
    mgr = auth(token(client, world.users["mgr"]))
    assert client.post("/api/reports", params=params, headers=mgr).status_code == 201
