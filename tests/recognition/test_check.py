"""Order-time check over stored results (REST), the decision log, and CDS Hooks."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from onetrip.audit import service as audit
from onetrip.audit.models import AuditEvent
from onetrip.kit.principal import cli_principal
from onetrip.outbox.models import OutboxEvent
from onetrip.persons.models import PatientRecord
from onetrip.recognition.models import RecognitionDecision, RecognitionReason
from onetrip.recognition.service import seed_catalogue
from onetrip.records import service as records
from onetrip.records.schemas import ObservationIn, ReportIn
from tests.factories import auth, register_patient
from tests.records.conftest import resident_id
from tests.records.helpers import LIS, uid

NOW = dt.datetime.now(dt.UTC)
SEL = "onetrip-recognition-select"


def _report(org, *, mrn=None, record=None, days=2.0, code="24323-8", category="lab", section="chemistry",
            mark="HR", obs=(5.1,)) -> ReportIn:
    when = NOW - dt.timedelta(days=days)
    return ReportIn(organization_id=org, mrn=mrn, patient_record_id=record, identifier_system=LIS,
                    identifier_value=uid(), category=category, section=section, code_system="http://loinc.org",
                    code=code, display="报告", effective_at=when, issued=when, recognition_mark=mark,
                    conclusion="正常",
                    observations=[ObservationIn(identifier_system=LIS + ".obs", identifier_value=uid(),
                                                code="2345-7", value_quantity=v, unit="mmol/L") for v in obs])


@pytest.fixture(scope="module")
def data(db, world):
    """A resident at A (3A) and B (1A, same community) with results of varying eligibility."""
    id_number = resident_id()
    rec_a = register_patient(db, world.org_a, name="赵敏", id_number=id_number)
    mrn_b = "B" + uid()
    register_patient(db, world.org_b, name="赵敏", id_number=id_number, mrn=mrn_b)
    op = cli_principal()
    with db.session() as s:
        ids = {
            "a_ok": records.store_report(s, op, _report(world.org_a, record=rec_a)).id,
            "a_expired": records.store_report(s, op, _report(world.org_a, record=rec_a, days=10)).id,
            "a_no_mark": records.store_report(s, op, _report(world.org_a, record=rec_a, mark=None)).id,
            "a_conclusion_only": records.store_report(s, op, _report(world.org_a, record=rec_a, obs=())).id,
            "b_lab": records.store_report(s, op, _report(world.org_b, mrn=mrn_b, days=1, mark="浙HR")).id,
            "b_ct": records.store_report(s, op, _report(world.org_b, mrn=mrn_b, days=3, code="24725-4",
                                                        category="imaging", section="CT", obs=())).id,
        }
        person_id = s.get(PatientRecord, rec_a).person_id
        s.commit()
    return {"person": person_id, "rec_a": rec_a, **ids}


def _check(client, tok, person, item, org):
    r = client.post("/api/recognition/check", json={"person_id": person, "item_code": item, "ordering_org_id": org},
                    headers=auth(tok))
    assert r.status_code == 200, r.text
    return r.json()


def test_seed_is_idempotent_and_has_reason_codes(db, catalogue):
    with db.session() as s:
        assert seed_catalogue(s) == 0
        codes = set(s.scalars(select(RecognitionReason.code)))
    assert codes == {"01", "02", "03", "04", "05", "06", "07", "08", "98", "99"}


def test_only_eligible_in_window_priors_are_offered(client, world, rec, data):
    got = _check(client, rec.doc_a, data["person"], "CMP", world.org_a)
    # expired (R1.6), unmarked (R1.4), conclusion-only (R1.1) and lower-grade B (R1.5) are not offered
    assert [p["report_id"] for p in got["priors"]] == [data["a_ok"]]
    assert got["priors"][0]["price"] == "120.00" and got["priors"][0]["validity_days"] == 7
    by_standard = _check(client, rec.doc_a, data["person"], "24323-8", world.org_a)
    assert [p["report_id"] for p in by_standard["priors"]] == [data["a_ok"]]


def test_lower_grade_accepts_higher(client, world, rec, data):
    got = _check(client, rec.doc_b, data["person"], "CMP", world.org_b)
    assert {p["report_id"] for p in got["priors"]} == {data["a_ok"], data["b_lab"]}


def test_community_imaging_recognised_upwards(client, world, rec, data):
    got = _check(client, rec.doc_a, data["person"], "CT-HEAD", world.org_a)
    assert [p["report_id"] for p in got["priors"]] == [data["b_ct"]]


def test_check_errors(client, world, rec, data):
    h = auth(rec.doc_a)
    r = client.post("/api/recognition/check", json={"person_id": data["person"], "item_code": "NOPE",
                                                    "ordering_org_id": world.org_a}, headers=h)
    assert r.status_code == 400
    r = client.post("/api/recognition/check", json={"person_id": data["person"], "item_code": "CMP",
                                                    "ordering_org_id": world.org_b}, headers=h)
    assert r.status_code == 403
    post = lambda person, org: client.post("/api/recognition/check", headers=h, json={  # noqa: E731
        "person_id": person, "item_code": "CMP", "ordering_org_id": org}).status_code
    assert post("nobody", world.org_a) == 404
    assert post("nobody", "no-such-org") == 404  # an unknown person first, as before
    assert post(data["person"], "no-such-org") == 400


def test_decisions_need_valid_reason(client, db, world, rec, data):
    h = auth(rec.doc_a)
    check_id = _check(client, rec.doc_a, data["person"], "CMP", world.org_a)["check_id"]
    post = lambda body: client.post("/api/recognition/decisions", json={"check_id": check_id, **body}, headers=h)  # noqa: E731
    assert post({"decision": "repeated"}).status_code == 400
    assert post({"decision": "repeated", "reason_code": "42"}).status_code == 400
    assert post({"decision": "repeated", "reason_code": "99"}).status_code == 400
    ok99 = post({"decision": "repeated", "reason_code": "99", "disease": "2型糖尿病"})
    assert ok99.status_code == 201, ok99.text
    assert ok99.json()["disease"] == "2型糖尿病"
    assert post({"decision": "repeated", "reason_code": "07", "remark": "病情变化"}).status_code == 201
    assert post({"decision": "recognised"}).status_code == 201
    assert client.post("/api/recognition/decisions", json={"check_id": "x" * 32, "decision": "recognised"},
                       headers=h).status_code == 404
    with db.session() as s:
        rows = list(s.scalars(select(RecognitionDecision).where(RecognitionDecision.check_id == check_id)))
        assert sorted(r.decision for r in rows) == ["recognised", "repeated", "repeated"]
        assert all(r.person_id == data["person"] for r in rows)
        ids = [f"RecognitionDecision/{r.id}" for r in rows] + [f"RecognitionDecision/{check_id}"]
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.entity_what.in_(ids))) == 4
        assert s.scalar(select(func.count()).select_from(OutboxEvent).where(
            OutboxEvent.aggregate_id.in_([r.id for r in rows] + [check_id]))) == 4


# --- CDS Hooks -------------------------------------------------------------------------------------

def _request(patient_id, codes=("CT-HEAD",), hook="order-select", **drop):
    body = {"hook": hook, "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
            "context": {"userId": "Practitioner/1", "patientId": patient_id, "selections": ["ServiceRequest/sr1"],
                        "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": [
                            {"resource": {"resourceType": "ServiceRequest", "id": f"sr{i}", "status": "draft",
                                          "intent": "order", "subject": {"reference": f"Patient/{patient_id}"},
                                          "code": {"coding": [{"system": "urn:onetrip:cs:local", "code": c}]}}}
                            for i, c in enumerate(codes, 1)]}}}
    for k in drop:
        (body["context"] if k in ("patientId", "draftOrders") else body).pop(k)
    return body


def test_discovery_has_required_fields(client):
    r = client.get("/cds-services")
    assert r.status_code == 200
    services = r.json()["services"]
    assert {s["hook"] for s in services} == {"order-select", "order-sign"}
    for s in services:
        assert s["id"] and s["description"] and s["hook"]


def test_cds_call_returns_cards_and_feedback_is_recorded(client, db, rec, data):
    h = auth(rec.doc_a)
    r = client.post(f"/cds-services/{SEL}", json=_request(data["rec_a"], codes=("CT-HEAD", "CBC")), headers=h)
    assert r.status_code == 200, r.text
    cards = r.json()["cards"]
    assert len(cards) == 1  # CBC has no prior
    card = cards[0]
    assert len(card["summary"]) <= 140 and card["indicator"] in ("info", "warning", "critical")
    assert card["source"]["label"]
    assert card["selectionBehavior"] == "at-most-one"
    action = card["suggestions"][0]["actions"][0]
    assert action["type"] == "delete" and action["resourceId"] == ["ServiceRequest/sr1"]
    assert {c["code"] for c in card["overrideReasons"]} >= {"01", "07", "98", "99"}
    assert all(c["system"] and c["display"] for c in card["overrideReasons"])
    fb = f"/cds-services/{SEL}/feedback"
    bad = client.post(fb, json={"feedback": [{"card": card["uuid"], "outcome": "overridden"}]}, headers=h)
    assert bad.status_code == 400 and bad.json()["resourceType"] == "OperationOutcome"
    over = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": NOW.isoformat(),
            "overrideReason": {"reason": {"system": "urn:onetrip:cs:recognition-reason", "code": "04"}}}
    assert client.post(fb, json={"feedback": [over]}, headers=h).status_code == 200
    assert client.post(fb, json={"feedback": [{"card": card["uuid"], "outcome": "accepted"}]},
                       headers=h).status_code == 200
    with db.session() as s:
        rows = list(s.scalars(select(RecognitionDecision).where(RecognitionDecision.check_id == card["uuid"])))
        assert sorted((r.decision, r.reason_code, r.channel) for r in rows) == [
            ("recognised", None, "cds-hooks"), ("repeated", "04", "cds-hooks")]
        check = s.get(RecognitionDecision, card["uuid"])
        assert check.hook_instance == "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea" and check.prior_ids == [data["b_ct"]]


@pytest.mark.parametrize("drop", ["hook", "hookInstance", "patientId", "draftOrders"])
def test_cds_request_missing_required_field_is_400(client, rec, data, drop):
    r = client.post(f"/cds-services/{SEL}", json=_request(data["rec_a"], **{drop: True}), headers=auth(rec.doc_a))
    assert r.status_code == 400, r.text
    assert r.json()["resourceType"] == "OperationOutcome"


def test_cds_wrong_hook_and_unknown_service(client, rec, data):
    h = auth(rec.doc_a)
    assert client.post(f"/cds-services/{SEL}", json=_request(data["rec_a"], hook="order-sign"),
                       headers=h).status_code == 400
    assert client.post("/cds-services/nope", json=_request(data["rec_a"]), headers=h).status_code == 404
    assert client.post(f"/cds-services/{SEL}", json=_request(data["rec_a"])).status_code == 401


def test_check_audits_the_read_and_the_check_on_one_chain(client, db, world, rec, data):
    check_id = _check(client, rec.doc_a, data["person"], "CMP", world.org_a)["check_id"]
    with db.session() as s:
        read = s.scalars(select(AuditEvent).where(
            AuditEvent.entity_what == f"Person/{data['person']}/recognition?item=CMP",
            AuditEvent.agent_org_id == world.org_a).order_by(AuditEvent.seq.desc())).first()
        created = s.scalars(select(AuditEvent).where(
            AuditEvent.entity_what == f"RecognitionDecision/{check_id}")).one()
        assert (read.subtype, read.action, read.outcome, read.entity_person_id) == ("read", "R", "0", data["person"])
        assert read.detail["rule"] and read.detail["basis"]
        assert (created.subtype, created.action, created.entity_person_id) == ("create", "C", data["person"])
        # the read first, then the check, next to each other on the same chain, and the chain holds
        assert (created.chain, created.chain_seq, created.prev_hash) == (read.chain, read.chain_seq + 1, read.row_hash)
        assert audit.verify(s)[1] == []


def test_denied_check_is_audited_and_logs_nothing(client, db, world, rec):
    person_b = register_patient(db, world.org_b, name="钱多", id_number=resident_id())
    with db.session() as s:
        person = s.get(PatientRecord, person_b).person_id
    r = client.post("/api/recognition/check", json={"person_id": person, "item_code": "CMP",
                                                    "ordering_org_id": world.org_a}, headers=auth(rec.doc_a))
    assert r.status_code == 403
    with db.session() as s:
        denied = s.scalars(select(AuditEvent).where(AuditEvent.entity_person_id == person,
                                                    AuditEvent.entity_what.like("%/recognition?item=CMP"))).all()
        assert [(e.subtype, e.outcome) for e in denied] == [("read", "4")]
        assert s.scalar(select(func.count()).select_from(RecognitionDecision).where(
            RecognitionDecision.person_id == person)) == 0
