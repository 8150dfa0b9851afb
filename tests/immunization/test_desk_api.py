"""The vaccines, trace codes and the vaccination desk (issue 20 points 2 and 3) on SQLite and PostgreSQL:
inbound from the county CDC, stock per clinic and fridge, the R6.5 checks ticked or failed with the reason
(beyond its doses, expired lot, quarantined lot, malformed code, wrong child, interval too short,
contraindication), the R6.6 record, entered-in-error, the observation board, and the last dose taken once."""

from __future__ import annotations

import datetime as dt
import itertools
import threading

from sqlalchemy import select, update

from onetrip.audit.models import AuditEvent
from onetrip.immunization import service
from onetrip.immunization.models import VaccineLot, VaccinePackage
from onetrip.immunization.schemas import RecordIn
from onetrip.kit import clock
from onetrip.kit.errors import Conflict
from onetrip.kit.principal import cli_principal
from onetrip.outbox.models import OutboxEvent
from tests.factories import auth, register_patient, token

API = "/api/immunization"
NO = {"fever": False, "allergy": False, "immune": False, "neuro": False, "reaction": False}
_codes = itertools.count(1)


def codes(n: int, prefix: str = "8") -> list[str]:
    return [f"{prefix}{next(_codes):019d}" for _ in range(n)]


def born(days_ago: int) -> dt.date:
    return clock.local_date(clock.utcnow()) - dt.timedelta(days=days_ago)


def inbound(client, hdr, world, *, code="HepB", n=2, doses=1, expiry=None, lot=None, fridge_id=None) -> dict:
    tc = codes(n)
    body = {"organization_id": world.org_a, "vaccine_code": code, "product_name": f"{code} 疫苗 10μg",
            "holder": "示例生物制品有限公司", "specification": f"0.5 mL/支 ×{doses}", "doses_per_package": doses,
            "lot_number": lot or f"L{next(_codes)}", "expiry": (expiry or born(-365)).isoformat(),
            "trace_codes": tc, "fridge_id": fridge_id}
    r = client.post(f"{API}/inbound", json=body, headers=hdr)
    assert r.status_code == 201, r.text
    return {**r.json(), "codes": tc}


def child(db, world, days: int = 70) -> str:
    return register_patient(db, world.org_a, name="王小宝", sex="1", birth_date=born(days))


def check(client, hdr, patient, code, answers=None, certificate=None):
    r = client.post(f"{API}/desk/check", headers=hdr, json={
        "patient_id": patient, "trace_code": code, "answers": NO if answers is None else answers,
        **({"certificate": certificate} if certificate else {})})
    assert r.status_code == 200, r.text
    return r.json()


def failed(verdict: dict) -> dict[str, str]:
    return {c["key"]: c["reason"] for c in verdict["checks"] if not c["ok"]}


def record(client, hdr, patient, code, answers=None):
    return client.post(f"{API}/desk/vaccinations", headers=hdr, json={
        "patient_id": patient, "trace_code": code, "answers": NO if answers is None else answers,
        "site": "right-deltoid", "route": "IM"})


def test_inbound_stock_and_refusals(client, vac, world):
    r = client.post(f"{API}/fridges", headers=vac, json={"name": "冷藏柜1"})
    assert r.status_code == 201, r.text
    fridge = r.json()["id"]
    got = inbound(client, vac, world, code="IPV", n=3, doses=1, fridge_id=fridge)
    assert got["packages"] == 3 and got["doses"] == 3
    rows = [x for x in client.get(f"{API}/stock", headers=vac).json() if x["fridge_id"] == fridge]
    assert [(x["vaccine_code"], x["packages"], x["doses_left"], x["fridge_name"]) for x in rows] == [
        ("IPV", 3, 3, "冷藏柜1")]
    base = {"organization_id": world.org_a, "vaccine_code": "IPV", "product_name": "x", "holder": "y",
            "specification": "z", "doses_per_package": 1, "lot_number": "Q1", "expiry": "2030-01-01"}
    short = client.post(f"{API}/inbound", headers=vac, json={**base, "trace_codes": ["1234567890123456789"]})
    assert short.status_code == 400 and "trace_codes" in short.text
    again = client.post(f"{API}/inbound", headers=vac, json={**base, "trace_codes": [got["codes"][0]]})
    assert again.status_code == 409 and got["codes"][0] in again.text
    bad = client.post(f"{API}/inbound", headers=vac, json={**base, "vaccine_code": "XYZ", "trace_codes": codes(1)})
    assert bad.status_code == 400 and "vaccine_code" in bad.text


