"""The order check's lean path (recognition/repository.py): the ordering department, the issuer's QC
standing, report status, the catalogue's code mapping, the records rule table's window, the audit events of
a read allowed on its second look, and the statements a check costs."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import delete, event, func, select

from onetrip.access import service as access
from onetrip.audit import service as audit
from onetrip.audit.models import AuditEvent
from onetrip.db import fastpath
from onetrip.kit.errors import BadRequest
from onetrip.kit.principal import cli_principal
from onetrip.outbox.models import OutboxEvent
from onetrip.persons.models import PatientRecord
from onetrip.recognition.models import RecognitionDecision, RecognitionInstitution, RecognitionItem
from onetrip.recognition.service import run_check
from onetrip.records import service as records
from onetrip.registry.models import Department
from onetrip.rules import service as rules_service
from tests.factories import auth, register_patient
from tests.recognition.test_check import _report
from tests.records.conftest import resident_id


@pytest.fixture(scope="module")
def person(db, world, catalogue):
    """A resident registered at A (3A) and B (1A, same community), with a final HR CMP at A two days ago."""
    id_number = resident_id()
    rec_a = register_patient(db, world.org_a, name="孙丽", id_number=id_number)
    register_patient(db, world.org_b, name="孙丽", id_number=id_number, mrn="PB" + id_number[-6:])
    with db.session() as s:
        cmp_ = records.store_report(s, cli_principal(), _report(world.org_a, record=rec_a)).id
        s.commit()
        return {"id": s.get(PatientRecord, rec_a).person_id, "rec_a": rec_a, "cmp": cmp_}


def _priors(db, person_id, item, org):
    with db.session() as s:
        check, priors = run_check(s, cli_principal(), person_id, item, org)
        s.commit()
    return check, priors


def test_ordering_department_must_be_the_ordering_institutions(client, db, world, rec, person):
    with db.session() as s:
        dep_a = Department(organization_id=world.org_a, code="PA1", name="检验科")
        dep_b = Department(organization_id=world.org_b, code="PB1", name="全科")
        s.add_all([dep_a, dep_b])
        s.commit()
        ids = dep_a.id, dep_b.id

    def post(department_id):
        return client.post("/api/recognition/check", headers=auth(rec.doc_a), json={
            "person_id": person["id"], "item_code": "CMP", "ordering_org_id": world.org_a,
            "department_id": department_id})

    for bad in ("no-such-department", ids[1]):
        r = post(bad)
        assert r.status_code == 400 and r.json()["issue"][0]["expression"] == ["department_id"], r.text
    r = post(ids[0])
    assert r.status_code == 200, r.text
    with db.session() as s:
        assert s.get(RecognitionDecision, r.json()["check_id"]).department_id == ids[0]


def test_only_final_reports_of_institutions_in_qc_standing(db, world, person):
    with db.session() as s:
        prelim = records.store_report(s, cli_principal(), _report(world.org_a, record=person["rec_a"]).model_copy(
            update={"status": "preliminary"})).id
        s.commit()
    _, priors = _priors(db, person["id"], "CMP", world.org_b)  # B (1A) accepts A (3A)
    assert [p.report_id for p in priors] == [person["cmp"]] and prelim != person["cmp"]
    with db.session() as s:
        s.add(RecognitionInstitution(organization_id=world.org_a, qc_passed=False))
        s.commit()
    try:
        assert _priors(db, person["id"], "CMP", world.org_b)[1] == []  # R1.4: A is out of QC standing
        with db.session() as s:
            s.scalars(select(RecognitionInstitution).where(
                RecognitionInstitution.organization_id == world.org_a)).one().qc_passed = True
            s.commit()
        assert [p.report_id for p in _priors(db, person["id"], "CMP", world.org_b)[1]] == [person["cmp"]]
    finally:
        with db.session() as s:
            s.execute(delete(RecognitionInstitution).where(RecognitionInstitution.organization_id == world.org_a))
            s.commit()


def _item(local_code, standard_code, *, window_days, active=True):
    return RecognitionItem(local_code=local_code, standard_code=standard_code, code_system="http://loinc.org",
                           name_zh=local_code, name_en=local_code, category="lab", price=Decimal("10.00"),
                           window_days=window_days, scope="city", active=active)


def test_a_local_code_the_catalogue_maps_is_the_same_item(db, world, person):
    """R1.2: a report carrying only a local code is the order's item when the catalogue maps that local code
    to the order's standard code — also through an item no longer orderable."""
    with db.session() as s:
        s.add(_item("CMP-2019", "24323-8", window_days=7, active=False))
        s.flush()
        old = records.store_report(s, cli_principal(), _report(world.org_a, record=person["rec_a"], days=1).model_copy(
            update={"code": None, "code_system": None, "code_local": "CMP-2019"})).id
        s.commit()
    _, priors = _priors(db, person["id"], "CMP", world.org_b)
    assert [p.report_id for p in priors] == [old, person["cmp"]]  # newest first
    with db.session() as s, pytest.raises(BadRequest, match="not in the recognition catalogue"):
        run_check(s, cli_principal(), person["id"], "CMP-2019", world.org_b)


