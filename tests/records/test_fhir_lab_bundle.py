"""What a laboratory sends: a transaction Bundle of one DiagnosticReport and the Observations its ``result``
lists. Stored report first, the observations inserted with the report's id (never updated afterwards);
the same outcomes as entry by entry. And ``Prefer: return=minimal``."""

from __future__ import annotations

from sqlalchemy import func, select

from onetrip.audit.models import AuditEvent
from onetrip.kit.principal import Principal
from onetrip.kit.scopes import parse_scopes
from onetrip.outbox.models import OutboxEvent
from onetrip.records import observations, service
from onetrip.records.models import DiagnosticReport, Observation
from onetrip.records.schemas import ObservationIn, ReportIn
from tests.factories import auth, register_patient
from tests.records.helpers import LIS, entry, observation, report, uid

FHIR = {"Content-Type": "application/fhir+json"}


def _h(tok: str, **extra: str) -> dict:
    return {**auth(tok), **FHIR, **extra}


def _lab_bundle(pid: str, n: int = 3, *, obs_ids: list[str] | None = None) -> dict:
    obs = [entry(observation(f"Patient/{pid}", value=4.0 + k, ident=(obs_ids or [None] * n)[k])) for k in range(n)]
    rep = entry(report(f"Patient/{pid}", results=[o["fullUrl"] for o in obs]))
    return {"resourceType": "Bundle", "type": "transaction", "entry": [*obs, rep]}


def _idents(body: dict, kind: str) -> list[str]:
    return [i["value"] for e in body["entry"] if e["resource"]["resourceType"] == kind
            for i in e["resource"].get("identifier") or []]


def test_lab_bundle_links_observations_as_they_are_inserted(client, world, rec, db):
    pid = register_patient(db, world.org_a)
    body = _lab_bundle(pid)
    r = client.post("/fhir/R4", json=body, headers=_h(rec.his))
    assert r.status_code == 200, r.text
    out = r.json()["entry"]
    assert [e["response"]["status"] for e in out] == ["201 Created"] * 4
    obs_ids = [e["resource"]["id"] for e in out[:3]]
    rep = out[3]["resource"]
    assert rep["result"] == [{"reference": f"Observation/{i}"} for i in obs_ids]
    assert [e["resource"]["valueQuantity"]["value"] for e in out[:3]] == [4.0, 5.0, 6.0]
    with db.session() as s:
        rows = {o.id: o for o in s.scalars(select(Observation).where(Observation.id.in_(obs_ids)))}
        assert set(rows) == set(obs_ids)
        for o in rows.values():
            assert o.report_id == rep["id"]
            assert o.updated_at == o.created_at  # inserted with its report: never updated to link it
            assert o.resource["subject"] == {"reference": f"Patient/{pid}"}
        stored = s.get(DiagnosticReport, rep["id"])
        assert stored.resource["result"] == rep["result"]
        events = s.scalar(select(func.count()).select_from(OutboxEvent).where(
            OutboxEvent.aggregate_id.in_([*obs_ids, rep["id"]]), OutboxEvent.event_type == "result.stored"))
        assert events == 4
        audited = s.scalars(select(AuditEvent.entity_what).where(
            AuditEvent.entity_what.in_([f"Observation/{i}" for i in obs_ids] + [f"DiagnosticReport/{rep['id']}"]),
            AuditEvent.subtype == "create")).all()
        assert len(audited) == 4
    again = client.post("/fhir/R4", json=body, headers=_h(rec.his)).json()["entry"]  # a re-send finds them all
    assert [e["response"]["status"] for e in again] == ["200 OK"] * 4
    assert [e["resource"]["id"] for e in again] == [*obs_ids, rep["id"]]


def test_known_observations_join_a_new_report(client, world, rec, db):
    pid = register_patient(db, world.org_a)
    ident = uid()
    first = client.post("/fhir/R4/Observation", json=observation(f"Patient/{pid}", ident=ident), headers=_h(rec.his))
    assert first.status_code == 201, first.text
    body = _lab_bundle(pid, 2, obs_ids=[ident, uid()])
    out = client.post("/fhir/R4", json=body, headers=_h(rec.his)).json()["entry"]
    assert [e["response"]["status"] for e in out] == ["200 OK", "201 Created", "201 Created"]
    assert out[0]["resource"]["id"] == first.json()["id"]
    assert out[2]["resource"]["result"][0] == {"reference": f"Observation/{first.json()['id']}"}
    with db.session() as s:
        assert s.get(Observation, first.json()["id"]).report_id == out[2]["resource"]["id"]


def test_a_known_report_keeps_its_results_and_new_observations_stay_unlinked(client, world, rec, db):
    pid = register_patient(db, world.org_a)
    body = _lab_bundle(pid, 2)
    alone = {**body["entry"][2]["resource"]}
    del alone["result"]
    r = client.post("/fhir/R4/DiagnosticReport", json=alone, headers=_h(rec.his))
    assert r.status_code == 201, r.text
    out = client.post("/fhir/R4", json=body, headers=_h(rec.his)).json()["entry"]
    assert [e["response"]["status"] for e in out] == ["201 Created", "201 Created", "200 OK"]
    with db.session() as s:  # as entry by entry: a repeat of a report does not attach results to it
        assert [s.get(Observation, e["resource"]["id"]).report_id for e in out[:2]] == [None, None]


