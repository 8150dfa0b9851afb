"""Child health 0–6 over REST (issue 21 point 2) on SQLite and PostgreSQL: the plan with states, recording a check
(z-scores computed and returned, flags, implausible values refused naming the field), the list of checks, the
institution's overdue worklist; scopes, audit and outbox."""

from __future__ import annotations

import datetime as dt
import itertools

from sqlalchemy import select

from onetrip.audit.models import AuditEvent
from onetrip.identity import service as identity
from onetrip.identity.schemas import PatientInput
from onetrip.kit import clock
from onetrip.kit.principal import cli_principal
from onetrip.maternal_child import growth
from onetrip.maternal_child.models import ChildCheck
from onetrip.maternal_child.rules import add_months_to
from onetrip.outbox.models import OutboxEvent
from tests.factories import auth, token

API = "/api/maternal-child/children"
_seq = itertools.count(1)


def today() -> dt.date:
    return clock.local_date(clock.utcnow())


def child(db, org: str, birth: dt.date, sex: str = "1", name: str = "王小明") -> tuple[str, str]:
    with db.session() as s:
        rec = identity.register(s, cli_principal(), PatientInput(
            organization_id=org, mrn=f"CH{next(_seq):07d}", name=name, sex=sex, birth_date=birth))
        s.commit()
        return rec.id, rec.person_id


def plan(client, hdr, pid: str, **params) -> dict[str, dict]:
    r = client.get(f"{API}/{pid}/plan", headers=hdr, params=params)
    assert r.status_code == 200, r.text
    return {i["key"]: i for i in r.json()["items"]}


def test_record_a_check_computes_the_who_z_scores(client, db, world, mch):
    birth = today() - dt.timedelta(days=400)
    pid, person = child(db, world.org_a, birth, sex="2")
    day = birth + dt.timedelta(days=365)
    body = {"check_key": "m12", "check_date": day.isoformat(), "weight_kg": 8.9, "length_cm": 74.0,
            "position": "recumbent", "head_cm": 45.0, "hb_g_l": 118, "hearing": "pass",
            "milestones": {"stands_alone": True, "says_words": False}}
    r = client.post(f"{API}/{pid}/checks", headers=mch, json=body)
    assert r.status_code == 201, r.text
    out = r.json()
    expected = growth.growth_zscores("female", 365, 8.9, 74.0, "recumbent", 45.0)
    assert out["age_days"] == 365
    for k in ("waz", "lhaz", "whz", "bmiz", "hcz"):
        assert out["zscores"][k] == getattr(expected, k) is not None
    assert out["zscores"]["wh_table"] == "wfl" and out["milestones"] == body["milestones"]
    with db.session() as s:
        row = s.get(ChildCheck, out["id"])
        assert row.person_id == person and row.organization_id == world.org_a and row.zscores["waz"] == expected.waz
        assert row.flags == out["flags"]
        ev = s.scalars(select(OutboxEvent).where(OutboxEvent.event_type == "maternal_child.child_check.recorded",
                                                 OutboxEvent.aggregate_id == out["id"])).one()
        assert ev.person_id == person and ev.payload["check_key"] == "m12" and ev.payload["zscores"]["waz"] == \
            expected.waz
        assert s.scalars(select(AuditEvent).where(AuditEvent.subtype == "create",
                                                  AuditEvent.entity_what == f"Observation/mch-check-{out['id']}",
                                                  AuditEvent.entity_person_id == person)).first() is not None
    listed = client.get(f"{API}/{pid}/checks", headers=mch)
    assert listed.status_code == 200 and [c["id"] for c in listed.json()] == [out["id"]]


def test_flags_follow_the_who_cut_offs(client, db, world, mch):
    birth = today() - dt.timedelta(days=800)
    pid, _ = child(db, world.org_a, birth, sex="1")
    day = birth + dt.timedelta(days=731)
    L, M, S = growth.lms("wfa", "male", 731)
    light = round(growth.value_at(L, M, S, -2.5), 2)  # underweight, not severe
    r = client.post(f"{API}/{pid}/checks", headers=mch, json={
        "check_key": "m24", "check_date": day.isoformat(), "weight_kg": light})
    assert r.status_code == 201, r.text
    assert r.json()["flags"] == ["underweight"] and -3 < r.json()["zscores"]["waz"] < -2
    Ll, Ml, Sl = growth.lms("lhfa", "male", 731)
    short = round(growth.value_at(Ll, Ml, Sl, -3.3), 1)
    r = client.post(f"{API}/{pid}/checks", headers=mch, json={
        "check_key": "m24", "check_date": day.isoformat(), "length_cm": short, "position": "standing"})
    assert r.status_code == 201 and r.json()["flags"] == ["severe_stunting", "stunting"]


