"""Issue 3 §2/§4: online matching on every write, the review queue, link/merge/unmerge with history."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from onetrip.audit.models import AuditEvent
from onetrip.identity import mpi
from onetrip.identity import service as identity
from onetrip.identity.models import MatchReview, NotAMatch, PersonMerge
from onetrip.identity.schemas import PatientInput
from onetrip.kit.errors import Conflict
from onetrip.kit.identifiers import make_resident_id
from onetrip.kit.principal import cli_principal
from onetrip.outbox.models import OutboxEvent
from onetrip.persons.models import PatientRecord, Person
from tests.factories import register_patient, run_concurrently

OP = cli_principal()
_n = iter(range(1, 10_000))


def _reg(db, org, **kw):
    defaults = dict(sex="2", birth_date=dt.date(1980, 3, 4), province="浙江省", city="沧澜市", district="青溪区",
                    street="文昌街道", address_line="翠湖小区3幢2单元501室")
    data = {**defaults, **kw}
    with db.session() as s:
        rec = identity.register(s, OP, PatientInput(organization_id=org, mrn=f"MPI{next(_n):06d}", **data))
        s.commit()
        return rec.id


def _rec(db, rid) -> PatientRecord:
    with db.session() as s:
        return s.get(PatientRecord, rid)


def test_strong_match_without_id_links_automatically(db, world):
    a = _rec(db, _reg(db, world.org_a, name="陈丽", phone="13700005555"))
    b = _rec(db, _reg(db, world.org_b, name="陳麗", phone="137 0000 5555"))
    assert b.person_id == a.person_id and b.link_method == "mpi"
    with db.session() as s:
        ev = s.scalars(select(OutboxEvent).where(OutboxEvent.event_type == "person.linked",
                                                 OutboxEvent.aggregate_id == b.id)).one()
        assert ev.payload["to_person_id"] == a.person_id


def test_homophone_registered_by_phone_links(db, world):
    a = _rec(db, _reg(db, world.org_a, name="周秀英", phone="13700006666", birth_date=dt.date(1955, 6, 7)))
    b = _rec(db, _reg(db, world.org_b, name="周秀瑛", phone="13700006666", birth_date=dt.date(1955, 6, 7)))
    assert b.person_id == a.person_id


def test_middling_match_is_queued_for_review(db, world):
    a = _rec(db, _reg(db, world.org_a, name="林海", sex="1", phone=None, birth_date=dt.date(1970, 1, 2),
                      address_line=None, street=None))
    b = _rec(db, _reg(db, world.org_b, name="林海", sex="1", phone=None, birth_date=dt.date(1970, 1, 2),
                      address_line=None, street=None))
    assert a.person_id != b.person_id and b.link_method == "new"
    with db.session() as s:
        items = s.scalars(select(MatchReview).where(MatchReview.record_id == b.id)).all()
        assert [(i.candidate_person_id, i.status, i.source) for i in items] == [(a.person_id, "open", "online")]


def test_different_valid_ids_never_link(db, world):
    r1 = make_resident_id("330122", dt.date(1980, 3, 4), 302)
    r2 = make_resident_id("330122", dt.date(1980, 3, 4), 306)
    a = _rec(db, _reg(db, world.org_a, name="杨帆", phone="13700007777", id_number=r1))
    b = _rec(db, _reg(db, world.org_b, name="杨帆", phone="13700007777", id_number=r2))
    assert a.person_id != b.person_id


def test_id_on_new_record_fills_the_matched_person(db, world):
    rid = make_resident_id("330122", dt.date(1980, 3, 4), 402)
    a = _rec(db, _reg(db, world.org_a, name="郑敏", phone="13700008888"))
    b = _rec(db, _reg(db, world.org_b, name="郑敏", phone="13700008888", id_number=rid))
    assert b.person_id == a.person_id
    with db.session() as s:
        assert s.get(Person, a.person_id).id_number == rid


def test_weak_match_is_a_new_person_without_review(db, world):
    a = _rec(db, _reg(db, world.org_a, name="蒋文", birth_date=dt.date(1990, 1, 1), phone=None,
                      address_line="柳塘村5组18号"))
    b = _rec(db, _reg(db, world.org_b, name="谢雨", birth_date=dt.date(1990, 1, 1), phone=None,
                      address_line="翠湖小区1幢1单元101室"))
    assert a.person_id != b.person_id
    with db.session() as s:
        assert s.scalars(select(MatchReview).where(MatchReview.record_id == b.id)).all() == []


def _review_pair(db, world, name, day, line_b=None):
    """Same name and birth date, nothing else known: a probable match a person should look at."""
    a = _rec(db, _reg(db, world.org_a, name=name, sex="1", phone=None, birth_date=dt.date(1971, 1, day),
                      address_line=None, street="文昌街道"))
    b = _rec(db, _reg(db, world.org_b, name=name, sex="1", phone=None, birth_date=dt.date(1971, 1, day),
                      address_line=line_b, street="文昌街道"))
    with db.session() as s:
        item = s.scalars(select(MatchReview).where(MatchReview.record_id == b.id)).one()
    return a, b, item.id


def test_compare_lists_agreeing_and_disagreeing_fields(db, world):
    a, b, item_id = _review_pair(db, world, "钱进", 3, line_b="柳塘村5组18号")
    with db.session() as s:
        cmp = mpi.compare(s, OP, item_id)
        prior = mpi.current_model(s).prior_weight
        assert any(i.id == item_id for i in mpi.list_review_items(s))
        s.commit()
    by = {f.field: f for f in cmp.fields}
    assert by["name"].agrees is True and by["birth_date"].agrees is True
    assert by["address"].agrees is False and by["address"].level == "same_street" and by["phone"].agrees is None
    assert cmp.match_weight == pytest.approx(sum(f.weight for f in cmp.fields) + prior)


def test_not_a_match_is_remembered(db, world):
    a, b, item_id = _review_pair(db, world, "孙立", 4)
    with db.session() as s:
        mpi.decide(s, OP, item_id, "not_a_match")
        s.commit()
    with db.session() as s:
        lo, hi = sorted((a.person_id, b.person_id))
        assert s.scalar(select(NotAMatch).where(NotAMatch.person_id == lo, NotAMatch.other_person_id == hi))
        with pytest.raises(Conflict):
            mpi.decide(s, OP, item_id, "link")
    # An update of b's record does not bring the pair back.
    with db.session() as s:
        rec = s.get(PatientRecord, b.id)
        identity.update(s, OP, b.id, PatientInput(organization_id=rec.organization_id, mrn=rec.mrn, name="孙立",
                                                  sex="1", birth_date=dt.date(1971, 1, 4), phone="13700009999"))
        s.commit()
        assert s.scalars(select(MatchReview).where(MatchReview.record_id == b.id,
                                                   MatchReview.status == "open")).all() == []


def test_link_decision_moves_the_record_and_unmerge_restores(db, world):
    a, b, item_id = _review_pair(db, world, "冯刚", 5)
    with db.session() as s:
        item = mpi.decide(s, OP, item_id, "link")
        s.commit()
        merge_id = item.merge_id
    with db.session() as s:
        assert s.get(PatientRecord, b.id).person_id == a.person_id
        assert s.get(Person, b.person_id).merged_into_id == a.person_id
        assert mpi.surviving_person_id(s, b.person_id) == a.person_id
        mpi.unmerge(s, OP, merge_id)
        s.commit()
    with db.session() as s:
        assert s.get(PatientRecord, b.id).person_id == b.person_id
        assert s.get(Person, b.person_id).merged_into_id is None
        assert s.get(MatchReview, item_id).status == "open"
        assert s.get(PersonMerge, merge_id).status == "undone"
        kinds = [e.event_type for e in s.scalars(select(OutboxEvent).where(
            OutboxEvent.event_type.in_(["person.linked", "person.unmerged"]), OutboxEvent.aggregate_id.in_(
                [b.id, b.person_id])))]
        assert "person.linked" in kinds and "person.unmerged" in kinds
        details = [e.detail for e in s.scalars(select(AuditEvent).where(AuditEvent.entity_person_id == b.person_id))]
        assert {"link", "unmerge"} <= {d.get("mpi") for d in details if d}


def test_merge_marks_duplicate_at_same_institution_replaced(db, world):
    a = _rec(db, register_patient(db, world.org_a, name="韩雪", phone="13700001111"))
    b = _rec(db, register_patient(db, world.org_a, name="韩雪梅", phone="13700002222"))
    with db.session() as s:
        m = mpi.merge_persons(s, OP, a.person_id, b.person_id, reason="same resident")
        s.commit()
    with db.session() as s:
        rb = s.get(PatientRecord, b.id)
        assert rb.person_id == a.person_id and rb.replaced_by_id == a.id and rb.active is False
        with pytest.raises(Conflict):
            mpi.merge_persons(s, OP, a.person_id, b.person_id)
        mpi.unmerge(s, OP, m.id)
        s.commit()
        rb = s.get(PatientRecord, b.id)
        assert rb.person_id == b.person_id and rb.replaced_by_id is None and rb.active is True


def test_merge_refuses_different_valid_ids(db, world):
    a = _rec(db, register_patient(db, world.org_a, name="许多", id_number=make_resident_id("330122", dt.date(1960, 1, 1), 11)))
    b = _rec(db, register_patient(db, world.org_b, name="许多", id_number=make_resident_id("330122", dt.date(1960, 1, 1), 13)))
    with db.session() as s, pytest.raises(Conflict):
        mpi.merge_persons(s, OP, a.person_id, b.person_id)


def test_newer_model_version_is_used(db, world):
    with db.session() as s:
        row = mpi.save_model(s, mpi.default_model_json(), by="test", training={"records": 0})
        assert mpi.current_model(s).version == f"v{row.version}"
        s.rollback()


def test_concurrent_registrations_without_id_share_one_person(db, world):
    """Two institutions register the same never-seen resident, without an ID, at the same moment."""
    import threading

    barrier = threading.Barrier(2)
    ids: list[str] = []

    def register(org: str) -> None:
        with db.session() as s:
            barrier.wait(timeout=10)
            rec = identity.register(s, OP, PatientInput(
                organization_id=org, mrn=f"CN-{org[:6]}", name="龚雪", sex="2", birth_date=dt.date(1999, 9, 9),
                phone="13700002020", district="青溪区", street="文昌街道", address_line="柳塘村1组1号"))
            s.commit()
            ids.append(rec.id)

    errors = run_concurrently(register, [(world.org_a,), (world.org_b,)])
    assert not errors
    with db.session() as s:
        assert len({s.get(PatientRecord, i).person_id for i in ids}) == 1


def test_update_that_reveals_a_duplicate_queues_a_review(db, world):
    a = _rec(db, _reg(db, world.org_a, name="顾青", sex="1", phone=None, birth_date=dt.date(1977, 7, 7),
                      address_line=None, street=None))
    b = _rec(db, _reg(db, world.org_b, name="顾清", sex="1", phone=None, birth_date=dt.date(1987, 1, 1),
                      address_line=None, street=None))
    assert a.person_id != b.person_id
    with db.session() as s:
        identity.update(s, OP, b.id, PatientInput(organization_id=b.organization_id, mrn=b.mrn, name="顾青", sex="1",
                                                  birth_date=dt.date(1977, 7, 7), district="青溪区"))
        s.commit()
        items = s.scalars(select(MatchReview).where(MatchReview.record_id == b.id)).all()
        assert [(i.candidate_person_id, i.source) for i in items] == [(a.person_id, "update")]
        assert s.get(PatientRecord, b.id).person_id == b.person_id  # never moved by itself


def test_reading_a_merged_person_answers_with_the_survivor(db, world):
    a = _rec(db, register_patient(db, world.org_a, name="葛优", phone="13700003030"))
    b = _rec(db, register_patient(db, world.org_b, name="葛尤", phone="13800003131"))
    with db.session() as s:
        mpi.merge_persons(s, OP, a.person_id, b.person_id)
        person, records = identity.read_person(s, OP, b.person_id)
        assert person.id == a.person_id and {r.id for r in records} == {a.id, b.id}
        s.rollback()