def test_a_clinician_reads_but_cannot_record(client, doc, vac, world, db):
    patient = child(db, world)
    code = inbound(client, vac, world)["codes"][0]
    assert client.get(f"{API}/desk/child", params={"q": patient}, headers=doc).status_code == 200
    assert client.post(f"{API}/desk/check", headers=doc, json={"patient_id": patient, "trace_code": code}
                       ).status_code == 403
    assert record(client, doc, patient, code).status_code == 403


def test_the_whole_desk_flow(client, vac, world, db):
    patient = child(db, world)
    qr = service.certificate_qr_text(patient)
    r = client.get(f"{API}/desk/child", params={"q": qr}, headers=vac)
    assert r.status_code == 200, r.text
    c = r.json()
    assert c["patient_id"] == patient and "*" in c["name"]
    assert ("HepB", 1) in {(d["vaccine_code"], d["dose_number"]) for d in c["due"]}
    assert {q["key"] for q in c["questions"]} == set(NO)
    code = inbound(client, vac, world, doses=1)["codes"][0]
    v = check(client, vac, qr, f" {code[:10]} {code[10:]}\n", certificate=qr)  # a scanner's spaces are ignored
    assert v["ok"] and v["vaccine_code"] == "HepB" and v["dose_number"] == 1
    assert [c["key"] for c in v["checks"]] == ["code", "package", "lot", "expiry", "patient", "vaccine", "interval",
                                              "contraindications"]
    r = record(client, vac, qr, code)
    assert r.status_code == 201, r.text
    rec = r.json()
    assert (rec["vaccine_code"], rec["dose_number"], rec["trace_code"], rec["route"]) == ("HepB", 1, code, "IM")
    assert rec["holder"] == "示例生物制品有限公司" and rec["vaccinator_name"] == f"vac{world.org_a_code}" and rec["lot_number"]
    with db.session() as s:
        assert s.scalar(select(VaccinePackage.doses_left).where(VaccinePackage.trace_code == code)) == 0
        assert s.scalar(select(AuditEvent).where(AuditEvent.entity_what == f"Immunization/{rec['id']}")) is not None
    board = client.get(f"{API}/desk/observation", headers=vac).json()
    row = next(b for b in board if b["vaccination_id"] == rec["id"])
    assert row["minutes_left"] == 30 and "*" in row["name"]
    after = client.get(f"{API}/desk/child", params={"q": patient}, headers=vac).json()
    assert "HepB" in after["given_today"]
    assert ("HepB", 1) not in {(d["vaccine_code"], d["dose_number"]) for d in after["due"]}


def test_beyond_its_doses_is_refused(client, vac, world, db):
    first, second = child(db, world), child(db, world)
    code = inbound(client, vac, world, doses=1)["codes"][0]
    assert record(client, vac, first, code).status_code == 201
    v = check(client, vac, second, code)
    assert not v["ok"] and "已全部使用" in failed(v)["package"] and "cannot be used again" in failed(v)["package"]
    r = record(client, vac, second, code)
    assert r.status_code == 409 and "cannot be used again" in r.text


def test_a_two_dose_package_gives_two_doses(client, vac, world, db):
    code = inbound(client, vac, world, doses=2)["codes"][0]
    assert record(client, vac, child(db, world), code).status_code == 201
    assert record(client, vac, child(db, world), code).status_code == 201
    assert record(client, vac, child(db, world), code).status_code == 409


