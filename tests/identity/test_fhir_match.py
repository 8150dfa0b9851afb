"""Issue 3 §5: POST /fhir/R4/Patient/$match — grades, onlyCertainMatches, count, 4xx, visibility, audit;
Patient.link after a merge."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from onetrip.audit.models import AuditEvent
from onetrip.identity import mpi
from onetrip.identity.fhir import RESIDENT_ID_SYSTEM
from onetrip.kit.fhir import model_class
from onetrip.kit.identifiers import make_resident_id
from onetrip.kit.principal import cli_principal
from onetrip.persons.models import PatientRecord
from tests.factories import auth, register_patient, token

GRADE = "http://hl7.org/fhir/StructureDefinition/match-grade"
FHIR = {"Content-Type": "application/fhir+json"}


@pytest.fixture(scope="module")
def mclient(db):
    """The app as served: $match is an operation the FHIR façade routes (identity declares it)."""
    from fastapi.testclient import TestClient

    from onetrip.app import create_app
    from onetrip.config import Settings

    app = create_app(Settings(database_url=db.url), factory=db.factory)
    with TestClient(app) as c:
        yield c


def _params(patient: dict, **extra) -> dict:
    params = [{"name": "resource", "resource": {"resourceType": "Patient", **patient}}]
    if "only_certain" in extra:
        params.append({"name": "onlyCertainMatches", "valueBoolean": extra["only_certain"]})
    if "count" in extra:
        params.append({"name": "count", "valueInteger": extra["count"]})
    return {"resourceType": "Parameters", "parameter": params}


@pytest.fixture(scope="module")
def people(db, world):
    rid = make_resident_id("330122", dt.date(1962, 8, 9), 512)
    certain = register_patient(db, world.org_a, name="沈桂英", id_number=rid, phone="13700003333", sex="2")
    probable = register_patient(db, world.org_a, name="沈桂英", sex="2", birth_date=dt.date(1962, 8, 9))
    elsewhere = register_patient(db, world.org_b, name="沈桂英", sex="2", birth_date=dt.date(1962, 8, 9),
                                 phone="13900004444")
    return {"rid": rid, "certain": certain, "probable": probable, "elsewhere": elsewhere}


def _entries(r):
    assert r.status_code == 200, r.text
    b = r.json()
    model_class("Bundle").model_validate(b)
    assert b["type"] == "searchset"
    return [(e["resource"]["id"], e["search"]["extension"][0]["valueCode"], e["search"]["score"]) for e in b["entry"]]


def test_grades_and_visibility(mclient, world, people):
    tok = token(mclient, world.users["doc_a"])
    patient = {"name": [{"text": "沈桂英"}], "gender": "female", "birthDate": "1962-08-09",
               "identifier": [{"system": RESIDENT_ID_SYSTEM, "value": people["rid"]}]}
    got = _entries(mclient.post("/fhir/R4/Patient/$match", json=_params(patient), headers=auth(tok) | FHIR))
    ids = [g[0] for g in got]
    assert ids[0] == people["certain"] and got[0][1] == "certain" and got[0][2] > 0.999
    assert people["probable"] in ids  # same name + birth date at A: probable or certain
    assert people["elsewhere"] not in ids  # B's record, no grant: not shown
    assert [g[2] for g in got] == sorted((g[2] for g in got), reverse=True)


def test_only_certain_and_count(mclient, world, people):
    tok = token(mclient, world.users["doc_a"])
    patient = {"name": [{"text": "沈桂英"}], "gender": "female", "birthDate": "1962-08-09"}
    only = _entries(mclient.post("/fhir/R4/Patient/$match", json=_params(patient, only_certain=True),
                                 headers=auth(tok) | FHIR))
    assert all(g[1] == "certain" for g in only)
    one = _entries(mclient.post("/fhir/R4/Patient/$match", json=_params(patient, count=1), headers=auth(tok) | FHIR))
    assert len(one) == 1


def test_admin_sees_every_institution_and_each_result_is_audited(mclient, db, world, people):
    tok = token(mclient, world.users["admin"])
    patient = {"name": [{"text": "沈桂英"}], "gender": "female", "birthDate": "1962-08-09",
               "telecom": [{"system": "phone", "value": "13900004444"}]}
    got = _entries(mclient.post("/fhir/R4/Patient/$match", json=_params(patient), headers=auth(tok) | FHIR))
    assert got[0][0] == people["elsewhere"]
    with db.session() as s:
        evs = s.scalars(select(AuditEvent).where(AuditEvent.query == "Patient/$match",
                                                 AuditEvent.entity_what.in_([f"Patient/{g[0]}" for g in got]))).all()
        assert len(evs) >= len(got)


@pytest.mark.parametrize(("body", "status"), [
    ({"resourceType": "Patient"}, 400),
    ({"resourceType": "Parameters", "parameter": []}, 400),
    ({"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": {"resourceType": "Patient"}}]}, 400),
    (_params({"name": [{"text": "张三"}]}, count=0), 400),
    (_params({"name": [{"text": "张三"}]}, count="3"), 400),
    (_params({"name": [{"text": "张三"}], "birthDate": "1980"}), 400),
    (_params({"name": [{"text": "张三"}], "identifier": [{"system": RESIDENT_ID_SYSTEM, "value": "123"}]}), 400),
    ({"resourceType": "Parameters", "parameter": [{"name": "bogus", "valueBoolean": True}]}, 400),
])
def test_bad_input_is_a_4xx_operation_outcome(mclient, world, body, status):
    tok = token(mclient, world.users["doc_a"])
    r = mclient.post("/fhir/R4/Patient/$match", json=body, headers=auth(tok) | FHIR)
    assert r.status_code == status, r.text
    assert r.json()["resourceType"] == "OperationOutcome"


def test_needs_search_scope(mclient, world):
    r = mclient.post("/fhir/R4/Patient/$match", json=_params({"name": [{"text": "张三"}]}), headers=FHIR)
    assert r.status_code == 401 and r.json()["resourceType"] == "OperationOutcome"


def test_patient_link_after_a_merge(mclient, db, world):
    a = register_patient(db, world.org_a, name="陶然", phone="13700001212")
    b = register_patient(db, world.org_a, name="陶冉", phone="13800001313")
    with db.session() as s:
        pa, pb = s.get(PatientRecord, a).person_id, s.get(PatientRecord, b).person_id
        mpi.merge_persons(s, cli_principal(), pa, pb)
        s.commit()
    tok = token(mclient, world.users["doc_a"])
    old = mclient.get(f"/fhir/R4/Patient/{b}", headers=auth(tok)).json()
    assert old["link"] == [{"other": {"reference": f"Patient/{a}"}, "type": "replaced-by"}]
    assert old["active"] is False
    new = mclient.get(f"/fhir/R4/Patient/{a}", headers=auth(tok)).json()
    assert new["link"] == [{"other": {"reference": f"Patient/{b}"}, "type": "replaces"}]
