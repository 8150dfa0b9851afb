"""ORU^R01 corrections over a real MLLP socket: a resend of a known OBR-3 with OBX-11 ``C`` (or OBR-25 ``C``)
replaces the stored values and keeps the earlier version (issue 4 gap)."""

from __future__ import annotations

from sqlalchemy import select

from onetrip.records import corrections
from onetrip.records.models import DiagnosticReport, Observation
from tests.factories import register_patient
from tests.hl7v2.helpers import segment
from tests.hl7v2.test_oru import oru_message, wait_for


def test_obx_11_c_corrects_the_stored_report(db, world, peer):
    fac = world.org_a_code
    register_patient(db, world.org_a, name="张三", mrn="CORR01")
    first = oru_message(fac, "CORR-1", mrn="CORR01", filler="CF1", obx=[
        "OBX|1|NM|2345-7^Glucose^LN||9.9|mmol/L|3.9-6.1|H|||F",
        "OBX|2|NM|718-7^Hemoglobin^LN||135|g/L|130-175|N|||F"])
    assert segment(peer.call(first), "MSA")[1] == "AA"
    wait_for(db, "CORR-1", "processed")
    fixed = oru_message(fac, "CORR-2", mrn="CORR01", filler="CF1", obx=[
        "OBX|1|NM|2345-7^Glucose^LN||5.9|mmol/L|3.9-6.1|N|||C",
        "OBX|2|NM|718-7^Hemoglobin^LN||135|g/L|130-175|N|||F"])
    assert segment(peer.call(fixed), "MSA")[1] == "AA"
    wait_for(db, "CORR-2", "processed")
    with db.session() as s:
        reps = list(s.scalars(select(DiagnosticReport).where(DiagnosticReport.identifier_value == "CF1",
                                                             DiagnosticReport.organization_id == world.org_a)))
        assert len(reps) == 1 and reps[0].status == "corrected"
        values = {o.code: (o.value_quantity, o.status, o.interpretation) for o in
                  s.scalars(select(Observation).where(Observation.report_id == reps[0].id))}
        assert values == {"2345-7": (5.9, "corrected", "N"), "718-7": (135.0, "final", "N")}
        old = corrections.history(s, reps[0].id)
        assert len(old) == 1 and old[0].status == "final"
        assert {o["code"]: o["value_quantity"] for o in old[0].snapshot["observations"]}["2345-7"] == 9.9
    # the same correction resent under a new control id: no new version
    again = oru_message(fac, "CORR-3", mrn="CORR01", filler="CF1", obx=[
        "OBX|1|NM|2345-7^Glucose^LN||5.9|mmol/L|3.9-6.1|N|||C",
        "OBX|2|NM|718-7^Hemoglobin^LN||135|g/L|130-175|N|||F"])
    assert segment(peer.call(again), "MSA")[1] == "AA"
    wait_for(db, "CORR-3", "processed")
    with db.session() as s:
        assert len(corrections.history(s, reps[0].id)) == 1
