"""Recognition gaps closed: item scope (R1.6) enforced against stored results, imaging studies without a
report are never offered, results follow MPI merges, and over CDS Hooks an expired or ineligible result
gives no card."""

from __future__ import annotations

import datetime as dt

import pytest

from onetrip.identity import mpi
from onetrip.kit.principal import cli_principal
from onetrip.persons.models import PatientRecord
from onetrip.recognition.service import run_check
from onetrip.records import service as records
from onetrip.records.schemas import ImagingStudyIn
from tests.factories import auth, register_patient
from tests.recognition.test_check import SEL, _report, _request
from tests.records.conftest import resident_id
from tests.records.helpers import LIS, uid


def _priors(db, person, item, org):
    with db.session() as s:
        _, priors = run_check(s, cli_principal(), person, item, org)
        s.commit()
    return [p.report_id for p in priors]


@pytest.fixture(scope="module")
def scoped(db, world, rec):
    """A resident with an HR CMP and an HR head CT at A (3A, in the community), also registered at C (2A,
    outside it)."""
    id_number = resident_id()
    rec_a = register_patient(db, world.org_a, name="李雷", id_number=id_number)
    register_patient(db, rec.org_c, name="李雷", id_number=id_number)
    op = cli_principal()
    with db.session() as s:
        cmp_ = records.store_report(s, op, _report(world.org_a, record=rec_a)).id
        ct = records.store_report(s, op, _report(world.org_a, record=rec_a, days=3, code="24725-4",
                                                 category="imaging", section="CT", obs=())).id
        person = s.get(PatientRecord, rec_a).person_id
        s.commit()
    return {"person": person, "rec_a": rec_a, "cmp": cmp_, "ct": ct}


def test_community_scope_keeps_imaging_inside_the_community(db, world, rec, scoped):
    # C (2A) may accept A (3A) by grade (R1.5), but CT-HEAD is scoped to the medical community
    assert _priors(db, scoped["person"], "CT-HEAD", rec.org_c) == []
    assert _priors(db, scoped["person"], "CT-HEAD", world.org_b) == [scoped["ct"]]  # B: same community
    # CMP is city-scoped: C gets it
    assert _priors(db, scoped["person"], "CMP", rec.org_c) == [scoped["cmp"]]


def test_unreported_imaging_study_is_not_offered(db, world, catalogue):
    rec_a = register_patient(db, world.org_a, name="韩梅梅", id_number=resident_id())
    with db.session() as s:
        records.ingest_imaging_study(s, cli_principal(), ImagingStudyIn(
            organization_id=world.org_a, patient_record_id=rec_a, identifier_system=LIS + ".study",
            identifier_value=uid(), code="24725-4", code_system="http://loinc.org", code_local="CT-HEAD",
            modality="CT", started_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=2)))
        person = s.get(PatientRecord, rec_a).person_id
        items = records.timeline(s, cli_principal(), person)
        s.commit()
    assert [i.resource_type for i in items] == ["ImagingStudy"]  # shown on the timeline ...
    assert _priors(db, person, "CT-HEAD", world.org_b) == []  # ... but not recognisable without a report


def test_results_follow_an_mpi_merge(db, world, catalogue):
    """Two registrations of one resident that the MPI did not link (no shared ID): after a merge the
    survivor's timeline, trend and order check include the merged person's results; an unmerge undoes it."""
    rec_a = register_patient(db, world.org_a, name="王小明")
    rec_b = register_patient(db, world.org_b, name="王小明", mrn="MB" + uid())
    op = cli_principal()
    with db.session() as s:
        mine = records.store_report(s, op, _report(world.org_a, record=rec_a, days=5, obs=(5.0,))).id
        theirs = records.store_report(s, op, _report(world.org_a, record=rec_a, days=1, obs=(6.0,)))
        # the second registration's result is at B (1A): after the merge the B doctor can recognise A's
        b_report = records.store_report(s, op, _report(world.org_b, mrn=s.get(PatientRecord, rec_b).mrn,
                                                       days=2, obs=(7.0,))).id
        survivor = s.get(PatientRecord, rec_a).person_id
        merged = s.get(PatientRecord, rec_b).person_id
        assert survivor != merged
        s.commit()
    assert set(_priors(db, survivor, "CMP", world.org_b)) == {theirs.id, mine}  # not yet the other person's
    with db.session() as s:
        before = {i.id for i in records.timeline(s, op, survivor)}
        assert before == {mine, theirs.id}
        m = mpi.merge_persons(s, op, survivor, merged, reason="test")
        s.commit()
    with db.session() as s:
        after = {i.id for i in records.timeline(s, op, survivor)}
        assert after == {mine, theirs.id, b_report}
        assert [p.value for p in records.trend(s, op, survivor, "2345-7")] == [5.0, 7.0, 6.0]
        s.commit()
    assert set(_priors(db, survivor, "CMP", world.org_b)) == {theirs.id, mine, b_report}  # all within 7 days
    with db.session() as s:
        mpi.unmerge(s, op, m.id)
        s.commit()
    with db.session() as s:
        assert {i.id for i in records.timeline(s, op, survivor)} == {mine, theirs.id}
        s.commit()


def test_cds_offers_no_card_for_expired_or_ineligible_priors(client, db, world, rec, catalogue):
    rec_a = register_patient(db, world.org_a, name="周杰", id_number=resident_id())
    op = cli_principal()
    with db.session() as s:
        records.store_report(s, op, _report(world.org_a, record=rec_a, days=40, code="24725-4", category="imaging",
                                            section="CT", obs=()))  # expired (30-day window)
        records.store_report(s, op, _report(world.org_a, record=rec_a, days=2, code="24725-4", category="imaging",
                                            section="CT", obs=(), mark=None))  # no HR mark
        s.commit()
    r = client.post(f"/cds-services/{SEL}", json=_request(rec_a, codes=("CT-HEAD",)), headers=auth(rec.doc_a))
    assert r.status_code == 200 and r.json()["cards"] == []


def test_fhir_search_by_patient_follows_a_merge(client, db, world, rec, catalogue):
    rec_a = register_patient(db, world.org_a, name="赵六")
    rec_b = register_patient(db, world.org_a, name="赵六", mrn="MM" + uid())
    op = cli_principal()
    with db.session() as s:
        old = records.store_report(s, op, _report(world.org_a, record=rec_b, days=1)).id
        a, b = s.get(PatientRecord, rec_a).person_id, s.get(PatientRecord, rec_b).person_id
        mpi.merge_persons(s, op, a, b, reason="test")
        s.commit()
    found = client.get(f"/fhir/R4/DiagnosticReport?patient={rec_a}", headers=auth(rec.doc_a)).json()
    assert [e["resource"]["id"] for e in found.get("entry", [])] == [old]
