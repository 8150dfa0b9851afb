"""Schemathesis against our OpenAPI schema: generated requests (valid and invalid) never get a 5xx, and
every error body is a FHIR OperationOutcome. Runs as an admin so the deepest code paths are reached.

(Operations are driven one by one with Hypothesis; schemathesis's pytest fixture loader does not yet
work with pytest 9.)"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.factories import auth, register_patient, token

SKIP = {("POST", "/auth/logout")}  # would end the admin's session for the remaining cases


@pytest.mark.slow
def test_no_server_errors(app, client, world, db):
    register_patient(db, world.org_a, name="测试甲")
    headers = auth(token(client, world.users["admin"]))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    operations = 0
    calls: list[int] = []
    for result in schema.get_all_operations():
        op = result.ok()
        if (op.method.upper(), op.path) in SKIP:
            continue
        operations += 1

        @given(case=op.as_strategy())
        @settings(max_examples=int(os.environ.get("ONETRIP_FUZZ_EXAMPLES", "20")), deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case):
            try:
                response = case.call(headers={**headers, **(case.headers or {})})
            except Exception as e:  # the app raised past its handlers (the test client re-raises 500s)
                failures.append(f"{case.method} {case.formatted_path} {case.query} {str(case.body)[:200]} "
                                f"raised {type(e).__name__}: {str(e)[:300]}")
                return
            calls.append(response.status_code)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} → {response.status_code}: {response.text[:200]}")
            elif response.status_code >= 400:
                body = response.json()
                if body.get("resourceType") != "OperationOutcome":
                    failures.append(f"{case.method} {case.formatted_path} → {response.status_code} not an OperationOutcome")

        run()
    assert operations >= 20
    assert len(calls) >= operations * 5, "schemathesis generated too few requests"
    assert not failures, "\n".join(sorted(set(failures))[:20])