def test_implausible_and_invalid_values_are_refused_naming_the_field(client, db, world, mch):
    birth = today() - dt.timedelta(days=200)
    pid, person = child(db, world.org_a, birth)
    day = (birth + dt.timedelta(days=183)).isoformat()

    def post(**body):
        return client.post(f"{API}/{pid}/checks", headers=mch, json={"check_key": "m6", "check_date": day, **body})

    heavy = post(weight_kg=30.0)
    assert heavy.status_code == 400 and heavy.json()["issue"][0]["expression"] == ["weight_kg"]
    assert "implausible" in heavy.text
    tall = post(length_cm=95.0, position="recumbent")
    assert tall.status_code == 400 and tall.json()["issue"][0]["expression"] == ["length_cm"]
    head = post(head_cm=60.0)
    assert head.status_code == 400 and head.json()["issue"][0]["expression"] == ["head_cm"]
    no_position = post(length_cm=67.0)
    assert no_position.status_code == 400 and no_position.json()["issue"][0]["expression"] == ["position"]
    unknown = post(check_key="m7")
    assert unknown.status_code == 400 and unknown.json()["issue"][0]["expression"] == ["check_key"]
    before = client.post(f"{API}/{pid}/checks", headers=mch, json={
        "check_key": "m1", "check_date": (birth - dt.timedelta(days=1)).isoformat()})
    assert before.status_code == 400 and before.json()["issue"][0]["expression"] == ["check_date"]
    future = client.post(f"{API}/{pid}/checks", headers=mch, json={
        "check_key": "m8", "check_date": (today() + dt.timedelta(days=1)).isoformat()})
    assert future.status_code == 400 and future.json()["issue"][0]["expression"] == ["check_date"]
    negative = post(weight_kg=-1)
    assert negative.status_code in (400, 422) and "weight_kg" in negative.text
    with db.session() as s:
        assert s.scalars(select(ChildCheck).where(ChildCheck.person_id == person)).first() is None
        assert s.scalars(select(OutboxEvent).where(OutboxEvent.event_type == "maternal_child.child_check.recorded",
                                                   OutboxEvent.person_id == person)).first() is None
    ok = post(weight_kg=7.9, length_cm=67.6, position="recumbent", head_cm=43.0)
    assert ok.status_code == 201 and ok.json()["flags"] == []


def test_the_plan_states_on_a_day_and_after_a_check(client, db, world, mch):
    birth = today() - dt.timedelta(days=100)
    pid, _ = child(db, world.org_a, birth)
    items = plan(client, mch, pid)
    assert items["newborn"]["state"] == "overdue" and items["m1"]["state"] == "overdue"
    assert items["m3"]["state"] == "due" and items["m6"]["state"] == "upcoming"
    assert items["hb_6_8"]["state"] == "upcoming" and items["y6"]["target"] == add_months_to(birth, 72).isoformat()
    # with the discharge date the newborn window moves; on a chosen day
    items = plan(client, mch, pid, on=(birth + dt.timedelta(days=9)).isoformat(),
                 discharge=(birth + dt.timedelta(days=3)).isoformat())
    assert items["newborn"]["state"] == "due" and items["newborn"]["end"] == (birth + dt.timedelta(days=10)).isoformat()
    r = client.post(f"{API}/{pid}/checks", headers=mch, json={
        "check_key": "m1", "check_date": (birth + dt.timedelta(days=29)).isoformat(), "weight_kg": 4.4})
    assert r.status_code == 201, r.text
    items = plan(client, mch, pid)
    assert items["m1"]["state"] == "done" and items["m1"]["done_on"] == (birth + dt.timedelta(days=29)).isoformat()
    assert items["newborn"]["state"] == "overdue"


def test_overdue_worklist_of_the_institution(client, db, world, mch, mch_b):
    birth = today() - dt.timedelta(days=60)
    pid, person = child(db, world.org_a, birth, name="李小红", sex="2")
    client.post(f"{API}/{pid}/checks", headers=mch, json={
        "check_key": "newborn", "check_date": (birth + dt.timedelta(days=5)).isoformat()})
    r = client.get(f"{API}/overdue", headers=mch)
    assert r.status_code == 200, r.text
    mine = [i for i in r.json() if i["patient_id"] == pid]
    assert [i["key"] for i in mine] == ["m1"]  # the newborn visit is done, 满月 overdue
    assert mine[0]["name"] == "李**" and mine[0]["days_overdue"] == 60 - 30
    other = client.get(f"{API}/overdue", headers=mch_b)
    assert other.status_code == 200 and pid not in {i["patient_id"] for i in other.json()}
    with db.session() as s:
        assert s.scalars(select(AuditEvent).where(AuditEvent.subtype == "search-type",
                                                  AuditEvent.entity_person_id == person,
                                                  AuditEvent.entity_what == f"Patient/{pid}")).first() is not None


def test_scopes(client, db, world, mch):
    pid, _ = child(db, world.org_a, today() - dt.timedelta(days=30))
    doc = auth(token(client, world.users["doc_a"]))  # a clinician: no CarePlan, Observation read only
    assert client.get(f"{API}/{pid}/plan", headers=doc).status_code == 403
    assert client.post(f"{API}/{pid}/checks", headers=doc, json={
        "check_key": "m1", "check_date": today().isoformat()}).status_code == 403
    assert client.get(f"{API}/{pid}/checks", headers=doc).status_code == 200
    assert client.get(f"{API}/nope/plan", headers=mch).status_code == 404


def test_another_institution_is_refused_and_audited(client, db, world, mch, mch_b):
    pid, person = child(db, world.org_a, today() - dt.timedelta(days=50))
    assert client.get(f"{API}/{pid}/plan", headers=mch_b).status_code == 403  # no care relationship
    assert client.get(f"{API}/{pid}/checks", headers=mch_b).status_code == 403
    r = client.post(f"{API}/{pid}/checks", headers=mch_b, json={
        "check_key": "m1", "check_date": today().isoformat(), "weight_kg": 4.0})
    assert r.status_code == 403
    with db.session() as s:
        denied = s.scalars(select(AuditEvent).where(AuditEvent.entity_person_id == person,
                                                    AuditEvent.outcome != "0")).all()
        assert len(denied) >= 3
        assert s.scalars(select(ChildCheck).where(ChildCheck.person_id == person)).first() is None
