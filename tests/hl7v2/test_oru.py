"""ORU^R01 through a real MLLP socket into the shared results store: reports and observations on the
patient's timeline, GBK text, an unknown MRN (failed, re-run after registration) and resent results."""

from __future__ import annotations

import datetime as dt
import itertools
import time

from sqlalchemy import func, select

from onetrip.interop.hl7v2 import service
from onetrip.interop.hl7v2.handlers import hl7_datetime
from onetrip.interop.hl7v2.models import InboxMessage
from onetrip.kit.principal import cli_principal
from onetrip.persons.models import PatientRecord
from onetrip.records import service as records
from onetrip.records.models import DiagnosticReport, Observation
from tests.factories import register_patient
from tests.hl7v2.helpers import segment

_seq = itertools.count(1)


def uid(prefix: str) -> str:
    return f"{prefix}{next(_seq):04d}"


def oru_message(facility: str, control_id: str, *, mrn: str, filler: str, charset: str = "",
                obx: list[str] | None = None, notes: list[str] | None = None, section: str = "CH",
                status: str = "F", when: str = "202611220830") -> str:
    msh = (f"MSH|^~\\&|LIS|{facility}|ONETRIP|ONETRIP|20261123080000||ORU^R01^ORU_R01|{control_id}|P|2.5.1"
           + (f"||||||{charset}" if charset else ""))
    obr_fields = [""] * 26
    obr_fields[:5] = ["OBR", "1", f"P{filler}", filler, "24323-8^综合代谢检查^LN^CMP^生化全套^L"]
    obr_fields[7], obr_fields[22], obr_fields[24], obr_fields[25] = when, "202611221000", section, status
    obr = "|".join(obr_fields)
    segs = [msh, f"PID|1||{mrn}^^^{facility}^MR||张^三||19900307|M", obr]
    segs += obx if obx is not None else [
        "OBX|1|NM|2345-7^Glucose^LN^GLU^葡萄糖^L||7.2|mmol/L|3.9-6.1|H|||F|||202611220830",
        "OBX|2|NM|718-7^Hemoglobin^LN||135|g/L|130-175|N|||F"]
    segs += [f"NTE|{i}||{n}" for i, n in enumerate(notes or [], start=1)]
    return "\r".join(segs) + "\r"


def row(db, control_id: str) -> InboxMessage | None:
    with db.session() as s:
        return s.scalar(select(InboxMessage).where(InboxMessage.control_id == control_id))


def wait_for(db, control_id: str, *statuses: str, timeout: float = 20.0) -> InboxMessage:
    deadline = time.monotonic() + timeout
    r = None
    while time.monotonic() < deadline:
        r = row(db, control_id)
        if r is not None and r.status in statuses:
            return r
        time.sleep(0.05)
    raise AssertionError(f"{control_id}: status {None if r is None else (r.status, r.last_error)}, wanted {statuses}")


def person_of(db, record_id: str) -> str:
    with db.session() as s:
        return s.get(PatientRecord, record_id).person_id


def timeline(db, person_id: str):
    with db.session() as s:
        items = records.timeline(s, cli_principal(), person_id)
        s.commit()
        return items


def observations(db, report_id: str) -> list[Observation]:
    with db.session() as s:
        return list(s.scalars(select(Observation).where(Observation.report_id == report_id)
                              .order_by(Observation.identifier_value)))


def reports_with(db, org_id: str, filler: str) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(DiagnosticReport).where(
            DiagnosticReport.organization_id == org_id, DiagnosticReport.identifier_value == filler))


def test_utf8_oru_is_processed_and_on_the_timeline(db, world, peer):
    mrn, filler, cid = uid("ORUM"), uid("F"), uid("ORU-U")
    person = person_of(db, register_patient(db, world.org_a, mrn=mrn, name="张三"))
    ack = peer.call(oru_message(world.org_a_code, cid, mrn=mrn, filler=filler, notes=["建议复查空腹血糖"]))
    assert segment(ack, "MSA")[1] == "AA"
    r = wait_for(db, cid, "processed", "failed")
    assert r.status == "processed", r.last_error
    assert r.attempts == 1 and r.last_error is None

    [item] = [i for i in timeline(db, person) if i.resource_type == "DiagnosticReport"]
    assert item.organization_id == world.org_a and item.observation_count == 2
    assert (item.code, item.code_local, item.display) == ("24323-8", "CMP", "综合代谢检查")
    assert (item.category, item.section, item.status) == ("lab", "chemistry", "final")
    assert item.conclusion == "建议复查空腹血糖"
    assert item.effective_at == dt.datetime(2026, 11, 22, 0, 30, tzinfo=dt.UTC)  # 08:30 China time
    glu, hb = observations(db, item.id)
    assert (glu.code, glu.code_local, glu.display) == ("2345-7", "GLU", "Glucose")
    assert (glu.value_quantity, glu.unit, glu.reference_low, glu.reference_high, glu.interpretation) == (
        7.2, "mmol/L", 3.9, 6.1, "H")
    assert (hb.value_quantity, hb.unit, hb.interpretation) == (135.0, "g/L", "N")
    assert hb.effective_at == item.effective_at  # no OBX-14: the report's time
    with db.session() as s:
        rep = s.get(DiagnosticReport, item.id)
        assert rep.identifier_value == filler and world.org_a_code in rep.identifier_system


