"""The access decision as a pure function (access/policy.py rules A1–A6, RULES §10 truth table)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from onetrip.access.policy import AccessFacts, decide

BASE = dict(principal_org="A", is_operator=False, record_orgs=frozenset({"B"}), care_orgs=frozenset(),
            consent=None, break_glass=None, default_policy="deny")


def facts(**kw) -> AccessFacts:
    return AccessFacts(**{**BASE, **kw})


def test_consent_truth_table():
    # RULES §10: none+deny→deny, none+permit→permit, permit→permit, deny→deny
    assert not decide(facts(consent=None, default_policy="deny")).allowed
    assert decide(facts(consent=None, default_policy="permit")).allowed
    assert decide(facts(consent="permit", default_policy="deny")).allowed
    assert not decide(facts(consent="deny", default_policy="permit")).allowed


def test_rules_in_order():
    assert decide(facts(is_operator=True, consent="deny")).rule == "A1"
    assert decide(facts(record_orgs=frozenset({"A", "B"}))).rule == "A2"
    d = decide(facts(break_glass="ETREAT", consent="deny"))
    assert d.allowed and d.rule == "A3" and d.purpose_of_use == "ETREAT"
    assert decide(facts(break_glass="PATSFTY")).purpose_of_use == "PATSFTY"
    assert not decide(facts(consent="deny", care_orgs=frozenset({"A"}))).allowed  # refusal beats relationship
    assert decide(facts(care_orgs=frozenset({"A"}))).rule == "A5"
    assert decide(facts()).rule == "A6"


@given(st.booleans(), st.booleans(), st.booleans(), st.sampled_from([None, "permit", "deny"]), st.booleans(),
       st.sampled_from(["permit", "deny"]))
def test_no_access_without_a_basis(op, own, care, consent, glass, default):
    d = decide(facts(is_operator=op, record_orgs=frozenset({"A"} if own else {"B"}),
                     care_orgs=frozenset({"A"} if care else set()), consent=consent,
                     break_glass="ETREAT" if glass else None,
                     default_policy=default))
    if d.allowed:
        assert op or own or glass or consent == "permit" or (care and consent != "deny") or (
            consent is None and default == "permit")
    else:
        assert not (op or own or glass)
