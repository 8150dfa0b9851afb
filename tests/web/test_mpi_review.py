"""The identity review pages (/ui/mpi): queue, side-by-side comparison, decisions and unmerge — through
the real app, on both databases."""

from __future__ import annotations

import datetime as dt
import itertools

from sqlalchemy import select

from onetrip.identity import service as identity
from onetrip.identity.models import MatchReview, NotAMatch, PersonMerge
from onetrip.identity.schemas import PatientInput
from onetrip.kit.principal import cli_principal
from onetrip.persons.models import PatientRecord
from tests.factories import PASSWORD, totp_code

_n = itertools.count(1)


def _reg(db, org, name, day):
    with db.session() as s:
        rec = identity.register(s, cli_principal(), PatientInput(
            organization_id=org, mrn=f"WEBMPI{next(_n):05d}", name=name, sex="1", birth_date=dt.date(1972, 2, day),
            province="浙江省", city="沧澜市", district="青溪区", street="文昌街道"))
        s.commit()
        return rec.id


def _pair(db, world, name, day) -> tuple[str, str, str]:
    a, b = _reg(db, world.org_a, name, day), _reg(db, world.org_b, name, day)
    with db.session() as s:
        item = s.scalars(select(MatchReview).where(MatchReview.record_id == b)).one()
    return a, b, item.id


def _login(client, username) -> None:
    client.cookies.clear()
    r = client.post("/ui/login", data={"username": username, "password": PASSWORD, "next": "/ui/",
                                       "totp": totp_code(username)}, follow_redirects=False)
    assert r.status_code == 303, r.text


def test_review_link_then_unmerge(client, world, db):
    a, b, item_id = _pair(db, world, "韦小宝", 3)
    _login(client, world.users["admin"])
    queue = client.get("/ui/mpi/review")
    assert queue.status_code == 200 and "身份复核" in queue.text and f"/ui/mpi/review/{item_id}" in queue.text
    page = client.get(f"/ui/mpi/review/{item_id}")
    assert page.status_code == 200
    assert "cmp-agree" in page.text and "韦小宝" in page.text
    r = client.post(f"/ui/mpi/review/{item_id}/decide", data={"decision": "link", "reason": "同一人，电话核实"},
                    follow_redirects=False)
    assert r.status_code == 303
    with db.session() as s:
        assert s.get(PatientRecord, b).person_id == s.get(PatientRecord, a).person_id
        merge = s.scalars(select(PersonMerge).order_by(PersonMerge.merged_at.desc())).first()
        old_person = merge.merged_person_id
    merges = client.get("/ui/mpi/merges")
    assert f"/ui/mpi/merges/{merge.id}/unmerge" in merges.text
    r = client.post(f"/ui/mpi/merges/{merge.id}/unmerge", follow_redirects=False)
    assert r.status_code == 303
    with db.session() as s:
        assert s.get(PatientRecord, b).person_id == old_person
        assert s.get(MatchReview, item_id).status == "open"  # the decision was undone: back in the queue


def test_not_a_match_is_remembered(client, world, db):
    _a, _b, item_id = _pair(db, world, "段誉", 4)
    _login(client, world.users["admin"])
    r = client.post(f"/ui/mpi/review/{item_id}/decide", data={"decision": "not_a_match"}, follow_redirects=False)
    assert r.status_code == 303
    with db.session() as s:
        item = s.get(MatchReview, item_id)
        lo, hi = sorted((item.person_id, item.candidate_person_id))
        assert s.scalar(select(NotAMatch).where(NotAMatch.person_id == lo, NotAMatch.other_person_id == hi))
    again = client.post(f"/ui/mpi/review/{item_id}/decide", data={"decision": "link"}, follow_redirects=False)
    assert again.status_code == 409 and "已处理" in again.text


def test_clinicians_cannot_review(client, world, db):
    _a, _b, item_id = _pair(db, world, "虚竹", 5)
    _login(client, world.users["doc_a"])
    assert client.get("/ui/mpi/review").status_code == 403
    assert client.post(f"/ui/mpi/review/{item_id}/decide", data={"decision": "link"}).status_code == 403
