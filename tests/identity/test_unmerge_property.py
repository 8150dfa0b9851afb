"""Issue 3 acceptance: unmerge restores the exact prior state (hypothesis, on both databases)."""

from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onetrip.identity import mpi
from onetrip.kit.errors import ApiError
from onetrip.kit.identifiers import make_resident_id
from onetrip.kit.principal import cli_principal
from onetrip.persons.models import PatientRecord, Person

OP = cli_principal()
NAMES = ["陈丽", "王伟", "单丽", "曾敏", "吕强"]

_person = st.fixed_dictionaries({
    "has_id": st.booleans(),
    "phone": st.sampled_from([None, "+8613700001111", "+8613900002222"]),
    "birth": st.one_of(st.none(), st.dates(dt.date(1940, 1, 1), dt.date(2020, 1, 1))),
    "records": st.lists(st.tuples(st.sampled_from(["a", "b"]), st.booleans()), min_size=1, max_size=3),
})
_op = st.tuples(st.sampled_from(["merge", "link", "unmerge"]), st.integers(0, 9), st.integers(0, 9))


def _state(s, person_ids, record_ids) -> dict:
    s.flush()
    s.expire_all()
    persons = {pid: mpi._person_state(s.get(Person, pid)) for pid in person_ids}
    records = {rid: mpi._record_state(s.get(PatientRecord, rid)) for rid in record_ids}
    return {"persons": persons, "records": records}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(people=st.lists(_person, min_size=2, max_size=4), ops=st.lists(_op, min_size=1, max_size=6))
def test_unmerge_restores_the_exact_prior_state(db, world, people, ops):
    orgs = {"a": world.org_a, "b": world.org_b}
    with db.session() as s:
        try:
            person_ids, record_ids = [], []
            for i, p in enumerate(people):
                birth = p["birth"] or dt.date(1970, 1, 1)
                rid = make_resident_id("330122", birth, 100 + i) if p["has_id"] else None
                person = Person(name=NAMES[i], name_pinyin="x", sex="1" if rid is None else ("1", "2")[(100 + i) % 2 == 0],
                                birth_date=p["birth"], phone=p["phone"], id_number=rid, street="文昌街道")
                s.add(person)
                s.flush()
                person_ids.append(person.id)
                for k, (org, active) in enumerate(p["records"]):
                    r = PatientRecord(person_id=person.id, organization_id=orgs[org], mrn=f"P{person.id[:8]}{k}",
                                      name=NAMES[i], name_pinyin="x", sex=person.sex, birth_date=p["birth"],
                                      id_number=rid, phone=p["phone"], active=active)
                    s.add(r)
                    s.flush()
                    record_ids.append(r.id)
            stack: list[tuple[str, dict]] = []  # (merge id, state before it)
            for kind, i, j in ops:
                before = _state(s, person_ids, record_ids)
                try:
                    if kind == "merge":
                        m = mpi.merge_persons(s, OP, person_ids[i % len(person_ids)], person_ids[j % len(person_ids)])
                    elif kind == "link":
                        m = mpi.link_record(s, OP, record_ids[i % len(record_ids)], person_ids[j % len(person_ids)])
                    else:
                        if not stack:
                            continue
                        merge_id, expected = stack.pop()
                        mpi.unmerge(s, OP, merge_id)
                        assert _state(s, person_ids, record_ids) == expected
                        continue
                except ApiError:
                    assert _state(s, person_ids, record_ids) == before  # a refused change changes nothing
                    continue
                stack.append((m.id, before))
            while stack:
                merge_id, expected = stack.pop()
                mpi.unmerge(s, OP, merge_id)
                assert _state(s, person_ids, record_ids) == expected
        finally:
            s.rollback()