def test_an_item_without_a_window_uses_the_records_rule_table(db, world, person):
    """R1.6: no catalogue window → ``records`` validity_days.<code> / <section> (chemistry: 7 days)."""
    with db.session() as s:
        s.add(_item("TSH", "3016-3", window_days=None))
        s.flush()
        fresh = records.store_report(s, cli_principal(), _report(world.org_a, record=person["rec_a"], days=3,
                                                                  code="3016-3")).id
        records.store_report(s, cli_principal(), _report(world.org_a, record=person["rec_a"], days=9, code="3016-3"))
        s.commit()
    _, priors = _priors(db, person["id"], "TSH", world.org_b)
    assert [(p.report_id, p.validity_days, p.price) for p in priors] == [(fresh, 7, Decimal("10.00"))]


def test_a_read_allowed_on_its_second_look_is_audited_once(db, world, person, monkeypatch):
    """When the first access decision refuses and ``require_read``'s own look allows (the policy changed in
    between), the read is audited by require_read and the check adds only its create event — next to it on
    the same chain, which still verifies."""
    real, calls = access.decisions, []

    def first_refuses(session, principal, person_ids):
        got = real(session, principal, person_ids)
        calls.append(1)
        if len(calls) == 1:
            return {p: type(d)(False, d.rule, "refused the first time") for p, d in got.items()}
        return got

    monkeypatch.setattr(access, "decisions", first_refuses)
    with db.session() as s:
        before = s.scalar(select(func.max(AuditEvent.seq)))
    check, priors = _priors(db, person["id"], "CMP", world.org_a)
    assert len(calls) == 2 and person["cmp"] in [p.report_id for p in priors]
    with db.session() as s:
        events = s.scalars(select(AuditEvent).where(AuditEvent.seq > before).order_by(AuditEvent.seq)).all()
        assert [(e.subtype, e.outcome, e.entity_what) for e in events] == [
            ("read", "0", f"Person/{person['id']}/recognition?item=CMP"),
            ("create", "0", f"RecognitionDecision/{check.id}")]
        assert (events[1].chain, events[1].chain_seq) == (events[0].chain, events[0].chain_seq + 1)
        assert audit.verify(s)[1] == []
        row = s.get(RecognitionDecision, check.id)
        assert (row.kind, row.prior_ids, row.channel) == ("check", [p.report_id for p in priors], "rest")
        assert s.scalar(select(OutboxEvent.payload).where(OutboxEvent.aggregate_id == check.id)) == {
            "item": "CMP", "ordering_org_id": world.org_a, "priors": len(priors)}


def test_a_check_is_at_most_four_statements_on_postgresql(db, world, person):
    """The facts with the audit chain's head lock, the access rule values (an operator needs no other fact),
    the priors with the merged persons and one write of every row (``db.changes.apply``)."""
    if db.kind != "postgresql":
        pytest.skip("the one-statement write is PostgreSQL's (SQLite: one INSERT per table)")
    seen: list[str] = []

    def count(conn, cursor, statement, *args):
        seen.append(statement)

    rules_service._cache.clear()  # noqa: SLF001 — count the rule read too (kept per process for 10 s: issue 26)
    event.listen(db.engine, "before_cursor_execute", count)
    fastpath.observers.append(seen.append)  # statements run on the driver connection (db.fastpath)
    try:
        check, priors = _priors(db, person["id"], "CMP", world.org_b)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
        fastpath.observers.remove(seen.append)
    assert priors and len(seen) == 4, seen
    assert sum("audit_chain_head" in s and "SKIP LOCKED" in s for s in seen) == 1  # in the facts' statement
    writes = [s for s in seen if "INSERT INTO" in s]
    assert len(writes) == 1 and all(t in writes[0] for t in (
        "INSERT INTO recognition_decision", "INSERT INTO outbox_event", "INSERT INTO audit_event",
        "UPDATE audit_chain_head")), writes
    assert sum("one_row" in s for s in seen) == 1 and sum("merged_person" in s for s in seen) == 1
    with db.session() as s:  # everything the one statement wrote is there
        assert s.get(RecognitionDecision, check.id).prior_ids == [p.report_id for p in priors]
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.entity_what.in_([f"RecognitionDecision/{check.id}",
                                        f"Person/{person['id']}/recognition?item=CMP"]))) >= 2
        assert s.scalar(select(func.count()).select_from(OutboxEvent).where(OutboxEvent.aggregate_id == check.id)) == 1
        assert audit.verify(s)[1] == []


def test_check_response_is_the_documented_model(client, world, rec, person):
    """The endpoint writes its JSON itself (no second validation hop): still ``CheckOut`` in the OpenAPI
    document, still JSON with every documented field."""
    schema = client.get("/openapi.json").json()["paths"]["/api/recognition/check"]["post"]["responses"]["200"]
    assert schema["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/CheckOut"}
    r = client.post("/api/recognition/check", headers=auth(rec.doc_a), json={
        "person_id": person["id"], "item_code": "CMP", "ordering_org_id": world.org_a})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    prior = next(p for p in r.json()["priors"] if p["report_id"] == person["cmp"])
    assert set(prior) == {"report_id", "code", "code_local", "display", "category", "effective_at",
                          "organization_id", "organization_name", "recognition_mark", "validity_days", "price"}
    assert prior["price"] == "120.00" and prior["effective_at"].endswith("Z")
