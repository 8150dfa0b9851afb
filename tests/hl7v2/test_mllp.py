"""A real MLLP peer (raw socket on 127.0.0.1) against the listener: ACK codes, stored rows, handlers."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from sqlalchemy import func, select

from onetrip.interop.hl7v2 import service
from onetrip.interop.hl7v2.models import InboxMessage
from onetrip.kit.identifiers import make_resident_id
from onetrip.persons.models import PatientRecord, Person
from tests.hl7v2.helpers import Peer, adt, oru, segment


def row(db, control_id: str) -> InboxMessage | None:
    with db.session() as s:
        return s.scalar(select(InboxMessage).where(InboxMessage.control_id == control_id))


def wait_for(db, control_id: str, *statuses: str, timeout: float = 20.0) -> InboxMessage:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = row(db, control_id)
        if r is not None and r.status in statuses:
            return r
        time.sleep(0.05)
    raise AssertionError(f"{control_id}: status {None if r is None else (r.status, r.last_error)}, wanted {statuses}")


def record(db, org_id: str, mrn: str) -> PatientRecord | None:
    with db.session() as s:
        return s.scalar(select(PatientRecord).where(PatientRecord.organization_id == org_id,
                                                    PatientRecord.mrn == mrn))


def test_a04_stored_acked_and_registered(db, world, peer):
    ack = peer.call(adt(world.org_a_code, "A04-1", mrn="H1", family="李", given="明", phone="13800138000"))
    assert segment(ack, "MSA")[1:3] == ["AA", "A04-1"]
    r = wait_for(db, "A04-1", "processed")
    assert (r.sender, r.message_type, r.ack) == (f"HIS|{world.org_a_code}", "ADT^A04", ack)
    rec = record(db, world.org_a, "H1")
    assert rec is not None and rec.name == "李明" and rec.sex == "1" and rec.birth_date == dt.date(1990, 3, 7)
    assert rec.phone and rec.phone.endswith("13800138000") and rec.city == "广州市"


def test_duplicate_gets_the_same_ack_and_one_row(db, world, peer):
    msg = adt(world.org_a_code, "DUP-1", mrn="H2", family="王", given="芳")
    first = peer.call(msg)
    wait_for(db, "DUP-1", "processed")
    second = peer.call(msg)
    assert second == first
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(InboxMessage).where(InboxMessage.control_id == "DUP-1")) == 1
        assert s.scalar(select(func.count()).select_from(PatientRecord).where(PatientRecord.mrn == "H2")) == 1


def test_malformed_input_is_answered_and_the_listener_stays_up(db, world, peer, mllp):
    ack = peer.call(b"this is not HL7")
    assert segment(ack, "MSA")[1] == "AE" and segment(ack, "ERR")[3].startswith("100^")
    ack = peer.call(adt(world.org_a_code, "", mrn="H3"))  # no MSH-10: answered, nothing stored
    assert segment(ack, "MSA")[1] == "AE" and segment(ack, "ERR")[3].startswith("101^")
    ack = peer.call(adt(world.org_a_code, "BADSEX-1", family="", given=""))
    assert segment(ack, "MSA")[1:3] == ["AE", "BADSEX-1"] and segment(ack, "ERR")[2] == "PID^1^5"
    assert row(db, "BADSEX-1").status == "rejected"
    peer.sock.sendall(b"noise outside any frame \x1c\x0d")
    ack = peer.call(adt(world.org_a_code, "AFTER-1", mrn="H4", family="赵", given="六"))
    assert segment(ack, "MSA")[1] == "AA"
    other = Peer(mllp.port)  # a second connection is served too
    assert segment(other.call(adt(world.org_a_code, "AFTER-2", mrn="H5", family="钱", given="七")), "MSA")[1] == "AA"
    other.close()


def test_corrected_resend_of_a_refused_message_is_evaluated_again(db, world, peer):
    bad = peer.call(adt(world.org_a_code, "FIX-1", mrn="H6", family="", given=""))
    assert segment(bad, "MSA")[1] == "AE"
    assert peer.call(adt(world.org_a_code, "FIX-1", mrn="H6", family="", given="")) == bad  # same bytes, same ACK
    good = peer.call(adt(world.org_a_code, "FIX-1", mrn="H6", family="孙", given="八"))
    assert segment(good, "MSA")[1] == "AA"
    assert wait_for(db, "FIX-1", "processed").ack == good


@pytest.mark.parametrize(("charset", "codec"), [("GBK", "gbk"), ("GB 18030-2000", "gb18030")])
def test_chinese_name_in_gbk_and_gb18030(db, world, peer, charset, codec):
    cid, mrn = f"GB-{codec}", f"G-{codec}"
    ack = peer.call(adt(world.org_a_code, cid, mrn=mrn, family="欧阳", given="娜娜", charset=charset), codec)
    assert segment(ack, "MSA", codec)[1] == "AA"
    assert segment(ack, "MSH", codec)[17] == charset
    assert wait_for(db, cid, "processed").charset == charset
    assert record(db, world.org_a, mrn).name == "欧阳娜娜"


def test_wrong_version_is_rejected_with_203(db, world, peer):
    ack = peer.call(adt(world.org_a_code, "V26-1", version="2.6"))
    assert segment(ack, "MSA")[1] == "AR"
    assert segment(ack, "ERR")[3] == "203^Unsupported version id^HL70357"
    assert row(db, "V26-1").status == "rejected"


def test_unsupported_type_is_rejected_with_200(db, world, peer):
    ack = peer.call(adt(world.org_a_code, "SIU-1").replace("ADT^A04^ADT_A01", "SIU^S12"))
    assert segment(ack, "MSA")[1] == "AR" and segment(ack, "ERR")[3].startswith("200^")


def test_oru_is_stored_and_handled(db, world, peer):
    peer.call(adt(world.org_a_code, "ORU-0"))  # the patient M001 (register or update)
    wait_for(db, "ORU-0", "processed")
    ack = peer.call(oru(world.org_a_code, "ORU-1"))
    assert segment(ack, "MSA")[1] == "AA"
    wait_for(db, "ORU-1", "processed")  # mapping details: test_oru.py


def test_a08_updates_and_keeps_what_was_not_sent(db, world, peer):
    peer.call(adt(world.org_a_code, "U-1", mrn="H7", family="周", given="九", phone="13900139000"))
    wait_for(db, "U-1", "processed")
    peer.call(adt(world.org_a_code, "U-2", event="A08", mrn="H7", family="周", given="久"))
    wait_for(db, "U-2", "processed")
    rec = record(db, world.org_a, "H7")
    assert rec.name == "周久" and rec.phone.endswith("13900139000")


def test_a40_merges_and_a_failed_message_can_be_rerun(db, world, peer):
    rid = make_resident_id("110101", dt.date(1985, 5, 5), 321)
    peer.call(adt(world.org_a_code, "M-1", mrn="H8", family="吴", given="十", birth="19850505", id_number=rid))
    wait_for(db, "M-1", "processed")
    merge = adt(world.org_a_code, "M-3", event="A40", mrn="H8", family="吴", given="十", mrg="H9")
    assert segment(peer.call(merge), "MSA")[1] == "AA"  # accepted: H9 is not known yet
    failed = wait_for(db, "M-3", "failed")
    assert failed.attempts == 2 and "H9" in failed.last_error and " / " in failed.last_error
    peer.call(adt(world.org_a_code, "M-2", mrn="H9", family="吴", given="拾", birth="19600101", sex="F"))
    wait_for(db, "M-2", "processed")
    with db.session() as s:
        rerun = service.rerun(s, failed.id)
        s.commit()
        assert rerun.status == "processed" and rerun.attempts == 3
        a, b = record(db, world.org_a, "H8"), record(db, world.org_a, "H9")
        assert a.person_id == b.person_id
        assert s.scalar(select(func.count()).select_from(Person).where(Person.merged_into_id == a.person_id)) == 1


def test_unknown_facility_fails_after_the_retries(db, world, peer):
    peer.call(adt("NOWHERE", "NF-1", mrn="H10"))
    r = wait_for(db, "NF-1", "failed")
    assert r.attempts == 2 and "NOWHERE" in r.last_error
    with db.session() as s:
        assert [m.control_id for m in service.list_messages(s, status="failed")] == ["NF-1"]
