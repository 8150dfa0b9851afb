"""SMART scope parsing and narrowing (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from onetrip.kit.scopes import ScopeError, allows, format_scopes, narrow, parse_scope, parse_scopes


def test_v2_and_v1_forms():
    assert parse_scope("user/Patient.rs").permissions == {"r", "s"}
    assert parse_scope("system/*.cruds").allows("Observation", "d")
    assert parse_scope("user/Patient.read").permissions == {"r", "s"}
    assert parse_scope("patient/*.write").permissions == {"c", "u", "d"}
    assert parse_scopes("openid fhirUser user/Patient.r") == (parse_scope("user/Patient.r"),)


@pytest.mark.parametrize("bad", ["user/Patient.sr", "user/Patient.rr", "admin/Patient.r", "user/patient.r",
                                 "user/Patient.x", "user/Patient"])
def test_malformed_scopes(bad):
    with pytest.raises(ScopeError):
        parse_scope(bad)


perm = st.sets(st.sampled_from("cruds"), min_size=1).map(lambda s: "".join(p for p in "cruds" if p in s))
resource = st.sampled_from(["Patient", "Organization", "*"])


@given(req_r=resource, req_p=perm, grant_r=resource, grant_p=perm)
def test_narrowing_never_exceeds_the_grant(req_r, req_p, grant_r, grant_p):
    requested = parse_scopes(f"user/{req_r}.{req_p}")
    granted = parse_scopes(f"user/{grant_r}.{grant_p}")
    out = narrow(requested, granted)
    for rtype in ("Patient", "Organization"):
        for p in "cruds":
            if allows(out, rtype, p):
                assert allows(granted, rtype, p) and allows(requested, rtype, p)
    assert parse_scopes(format_scopes(out)) == out
