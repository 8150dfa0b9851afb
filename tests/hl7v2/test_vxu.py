"""VXU^V04 over a real MLLP socket (issue 20 point 7), on SQLite and PostgreSQL: a dose another clinic gave is
stored before the ACK path completes, shows in FHIR Immunization search with its source and counts in the
forecast; a duplicate (same control id, or the same dose under a new control id) adds nothing; an unknown
vaccine, an unknown child, a bad date or an unknown route is AE with an ERR naming the field and nothing of
the message is stored; a refused message resent once the child is registered is accepted."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from sqlalchemy import func, select

from onetrip.immunization.models import Vaccination
from onetrip.kit import clock
from onetrip.kit.identifiers import make_resident_id
from onetrip.outbox.models import OutboxEvent
from tests.factories import auth, register_patient, token
from tests.hl7v2.helpers import segment
from tests.hl7v2.test_oru import row, wait_for

FHIR = "/fhir/R4"
_seq = itertools.count(1)


@pytest.fixture(scope="module", autouse=True)
def schedule_seeded(db) -> None:
    from onetrip.immunization.service import seed_schedule

    with db.session() as s:
        seed_schedule(s)
        s.commit()


@pytest.fixture(scope="module")
def doc_a(client, world):
    return auth(token(client, world.users["doc_a"]))


def uid(prefix: str) -> str:
    return f"{prefix}{next(_seq):04d}"


def ts(day: dt.date, hhmm: str = "0930") -> str:
    return f"{day:%Y%m%d}{hhmm}"


def days_ago(n: int) -> dt.date:
    return clock.local_date(clock.utcnow()) - dt.timedelta(days=n)


def child(db, world, days: int = 100) -> dict:
    """A child registered at branch centre B (the other clinic, by its MRN) and at hospital A: one person."""
    n = next(_seq)
    birth = days_ago(days)
    rid = make_resident_id("440106", birth, 100 + 2 * n + 1)
    mrn = f"VXU{n:05d}"
    b = register_patient(db, world.org_b, name="孙小宝", sex="1", birth_date=birth, id_number=rid, mrn=mrn)
    a = register_patient(db, world.org_a, name="孙小宝", sex="1", birth_date=birth, id_number=rid)
    return {"mrn": mrn, "b": b, "a": a, "birth": birth}


def rxa(when: str, vaccine: str = "08^Hep B, adolescent or pediatric^CVX", *, lot: str = "B2025-117",
        expiry: str = "20270630", status: str = "CP", notes: str = "00") -> str:
    fields = [""] * 22
    fields[:8] = ["RXA", "0", "1", when, when, vaccine, "0.5", "mL^^UCUM"]
    fields[9] = f"{notes}^New immunization record^NIP001"
    fields[10] = "V123^李^护士"
    fields[11] = "^^^邻县妇幼保健院接种门诊"
    fields[15], fields[16], fields[17] = lot, expiry, "SINOVAC^北京科兴生物制品有限公司^MVX"
    fields[20] = status
    fields[21] = "A"
    return "|".join(fields)


def vxu(facility: str, control_id: str, mrn: str, groups: list[tuple[str, str, str | None]]) -> str:
    """groups: (ORC-3 filler order number, RXA segment, RXR segment or None)."""
    segs = [f"MSH|^~\\&|EPI|{facility}|ONETRIP|ONETRIP|20261123080000||VXU^V04^VXU_V04|{control_id}|P|2.5.1",
            f"PID|1||{mrn}^^^{facility}^MR||孙^小宝||20260101|M"]
    for filler, rxa_seg, rxr in groups:
        segs += [f"ORC|RE||{filler}^EPI" if filler else "ORC|RE", rxa_seg] + ([rxr] if rxr else [])
    return "\r".join(segs) + "\r"


RXR = "RXR|IM^Intramuscular^HL70162|LD^Left Deltoid^HL70163"


def doses(db, record_id: str) -> list[Vaccination]:
    with db.session() as s:
        return list(s.scalars(select(Vaccination).where(Vaccination.patient_record_id == record_id)
                              .order_by(Vaccination.occurred_at)))


def hepb_next(client, hdr, record_id: str) -> int:
    r = client.get(f"{FHIR}/ImmunizationRecommendation", params={"patient": record_id}, headers=hdr)
    assert r.status_code == 200, r.text
    recs = r.json()["entry"][0]["resource"]["recommendation"]
    return next(e for e in recs if e["series"] == "HepB")["doseNumberPositiveInt"]


def err(ack: bytes) -> tuple[str, str]:
    e = segment(ack, "ERR")
    return e[2], e[3].split("^")[0]


def test_accepted_vxu_is_stored_searchable_with_its_source_and_counts(client, peer, db, world, doc_a):
    kid = child(db, world)
    assert hepb_next(client, doc_a, kid["a"]) == 1
    cid = uid("V")
    ack = peer.call(vxu(world.org_b_code, cid, kid["mrn"], [(uid("IMM"), rxa(ts(kid["birth"])), RXR)]))
    assert segment(ack, "MSA")[1:3] == ["AA", cid], ack
    wait_for(db, cid, "processed")
    [v] = doses(db, kid["b"])
    assert (v.source, v.vaccine_code, v.dose_number, v.status, v.route, v.site) == (
        "hl7v2", "HepB", 1, "completed", "IM", "left-deltoid")
    # hospital A's clinician sees the other clinic's dose on the child's record at A, with its source
    r = client.get(f"{FHIR}/Immunization", params={"patient": kid["a"]}, headers=doc_a)
    assert r.status_code == 200, r.text
    [imm] = [e["resource"] for e in r.json()["entry"]]
    assert imm["id"] == v.id and imm["meta"]["tag"][0]["code"] == "hl7v2"
    assert imm["lotNumber"] == "B2025-117" and imm["expirationDate"] == "2027-06-30"
    assert imm["manufacturer"] == {"display": "北京科兴生物制品有限公司"}
    assert imm["performer"][0]["actor"] == {"display": "李护士"}
    assert imm["location"] == {"display": "邻县妇幼保健院接种门诊"} and imm["primarySource"] is True
    assert imm["route"]["coding"][0]["code"] == "IM" and imm["site"]["text"] == "left-deltoid"
    assert imm["occurrenceDateTime"] == f"{kid['birth'].isoformat()}T01:30:00Z"  # 09:30 China time
    assert hepb_next(client, doc_a, kid["a"]) == 2  # R6.4: the other clinic's dose counts
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(OutboxEvent).where(
            OutboxEvent.aggregate_id == v.id, OutboxEvent.event_type == "immunization.recorded")) == 1


def test_a_duplicate_message_or_dose_adds_nothing(peer, db, world):
    kid = child(db, world)
    filler = uid("IMM")
    cid = uid("V")
    msg = vxu(world.org_b_code, cid, kid["mrn"], [(filler, rxa(ts(kid["birth"]), "HepB^乙肝疫苗^NIP"), RXR)])
    first = peer.call(msg)
    wait_for(db, cid, "processed")
    again = peer.call(msg)  # the same control id: the stored ACK, nothing run again
    assert again == first and segment(again, "MSA")[1] == "AA"
    cid2 = uid("V")  # the same dose (ORC-3) under a new control id
    resent = peer.call(vxu(world.org_b_code, cid2, kid["mrn"],
                           [(filler, rxa(ts(kid["birth"]), "HepB^乙肝疫苗^NIP"), RXR)]))
    assert segment(resent, "MSA")[1] == "AA"
    wait_for(db, cid2, "processed")
    assert len(doses(db, kid["b"])) == 1
    # without an ORC id the dose is known by sender, MRN, vaccine and RXA-3
    cid3, cid4 = uid("V"), uid("V")
    bare = [(None, rxa(ts(days_ago(40)), "20^DTaP^CVX"), None)]
    peer.call(vxu(world.org_b_code, cid3, kid["mrn"], bare))
    peer.call(vxu(world.org_b_code, cid4, kid["mrn"], bare))
    wait_for(db, cid3, "processed")
    wait_for(db, cid4, "processed")
    assert [v.vaccine_code for v in doses(db, kid["b"])] == ["HepB", "DTaP"]


@pytest.mark.parametrize(("mutate", "where", "code"), [
    (lambda k, n: [(uid("IMM"), rxa(ts(k["birth"]), "999^Unknown^CVX"), RXR)], "RXA^1^5", "103"),
    (lambda k, n: [(uid("IMM"), rxa(ts(k["birth"]), "COVID^^NIP"), RXR)], "RXA^1^5", "103"),
    (lambda k, n: [(uid("IMM"), rxa(ts(k["birth"]), "85^HepA, unspecified^CVX"), RXR)], "RXA^1^5", "103"),
    # the second RXA is bad: the first is not stored either (nothing half-stored)
    (lambda k, n: [(uid("IMM"), rxa(ts(k["birth"])), RXR), (uid("IMM"), rxa(""), RXR)], "RXA^2^3", "101"),
    (lambda k, n: [(uid("IMM"), rxa("2026XX01"), RXR)], "RXA^1^3", "102"),
    (lambda k, n: [(uid("IMM"), rxa(ts(days_ago(-3))), RXR)], "RXA^1^3", "102"),  # in the future
    (lambda k, n: [(uid("IMM"), rxa(ts(k["birth"] - dt.timedelta(days=2))), RXR)], "RXA^1^3", "102"),  # before birth
    (lambda k, n: [(uid("IMM"), rxa(ts(k["birth"])), "RXR|NS^Nasal^HL70162")], "RXR^1^1", "103"),
    (lambda k, n: [(uid("IMM"), rxa(ts(k["birth"]), expiry="2027-06"), RXR)], "RXA^1^16", "102"),
    (lambda k, n: [(uid("IMM"), rxa(ts(k["birth"]), status="XX"), RXR)], "RXA^1^20", "103"),
    (lambda k, n: [], "RXA", "100"),
])
def test_a_bad_dose_is_ae_naming_the_field_and_nothing_is_stored(peer, db, world, mutate, where, code):
    kid = child(db, world)
    cid = uid("V")
    ack = peer.call(vxu(world.org_b_code, cid, kid["mrn"], mutate(kid, 0)))
    assert segment(ack, "MSA")[1:3] == ["AE", cid], ack
    assert err(ack) == (where, code), ack
    stored = row(db, cid)
    assert stored is not None and stored.status == "rejected"
    assert doses(db, kid["b"]) == []


def test_an_unknown_child_is_ae_then_accepted_once_registered(peer, db, world):
    n = next(_seq)
    mrn = f"NEW{n:05d}"
    cid = uid("V")
    msg = vxu(world.org_b_code, cid, mrn, [(uid("IMM"), rxa(ts(days_ago(30))), RXR)])
    ack = peer.call(msg)
    assert segment(ack, "MSA")[1] == "AE" and err(ack) == ("PID^1^3", "204"), ack
    assert "register the child (ADT\\S\\A04)" in segment(ack, "ERR")[8]  # ^ escaped as \S\ in ERR-8
    assert row(db, cid).status == "rejected"
    record = register_patient(db, world.org_b, name="孙小宝", sex="1", birth_date=days_ago(60), mrn=mrn)
    again = peer.call(msg)  # the same bytes: evaluated again now that the child is known
    assert segment(again, "MSA")[1] == "AA", again
    wait_for(db, cid, "processed")
    assert [v.vaccine_code for v in doses(db, record)] == ["HepB"]


def test_unknown_sender_and_refused_dose(peer, db, world, client, doc_a):
    kid = child(db, world)
    cid = uid("V")
    ack = peer.call(vxu("NOSUCHCLINIC", cid, kid["mrn"], [(uid("IMM"), rxa(ts(kid["birth"])), RXR)]))
    assert segment(ack, "MSA")[1] == "AE" and err(ack) == ("MSH^1^4", "204"), ack
    cid = uid("V")  # RXA-20 RE (refused): kept as not-done, does not count
    ack = peer.call(vxu(world.org_b_code, cid, kid["mrn"], [(uid("IMM"), rxa(ts(kid["birth"]), status="RE"), RXR)]))
    assert segment(ack, "MSA")[1] == "AA", ack
    wait_for(db, cid, "processed")
    assert [v.status for v in doses(db, kid["b"])] == ["not-done"]
    assert hepb_next(client, doc_a, kid["a"]) == 1