def test_expired_lot_is_refused(client, vac, world, db):
    code = inbound(client, vac, world, expiry=born(1))["codes"][0]
    v = check(client, vac, child(db, world), code)
    assert list(failed(v)) == ["expiry"] and "过期" in failed(v)["expiry"] and "expired" in failed(v)["expiry"]
    assert record(client, vac, child(db, world), code).status_code == 409


def test_quarantined_lot_is_refused(client, vac, world, db):
    got = inbound(client, vac, world)
    with db.session() as s:
        s.execute(update(VaccineLot).where(VaccineLot.id == got["lot_id"]).values(status="quarantined"))
        s.commit()
    v = check(client, vac, child(db, world), got["codes"][0])
    assert list(failed(v)) == ["lot"] and "quarantined" in failed(v)["lot"]
    r = record(client, vac, child(db, world), got["codes"][0])
    assert r.status_code == 409 and "隔离" in r.text


def test_malformed_and_unknown_codes_are_refused(client, vac, world, db):
    patient = child(db, world)
    v = check(client, vac, patient, "1234567890")
    assert [c["key"] for c in v["checks"]] == ["code"] and "20" in failed(v)["code"]
    v = check(client, vac, patient, codes(1, "9")[0])
    assert list(failed(v)) == ["package"] and "receive it into stock" in failed(v)["package"]


def test_wrong_child_is_refused(client, vac, world, db):
    a, b = child(db, world), child(db, world)
    code = inbound(client, vac, world)["codes"][0]
    v = check(client, vac, a, code, certificate=service.certificate_qr_text(b))
    assert list(failed(v)) == ["patient"] and "another child" in failed(v)["patient"]


def test_vaccine_not_due_and_interval_too_short(client, vac, world, db):
    patient = child(db, world)
    first, second = inbound(client, vac, world, n=2)["codes"]
    assert record(client, vac, patient, first).status_code == 201  # HepB-1 today
    v = check(client, vac, patient, second)  # HepB-2 needs 28 days after dose 1 (R6.2)
    assert list(failed(v)) == ["interval"] and "too early" in failed(v)["interval"] and v["dose_number"] == 2
    r = record(client, vac, patient, second)
    assert r.status_code == 409 and "最早接种日期" in r.text
    mmr = inbound(client, vac, world, code="MMR")["codes"][0]  # 8 months: not yet in this child's schedule
    v = check(client, vac, patient, mmr)
    assert "interval" in failed(v)


def test_a_contraindication_stops_the_dose(client, vac, world, db):
    code = inbound(client, vac, world)["codes"][0]
    v = check(client, vac, child(db, world), code, answers={**NO, "fever": True})
    assert list(failed(v)) == ["contraindications"] and "Fever" in failed(v)["contraindications"]
    v = check(client, vac, child(db, world), code, answers={"fever": False})
    assert list(failed(v)) == ["contraindications"] and "allergy" in failed(v)["contraindications"]


def test_entered_in_error_no_longer_counts(client, vac, world, db):
    patient = child(db, world)
    first, second = inbound(client, vac, world, n=2)["codes"]
    rec = record(client, vac, patient, first).json()
    r = client.post(f"{API}/vaccinations/{rec['id']}/entered-in-error", headers=vac, json={"reason": "扫错儿童"})
    assert r.status_code == 200 and r.json()["status"] == "entered-in-error"
    v = check(client, vac, patient, second)
    assert v["ok"] and v["dose_number"] == 1  # dose 1 is due again
    again = client.post(f"{API}/vaccinations/{rec['id']}/entered-in-error", headers=vac, json={"reason": "再次"})
    assert again.status_code == 409
    with db.session() as s:
        events = s.scalars(select(OutboxEvent).where(OutboxEvent.aggregate_id == rec["id"])
                           .order_by(OutboxEvent.id)).all()
    assert [(e.event_type, e.payload.get("source")) for e in events] == [
        ("immunization.recorded", "desk"), ("immunization.entered_in_error", None)]
    assert events[0].person_id == events[1].person_id and events[0].payload["vaccine_code"] == "HepB"


