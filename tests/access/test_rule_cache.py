"""The per-process cache of the rule values every request reads (issue 26): an operator's change through
set_rule is in force at the next request, a rolled-back one never is, and a change made elsewhere (another
process, SQL) is seen once the cache's time is up — on both databases."""

from __future__ import annotations

import datetime as dt
import time

from sqlalchemy import update

from onetrip.kit.clock import utcnow
from onetrip.kit.identifiers import make_resident_id
from onetrip.rules import service as rules
from onetrip.rules.models import RuleValue
from tests.factories import auth, register_patient, token


def _set(db, value: str) -> None:
    with db.session() as s:
        rules.set_rule(s, "access", "default_cross_institution", value, by="test")
        s.commit()


def test_set_rule_is_in_force_at_the_next_request(client, world, db):
    rec = register_patient(db, world.org_a, name="许文清", id_number=make_resident_id("330281", dt.date(1958, 2, 3), 41))
    doc_b = auth(token(client, world.users["doc_b"]))
    assert client.get(f"/fhir/R4/Patient/{rec}", headers=doc_b).status_code == 403  # default deny, now cached
    try:
        _set(db, "permit")
        assert client.get(f"/fhir/R4/Patient/{rec}", headers=doc_b).status_code == 200
        with db.session() as s:  # a change rolled back is never in force
            rules.set_rule(s, "access", "default_cross_institution", "deny", by="test")
            assert rules.cached_rule_values(s, "access")["default_cross_institution"] == "deny"  # its own view
            s.rollback()
        assert client.get(f"/fhir/R4/Patient/{rec}", headers=doc_b).status_code == 200
    finally:
        _set(db, "deny")
    assert client.get(f"/fhir/R4/Patient/{rec}", headers=doc_b).status_code == 403


def test_a_change_made_elsewhere_is_seen_within_the_cache_time(db, monkeypatch):
    monkeypatch.setattr(rules, "CACHE_SECONDS", 0.5)
    with db.session() as s:
        assert rules.cached_rule_values(s, "access")["default_cross_institution"] == "deny"
    # as another process would: straight in the table, not through set_rule
    with db.session() as s:
        s.execute(update(RuleValue).where(RuleValue.rule_set == "access", RuleValue.key == "default_cross_institution")
                  .values(value="permit", updated_at=utcnow()))
        s.commit()
    try:
        with db.session() as s:
            assert rules.cached_rule_values(s, "access")["default_cross_institution"] == "deny"  # still cached
            assert rules.rule_values(s, "access")["default_cross_institution"] == "permit"
        time.sleep(0.6)
        with db.session() as s:
            assert rules.cached_rule_values(s, "access")["default_cross_institution"] == "permit"
    finally:
        with db.session() as s:
            s.execute(update(RuleValue).where(RuleValue.rule_set == "access",
                                              RuleValue.key == "default_cross_institution").values(value="deny"))
            s.commit()
        rules._cache.clear()  # noqa: SLF001 — the next test must not see the value put back behind the cache's back