def test_gbk_oru_keeps_chinese_text(db, world, peer):
    mrn, filler, cid = uid("ORUG"), uid("G"), uid("ORU-G")
    person = person_of(db, register_patient(db, world.org_a, mrn=mrn, name="李四"))
    msg = oru_message(world.org_a_code, cid, mrn=mrn, filler=filler, charset="GBK", section="US", obx=[
        "OBX|1|ST|UR-PRO^尿蛋白^L||阴性||阴性||||F",
        "OBX|2|CE|BLD-ABO^血型^L||A^A型^L||||||F",
        "OBX|3|TX|US-RPT^超声所见^L||肝脏大小形态正常，包膜光滑。~胆囊未见明显异常。||||||F",
    ], notes=["印象：肝胆未见明显异常"])
    ack = peer.call(msg, encoding="gbk")
    assert segment(ack, "MSA", encoding="gbk")[1] == "AA"
    r = wait_for(db, cid, "processed", "failed")
    assert r.status == "processed", r.last_error
    assert r.charset == "GBK"

    [item] = [i for i in timeline(db, person) if i.resource_type == "DiagnosticReport"]
    assert (item.category, item.section) == ("ultrasound", "US")
    assert item.conclusion == "肝脏大小形态正常，包膜光滑。\n胆囊未见明显异常。\n印象：肝胆未见明显异常"
    assert item.observation_count == 2  # the TX text is the conclusion, not an observation
    pro, abo = observations(db, item.id)
    assert (pro.display, pro.value_string, pro.reference_text) == ("尿蛋白", "阴性", "阴性")
    assert (abo.display, abo.value_string) == ("血型", "A型")


def test_unknown_mrn_fails_then_reruns_after_registration(db, world, peer):
    mrn, filler, cid = uid("ORUX"), uid("X"), uid("ORU-X")
    ack = peer.call(oru_message(world.org_a_code, cid, mrn=mrn, filler=filler))
    assert segment(ack, "MSA")[1] == "AA"  # accepted: the problem is ours to fix, not the sender's
    r = wait_for(db, cid, "failed", "processed")
    assert r.status == "failed" and r.attempts == 2
    assert "HandlerError" in r.last_error and mrn in r.last_error and "ADT^A04" in r.last_error
    assert reports_with(db, world.org_a, filler) == 0

    person = person_of(db, register_patient(db, world.org_a, mrn=mrn, name="王五"))
    with db.session() as s:
        again = service.rerun(s, r.id)
        s.commit()
        assert again.status == "processed" and again.last_error is None
    assert reports_with(db, world.org_a, filler) == 1
    assert [i.observation_count for i in timeline(db, person)] == [2]


def test_resent_oru_with_new_control_id_stores_nothing_new(db, world, peer):
    mrn, filler = uid("ORUR"), uid("R")
    person = person_of(db, register_patient(db, world.org_a, mrn=mrn, name="赵六"))
    first, second = uid("ORU-R"), uid("ORU-R")
    peer.call(oru_message(world.org_a_code, first, mrn=mrn, filler=filler))
    assert wait_for(db, first, "processed", "failed").status == "processed"
    ack = peer.call(oru_message(world.org_a_code, second, mrn=mrn, filler=filler,
                                notes=["resent: this text is not applied"]))
    assert segment(ack, "MSA")[1] == "AA"
    assert wait_for(db, second, "processed", "failed").status == "processed"
    assert reports_with(db, world.org_a, filler) == 1
    [item] = timeline(db, person)
    assert item.observation_count == 2 and item.conclusion is None
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Observation).where(
            Observation.report_id == item.id)) == 2


def test_report_needs_a_filler_order_number(db, world):
    mrn = uid("ORUF")
    register_patient(db, world.org_a, mrn=mrn)
    raw = oru_message(world.org_a_code, uid("ORU-F"), mrn=mrn, filler="").encode()
    with db.session() as s:
        receipt = service.receive(s, raw)
        s.commit()
        processed = service.process(s, receipt.inbox_id, max_attempts=1)
        s.commit()
        assert processed.status == "failed" and "OBR-3" in processed.last_error


def test_hl7_datetime():
    assert hl7_datetime("20261122083015") == dt.datetime(2026, 11, 22, 0, 30, 15, tzinfo=dt.UTC)
    assert hl7_datetime("202611220830+0000") == dt.datetime(2026, 11, 22, 8, 30, tzinfo=dt.UTC)
    assert hl7_datetime("20261122") == dt.datetime(2026, 11, 21, 16, 0, tzinfo=dt.UTC)
    assert hl7_datetime("") is None and hl7_datetime("tomorrow") is None and hl7_datetime("20261399") is None