def test_lab_bundle_errors_name_the_same_entry_and_store_nothing(client, world, rec, db):
    pid = register_patient(db, world.org_a)
    unknown = _lab_bundle("does-not-exist", 2)
    r = client.post("/fhir/R4", json=unknown, headers=_h(rec.his))
    assert r.status_code == 400 and "entry 0" in r.json()["issue"][0]["details"]["text"]
    bad_report = _lab_bundle(pid, 2)
    del bad_report["entry"][2]["resource"]["identifier"]
    r = client.post("/fhir/R4", json=bad_report, headers=_h(rec.his))
    assert r.status_code == 400 and "entry 2" in r.json()["issue"][0]["details"]["text"]
    no_value = _lab_bundle(pid, 2)
    del no_value["entry"][1]["resource"]["valueQuantity"]
    r = client.post("/fhir/R4", json=no_value, headers=_h(rec.his))
    assert r.status_code == 400 and "entry 1" in r.json()["issue"][0]["details"]["text"]
    with db.session() as s:
        for body in (unknown, bad_report, no_value):
            assert s.scalar(select(func.count()).select_from(Observation).where(
                Observation.identifier_value.in_(_idents(body, "Observation")))) == 0
            assert s.scalar(select(func.count()).select_from(DiagnosticReport).where(
                DiagnosticReport.identifier_value.in_(_idents(body, "DiagnosticReport")))) == 0


def test_an_observation_of_another_patient_is_refused_as_before(client, world, rec, db):
    pid, other = register_patient(db, world.org_a), register_patient(db, world.org_a)
    body = _lab_bundle(pid, 2)
    body["entry"][1]["resource"]["subject"] = {"reference": f"Patient/{other}"}
    r = client.post("/fhir/R4", json=body, headers=_h(rec.his))
    assert r.status_code == 400 and "entry 2" in r.json()["issue"][0]["details"]["text"]
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Observation).where(
            Observation.identifier_value.in_(_idents(body, "Observation")))) == 0


def test_prefer_return_minimal_leaves_out_the_resources(client, world, rec, db):
    pid = register_patient(db, world.org_a)
    body = _lab_bundle(pid, 2)
    r = client.post("/fhir/R4", json=body, headers=_h(rec.his, Prefer="return=minimal"))
    assert r.status_code == 200, r.text
    out = r.json()["entry"]
    assert all("resource" not in e for e in out)
    assert [e["response"]["status"] for e in out] == ["201 Created"] * 3
    rep_id = out[2]["fullUrl"].rsplit("/", 1)[1]
    assert out[2]["response"]["location"].endswith(f"/DiagnosticReport/{rep_id}/_history/1")
    with db.session() as s:
        ids = [e["fullUrl"].rsplit("/", 1)[1] for e in out[:2]]
        assert [s.get(Observation, i).report_id for i in ids] == [rep_id, rep_id]
    # the default, and an explicit return=representation, still carry every resource
    for prefer in ({}, {"Prefer": "return=representation"}):
        again = client.post("/fhir/R4", json=body, headers=_h(rec.his, **prefer)).json()["entry"]
        assert [e["resource"]["id"] for e in again] == [*ids, rep_id]
    # a batch too (entry by entry)
    single = {"resourceType": "Bundle", "type": "batch",
              "entry": [entry(observation(f"Patient/{pid}"))]}
    out = client.post("/fhir/R4", json=single, headers=_h(rec.his, Prefer="handling=strict, return=minimal")).json()
    assert out["entry"][0]["response"]["status"] == "201 Created" and "resource" not in out["entry"][0]


def test_a_lost_race_on_a_planned_observation_keeps_the_report_consistent(db, world):
    """A concurrent sender stores one of the observations between the check and the insert: the report's
    result then names the winner's row, as entry by entry it would."""
    pid = register_patient(db, world.org_a)
    principal = Principal(kind="client", id="t", name="lis", organization_id=world.org_a,
                          scopes=parse_scopes("system/*.cruds"), source="fhir", raw_scope="system/*.cruds")
    idents = [uid(), uid()]
    obs = [ObservationIn(organization_id=world.org_a, patient_record_id=pid, identifier_system=LIS + ".obs",
                         identifier_value=v, effective_at=report(pid)["effectiveDateTime"], value_quantity=5.0,
                         resource={"resourceType": "Observation"}) for v in idents]
    with db.session() as s:
        planned = observations.plan(s, principal, obs)
        # the concurrent sender's row (written here: SQLite has one writer at a time)
        winner = observations.store_one(s, principal, obs[0]).row.id
        data = ReportIn(organization_id=world.org_a, patient_record_id=pid, identifier_system=LIS,
                        identifier_value=uid(), effective_at=obs[0].effective_at, result_ids=planned.ids,
                        resource={"resourceType": "DiagnosticReport",
                                  "result": [{"reference": f"Observation/{i}"} for i in planned.ids]})
        stored = service.ingest_report(s, principal, data, planned)
        s.commit()
        got = [x.row.id for x in planned.stored]
        assert got[0] == winner and got[1] == planned.ids[1]
        assert [x.created for x in planned.stored] == [False, True]
        assert stored.row.resource["result"] == [{"reference": f"Observation/{i}"} for i in got]
        assert {o.report_id for o in s.scalars(select(Observation).where(Observation.id.in_(got)))} == {stored.row.id}