def test_observation_board_with_several_children_audits_each(client, vac, world, db):
    kids = [child(db, world), child(db, world)]
    tc = inbound(client, vac, world, n=2)["codes"]
    recs = [record(client, vac, k, c).json()["id"] for k, c in zip(kids, tc, strict=True)]
    r = client.get(f"{API}/desk/observation", headers=vac)
    assert r.status_code == 200, r.text
    assert set(recs) <= {b["vaccination_id"] for b in r.json()}
    page = client.get("/ui/immunization/observation", headers=vac)
    assert page.status_code == 200, page.text[:300]
    with db.session() as s:
        persons = set(s.scalars(select(OutboxEvent.person_id).where(OutboxEvent.aggregate_id.in_(recs))))
        audited = set(s.scalars(select(AuditEvent.entity_person_id)
                                .where(AuditEvent.entity_what == "Immunization?observation")))
    assert len(persons) == 2 and persons <= audited


def test_unknown_child_is_a_clear_404(client, vac):
    r = client.get(f"{API}/desk/child", params={"q": "ONETRIP-IMM:nosuchchild"}, headers=vac)
    assert r.status_code == 404 and "no registered child" in r.text


def test_concurrent_scans_of_the_last_dose_one_wins(client, vac, world, db):
    """Two desks record the last dose of one package at the same moment: exactly one record, doses_left 0."""
    code = inbound(client, vac, world, doses=1)["codes"][0]
    kids = [child(db, world), child(db, world)]
    start = threading.Barrier(2)
    outcome: list[str] = []

    def desk(patient: str) -> None:
        with db.session() as s:
            start.wait()
            try:
                service.record_vaccination(s, cli_principal(), RecordIn(
                    patient_id=patient, trace_code=code, answers=NO, site="left-deltoid", route="IM"))
                s.commit()
                outcome.append("won")
            except Conflict:
                s.rollback()
                outcome.append("refused")
            except Exception as e:  # SQLite: one writer at a time; a busy database is a refusal too
                s.rollback()
                outcome.append(f"refused: {type(e).__name__}")

    threads = [threading.Thread(target=desk, args=(k,)) for k in kids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert outcome.count("won") == 1 and len(outcome) == 2, outcome
    with db.session() as s:
        assert s.scalar(select(VaccinePackage.doses_left).where(VaccinePackage.trace_code == code)) == 0


def test_the_api_states_the_vaccine_codes_of_the_code_system():
    from typing import get_args

    from onetrip.immunization.codes import VACCINES
    from onetrip.immunization.schemas import VaccineCode

    assert set(get_args(VaccineCode)) == set(VACCINES)


def test_an_account_without_a_clinic_is_told_to_name_one(client, world):
    admin = auth(token(client, world.users["admin"]))
    r = client.post(f"{API}/fridges", headers=admin, json={"name": "x"})
    assert r.status_code == 403 and "organization_id" in r.text
    r = client.post(f"{API}/fridges", headers=admin, params={"organization_id": "nosuchorg"}, json={"name": "x"})
    assert r.status_code == 404
    assert client.get(f"{API}/stock", headers=admin).status_code == 200  # every clinic's


def test_desk_form_errors_are_pages_not_json(client, doc, vac, world, db):
    """The desk's form handlers read the form asynchronously: their refusals are still rendered as pages."""
    patient = child(db, world)
    code = inbound(client, vac, world)["codes"][0]
    denied = client.post("/ui/immunization/desk/check", headers=doc, data={"patient_id": patient, "trace_code": code})
    assert denied.status_code == 403 and denied.headers["content-type"].startswith("text/html")
    assert "<html" in denied.text.lower() and "Immunization" in denied.text
    bad = client.post("/ui/immunization/desk/record", headers=vac, data={
        "patient_id": patient, "trace_code": code, "site": "nowhere", "route": "IM"})
    assert bad.status_code == 400 and bad.headers["content-type"].startswith("text/html")
    assert "请选择接种部位和途径" in bad.text
