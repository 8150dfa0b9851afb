"""POST /fhir/R4/$immds-forecast on SQLite and PostgreSQL: the schedule table from the migrations and the seed,
inline and registered patients (access-checked and audited), ImmunizationRecommendation output, 400s naming the
parameter, the operator's rule value and a new edition as data."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from onetrip.audit.models import AuditEvent
from onetrip.immunization.fhir import LATEST, VACCINE_SYSTEM
from onetrip.immunization.models import ScheduleDose
from onetrip.immunization.service import seed_schedule
from onetrip.kit.fhir import model_class
from onetrip.kit.principal import cli_principal
from onetrip.rules.service import set_rule
from tests.factories import auth, register_patient, token

URL = "/fhir/R4/$immds-forecast"
EARLIEST_CODE, DUE_CODE = "30981-5", "30980-7"


def imm(code: str, day: str, status: str = "completed") -> dict:
    return {"name": "immunization", "resource": {
        "resourceType": "Immunization", "status": status, "patient": {"display": "child"},
        "vaccineCode": {"coding": [{"system": VACCINE_SYSTEM, "code": code}]}, "occurrenceDateTime": day}}


def params(assessed: str | None, patient: dict | None, *doses: dict) -> dict:
    parts = []
    if assessed is not None:
        parts.append({"name": "assessmentDate", "valueDate": assessed})
    if patient is not None:
        parts.append(patient)
    return {"resourceType": "Parameters", "parameter": [*parts, *doses]}


def inline(birth: str | None = "2024-06-01", gender: str | None = "female") -> dict:
    p = {"resourceType": "Patient", "name": [{"text": "小明"}]}
    if birth:
        p["birthDate"] = birth
    if gender:
        p["gender"] = gender
    return {"name": "patient", "resource": p}


def entries(resp) -> dict[str, dict]:
    rec = resp.json()["parameter"][0]["resource"]
    return {e["series"]: e for e in rec["recommendation"]}


def dates(entry: dict) -> dict[str, str]:
    return {c["code"]["coding"][0]["code"]: c["value"] for c in entry.get("dateCriterion", [])}


def status(entry: dict) -> str:
    return next(c["code"] for c in entry["forecastStatus"]["coding"] if "onetrip" in c["system"])


@pytest.fixture(scope="module")
def doc_a(client, world, schedule_seeded):
    return auth(token(client, world.users["doc_a"]))


@pytest.fixture(scope="module")
def doc_b(client, world, schedule_seeded):
    return auth(token(client, world.users["doc_b"]))


def test_the_seed_loads_both_editions_once(db, schedule_seeded):
    assert schedule_seeded == 58
    with db.session() as s:
        assert seed_schedule(s) == 0  # idempotent: nothing added, nothing overwritten
        editions = {e for e in s.scalars(select(ScheduleDose.edition))}
    assert editions == {"2021", "2025"}


def test_forecast_for_an_inline_patient(client, doc_a):
    """HepB 4-month rule, through the API: the ImmunizationRecommendation validates and carries the dates."""
    r = client.post(URL, json=params("2025-04-20", inline(), imm("HepB", "2025-01-10"), imm("HepB", "2025-02-07")),
                    headers=doc_a)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["resourceType"] == "Parameters"
    rec = out["parameter"][0]["resource"]
    assert out["parameter"][0]["name"] == "recommendation"
    model_class("ImmunizationRecommendation").model_validate(rec)
    assert rec["patient"] == {"reference": "#patient"} and rec["contained"][0]["birthDate"] == "2024-06-01"
    hepb = entries(r)["HepB"]
    assert hepb["doseNumberPositiveInt"] == 3
    assert hepb["vaccineCode"][0]["coding"][0] == {"system": VACCINE_SYSTEM, "code": "HepB",
                                                   "display": "hepatitis B vaccine"}
    assert dates(hepb) == {EARLIEST_CODE: "2025-05-10", DUE_CODE: "2025-05-10", LATEST: "2025-06-01"}
    assert status(hepb) == "notdue"
    assert any(c["text"] == "earliest:interval:dose-1" for c in hepb["forecastReason"])
    bcg = entries(r)["BCG"]
    assert status(bcg) == "overdue"
    assert {"system": "http://terminology.hl7.org/CodeSystem/immunization-recommendation-status",
            "code": "overdue"} in bcg["forecastStatus"]["coding"]


def test_not_done_and_entered_in_error_doses_do_not_count(client, doc_a):
    r = client.post(URL, json=params("2025-04-20", inline(), imm("HepB", "2024-06-01"),
                                     imm("HepB", "2024-07-01", "entered-in-error"),
                                     imm("HepB", "2024-07-02", "not-done")), headers=doc_a)
    assert r.status_code == 200, r.text
    assert entries(r)["HepB"]["doseNumberPositiveInt"] == 2


def test_complete_series_carry_no_dates(client, doc_a):
    r = client.post(URL, json=params("2025-04-20", inline(), imm("BCG", "2024-06-01")), headers=doc_a)
    bcg = entries(r)["BCG"]
    assert status(bcg) == "complete" and "doseNumberPositiveInt" not in bcg and "dateCriterion" not in bcg


def test_registered_patient_is_read_with_an_audit_event(client, db, world, doc_a):
    rid = register_patient(db, world.org_a, name="李小宝", sex="2", birth_date=dt.date(2012, 6, 15))
    body = params("2025-07-01", {"name": "patient", "valueReference": {"reference": f"Patient/{rid}"}})
    r = client.post(URL, json=body, headers=doc_a)
    assert r.status_code == 200, r.text
    rec = r.json()["parameter"][0]["resource"]
    assert rec["patient"] == {"reference": f"Patient/{rid}"}
    hpv = entries(r)["HPV2"]  # a girl of 13 in 2025
    assert status(hpv) == "due" and dates(hpv)[EARLIEST_CODE] == "2025-06-15"
    with db.session() as s:
        rows = s.scalars(select(AuditEvent).where(AuditEvent.entity_what == f"Patient/{rid}",
                                                  AuditEvent.subtype == "read")).all()
    assert rows and rows[-1].outcome == "0"


def test_another_institutions_patient_needs_access_and_the_denial_is_audited(client, db, world, doc_b):
    rid = register_patient(db, world.org_a, name="王小宝", sex="1", birth_date=dt.date(2025, 1, 20))
    body = params("2025-10-01", {"name": "patient", "valueReference": {"reference": f"Patient/{rid}"}})
    r = client.post(URL, json=body, headers=doc_b)
    assert r.status_code == 403, r.text
    assert r.json()["resourceType"] == "OperationOutcome"
    with db.session() as s:
        denied = s.scalars(select(AuditEvent).where(AuditEvent.entity_what == f"Patient/{rid}",
                                                    AuditEvent.outcome == "4")).all()
    assert denied


@pytest.mark.parametrize(("body", "where"), [
    ({"resourceType": "Patient"}, "Parameters"),
    (params(None, inline()), "assessmentDate"),
    (params("2025-13-40", inline()), "assessmentDate"),
    (params("2025-04-20", None), "patient"),
    (params("2025-04-20", inline(birth=None)), "patient.birthDate"),
    (params("2025-04-20", inline(gender=None)), "patient.gender"),
    (params("2025-04-20", inline(birth="2025-05-01")), "patient.birthDate"),
    (params("2025-04-20", inline(), imm("XYZ", "2025-01-01")), "immunization[0].vaccineCode"),
    (params("2025-04-20", inline(), imm("HepB", "2024-06-01"), imm("MMR", "2023-01-01")),
     "immunization[1].occurrenceDateTime"),
    (params("2025-04-20", inline(), imm("HepB", "2025-05-01")), "immunization[0].occurrenceDateTime"),
    (params("2025-04-20", inline(), imm("HepB", "someday")), "immunization[0].occurrenceDateTime"),
    (params("2025-04-20", inline(), {"name": "immunization", "resource": {"resourceType": "Observation"}}),
     "immunization[0]"),
    (params("2025-04-20", {"name": "patient", "valueReference": {"reference": "Patient/nope"}}), "patient"),
    (params("2025-04-20", {"name": "patient", "valueReference": {"reference": "Organization/x"}}), "patient"),
    ({"resourceType": "Parameters", "parameter": [{"name": "assessmentDate", "valueDate": "2025-04-20"},
                                                  {"name": "assessmentDate", "valueDate": "2025-04-21"}]},
     "assessmentDate"),
    ({"resourceType": "Parameters", "parameter": [{"name": "colour", "valueString": "red"}]},
     "Parameters.parameter[0].name"),
    ({"resourceType": "Parameters", "parameter": "x"}, "Parameters.parameter"),
    ([1, 2], "Parameters"),
    (params("9999-12-31", inline()), "assessmentDate"),
    (params("2025-04-20", inline(), {"name": "immunization", "resource": {
        "resourceType": "Immunization", "vaccineCode": "HepB", "occurrenceDateTime": "2025-01-01"}}),
     "immunization[0].vaccineCode"),
    (params("2025-04-20", inline(), imm("HepB", "0001-01-01T00:00:00+14:00")), "immunization[0].occurrenceDateTime"),
    (params("2025-04-20", {"name": "patient", "valueReference": "Patient/1"}), "patient"),
])
def test_bad_input_is_a_400_naming_the_parameter(client, doc_a, body, where):
    r = client.post(URL, json=body, headers=doc_a)
    assert r.status_code == 400, r.text
    issue = r.json()["issue"][0]
    assert issue["expression"] == [where], issue
    assert " / " in issue["details"]["text"]  # 中文 / English


def test_needs_a_token_and_the_scope(client, world, schedule_seeded):
    assert client.post(URL, json=params("2025-04-20", inline())).status_code == 401
    mgr = auth(token(client, world.users["mgr"]))  # bureau manager: no ImmunizationRecommendation scope
    assert client.post(URL, json=params("2025-04-20", inline()), headers=mgr).status_code == 403


def test_capability_statement_lists_the_operation(client):
    cs = client.get("/fhir/R4/metadata").json()
    assert {"name": "immds-forecast",
            "definition": "http://hl7.org/fhir/us/immds/OperationDefinition/immds-forecast"} in cs["rest"][0]["operation"]


def test_the_dtap_transition_is_the_operators_rule_value(client, db, doc_a):
    """Born 2024, DTaP begun on the 2021 schedule: dose 3 at 6 m by default, at 5 m once the operator keeps 2021."""
    body = params("2025-02-12", inline("2024-09-10"), imm("DTaP", "2024-12-10"), imm("DTaP", "2025-01-10"))
    assert dates(entries(client.post(URL, json=body, headers=doc_a))["DTaP"])[EARLIEST_CODE] == "2025-03-10"
    with db.session() as s:
        set_rule(s, "immunization", "dtap_transition",
                 {"series": "DTaP", "born_before": "2025-01-01", "edition": "2021"}, by="test",
                 effective_from=dt.date(2025, 1, 1))
        s.commit()
    try:
        dtap = entries(client.post(URL, json=body, headers=doc_a))["DTaP"]
        assert dates(dtap)[EARLIEST_CODE] == "2025-02-10" and status(dtap) == "due"
    finally:
        with db.session() as s:
            set_rule(s, "immunization", "dtap_transition",
                     {"series": "DTaP", "born_before": "2025-01-01", "edition": "2025"}, by="test",
                     effective_from=dt.date(2025, 1, 1))
            s.commit()


def test_a_new_edition_is_rows_in_the_table(client, db, doc_a):
    """An operator adds a 2027 edition (BCG complete-before moved to 6 m): used from its effective date on."""
    with db.session() as s:
        base = s.scalars(select(ScheduleDose).where(ScheduleDose.edition == "2025")).all()
        for r in base:
            s.add(ScheduleDose(edition="2027", effective_from=dt.date(2027, 1, 1), series=r.series,
                               dose_number=r.dose_number, vaccine_code=r.vaccine_code, min_age=r.min_age,
                               complete_before="6m" if r.series == "BCG" else r.complete_before,
                               intervals=r.intervals, live_injectable=r.live_injectable, sex=r.sex,
                               alt_group=r.alt_group, alt_rank=r.alt_rank, updated_by=cli_principal().name))
        s.commit()
        assert seed_schedule(s) == 0
    old = entries(client.post(URL, json=params("2026-12-20", inline("2026-09-01")), headers=doc_a))["BCG"]
    new = entries(client.post(URL, json=params("2027-01-05", inline("2026-10-01")), headers=doc_a))["BCG"]
    assert dates(old)[LATEST] == "2026-12-01" and status(old) == "overdue"
    assert dates(new)[LATEST] == "2027-04-01" and status(new) == "due"


def test_a_malformed_rule_value_is_a_clear_error_not_a_500(client, db, doc_a):
    with db.session() as s:
        set_rule(s, "immunization", "dtap_transition", "keep the old one", by="test", effective_from=dt.date(2030, 1, 1))
        s.commit()
    r = client.post(URL, json=params("2030-02-01", inline("2025-01-01")), headers=doc_a)
    assert r.status_code == 503, r.text
    assert "onetrip rules set immunization" in r.json()["issue"][0]["details"]["text"]
    ok = client.post(URL, json=params("2029-12-31", inline("2025-01-01")), headers=doc_a)  # the value before then
    assert ok.status_code == 200, ok.text
