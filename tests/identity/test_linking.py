"""Persons and per-institution records: link only on an exact, valid resident ID (issue 2 §5)."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import func, select

from onetrip.identity import service as identity
from onetrip.identity.schemas import PatientInput
from onetrip.kit.errors import BadRequest
from onetrip.kit.identifiers import make_resident_id
from onetrip.kit.principal import cli_principal
from onetrip.persons.models import PatientRecord, Person
from tests.factories import register_patient, run_concurrently


def _rec(db, rid):
    with db.session() as s:
        return s.get(PatientRecord, rid)


def test_same_valid_id_links_to_one_person(db, world):
    rid = make_resident_id("330281", dt.date(1958, 4, 4), 51)
    a = _rec(db, register_patient(db, world.org_a, name="胡德明", id_number=rid))
    b = _rec(db, register_patient(db, world.org_b, name="胡德明", id_number=rid.lower()))
    assert a.person_id == b.person_id and b.link_method == "id_number"


def test_fifteen_digit_id_is_converted_and_links(db, world):
    rid18 = make_resident_id("330281", dt.date(1965, 12, 30), 72)
    rid15 = rid18[:6] + rid18[8:17]
    a = _rec(db, register_patient(db, world.org_a, name="钱芳", id_number=rid18))
    b = _rec(db, register_patient(db, world.org_b, name="錢芳", id_number=rid15))
    assert b.id_number == rid18 and a.person_id == b.person_id
    assert b.name == "钱芳" and b.name_pinyin == "qianfang"


def test_no_id_means_a_new_person_until_the_mpi_links_it(db, world):
    a = _rec(db, register_patient(db, world.org_a, name="马超", phone="13700001234"))
    b = _rec(db, register_patient(db, world.org_b, name="马超", phone="13700001234"))
    assert a.person_id != b.person_id and a.link_method == b.link_method == "new"


def test_invalid_inputs_are_all_reported(db, world):
    with db.session() as s, pytest.raises(BadRequest) as exc:
        identity.register(s, cli_principal(), PatientInput(
            organization_id=world.org_a, mrn="X-1", name="李雷", id_number="330281199913450001",
            phone="12345", sex="x"))
    msg = exc.value.message
    assert "sex code" in msg and "phone" in msg and "ID" in msg
    assert set(exc.value.expression) == {"gender", "identifier", "telecom"}


def test_duplicate_mrn_is_a_409(db, world):
    register_patient(db, world.org_a, name="韩梅梅", mrn="DUP-1")
    with db.session() as s, pytest.raises(BadRequest) as exc:
        identity.register(s, cli_principal(), PatientInput(organization_id=world.org_a, mrn="DUP-1", name="韩梅"))
    assert exc.value.status == 409


def test_concurrent_registrations_of_a_new_resident_share_one_person(db, world):
    """Two institutions register the same, never-seen resident at the same moment."""
    rid = make_resident_id("330281", dt.date(2001, 2, 3), 88)
    barrier = threading.Barrier(2)

    def register(org: str) -> None:
        with db.session() as s:
            barrier.wait(timeout=10)
            identity.register(s, cli_principal(), PatientInput(organization_id=org, mrn=f"CC-{org[:6]}",
                                                               name="并发", id_number=rid))
            s.commit()

    errors = run_concurrently(register, [(world.org_a,), (world.org_b,)])
    assert not errors
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Person).where(Person.id_number == rid)) == 1
        people = s.scalars(select(PatientRecord.person_id).where(PatientRecord.id_number == rid)).all()
        assert len(people) == 2 and len(set(people)) == 1


def test_concurrent_updates_with_the_same_version_lose_nothing(client, db, world):
    """Two clerks edit version 1 at once: one wins, the other is told (412/409) — no silent overwrite."""
    from tests.factories import auth, token

    rec_id = register_patient(db, world.org_a, name="冯小刚")
    h = auth(token(client, world.users["doc_a"]))
    body = client.get(f"/fhir/R4/Patient/{rec_id}", headers=h).json()
    results: list[int] = []
    barrier = threading.Barrier(2)

    def put(name: str) -> None:
        b = {**body, "name": [{"use": "official", "text": name}]}
        barrier.wait(timeout=10)
        results.append(client.put(f"/fhir/R4/Patient/{rec_id}", json=b, headers={**h, "If-Match": 'W/"1"'}).status_code)

    threads = [threading.Thread(target=put, args=(n,)) for n in ("冯一", "冯二")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) in ([200, 409], [200, 412]), results
    final = client.get(f"/fhir/R4/Patient/{rec_id}", headers=h).json()
    assert final["meta"]["versionId"] == "2"
