"""Teams and contracts (RULES §5): one active family doctor per resident, enforced by the database even
for concurrent signings; renewal, switching, expiry, key groups; audit and outbox events."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select, text

from onetrip.family import common, contracts, teams
from onetrip.family.followups import service as followups
from onetrip.family.models import Contract
from onetrip.kit.errors import BadRequest, Conflict
from onetrip.kit.principal import cli_principal
from onetrip.outbox.models import OutboxEvent
from tests.factories import run_concurrently
from tests.family.conftest import doctor_principal, resident


def test_team_members_come_from_the_registry(db, fam):
    with db.session() as s:
        with pytest.raises(BadRequest):  # the nurse slot takes a nurse
            teams.create_team(s, cli_principal(), organization_id=fam.org, code="BAD", name="x",
                                doctor_id=fam.doctor, nurse_id=fam.doctor, public_health_id=fam.doctor)
        with pytest.raises(BadRequest):
            teams.create_team(s, cli_principal(), organization_id=fam.org, code="BAD", name="x",
                                doctor_id="nope", nurse_id=fam.doctor, public_health_id=fam.doctor)


def test_sign_over_api_with_key_groups_and_events(client, db, fam, doc_headers):
    pid = resident(db, fam, birth=dt.date(1950, 1, 1), female=True)
    r = client.post("/api/family/contracts", headers=doc_headers, json={
        "person_id": pid, "team_id": fam.team, "package": "personalised", "channel": "app",
        "addons": ["家庭病床"], "declared_groups": ["disabled"]})
    assert r.status_code == 201, r.text
    c = r.json()
    assert c["status"] == "active" and c["doctor_id"] == fam.doctor and c["channel"] == "app"
    assert c["key_groups"] == ["elderly", "disabled"]
    start, end = dt.date.fromisoformat(c["start_date"]), dt.date.fromisoformat(c["end_date"])
    assert end == start.replace(year=start.year + 1) - dt.timedelta(days=1)  # R5.1: one year
    again = client.post("/api/family/contracts", headers=doc_headers, json={"person_id": pid, "team_id": fam.team2})
    assert again.status_code == 409 and again.json()["resourceType"] == "OperationOutcome"
    with db.session() as s:
        ev = s.scalars(select(OutboxEvent).where(OutboxEvent.aggregate_id == c["id"])).one()
        assert ev.event_type == "contract.signed"
        assert set(ev.payload) >= {"contract_id", "organization_id", "team_id", "doctor_id", "key_groups",
                                   "start_date", "end_date"}


def test_bad_input_is_4xx(client, db, fam, doc_headers):
    pid = resident(db, fam)
    for body in ({"person_id": pid, "team_id": fam.team, "package": "gold"},
                 {"person_id": pid, "team_id": fam.team, "channel": "fax"},
                 {"person_id": pid, "team_id": fam.team, "end_date": "2000-01-01"},
                 {"person_id": pid, "team_id": fam.team, "declared_groups": ["astronaut"]},
                 {"person_id": pid, "team_id": "missing"}, {"person_id": "missing", "team_id": fam.team}):
        r = client.post("/api/family/contracts", headers=doc_headers, json=body)
        assert 400 <= r.status_code < 500, (body, r.text)


def test_concurrent_signings_leave_one_active_contract(db, fam):
    pid = resident(db, fam)
    results: list[str] = []

    def sign(team_id):
        with db.session() as s:
            c = contracts.sign_contract(s, doctor_principal(fam), person_id=pid, team_id=team_id)
            s.commit()
            results.append(c.id)

    errors = run_concurrently(sign, [(fam.team,), (fam.team2,), (fam.team,), (fam.team2,)])
    assert len(results) == 1
    assert len(errors) == 3 and all(isinstance(e, Conflict) for e in errors), errors
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Contract).where(Contract.person_id == pid,
                                                                          Contract.status == "active")) == 1


def test_the_database_refuses_a_second_active_contract(db, fam):
    """The partial unique index holds even when the service is bypassed."""
    pid = resident(db, fam)
    with db.session() as s:
        c = contracts.sign_contract(s, cli_principal(), person_id=pid, team_id=fam.team)
        s.commit()
        from sqlalchemy.exc import IntegrityError

        cols = {k: getattr(c, k) for k in ("person_id", "organization_id", "team_id", "doctor_id", "package",
                                           "start_date", "end_date", "status", "channel", "signed_at")}
        with pytest.raises(IntegrityError):
            s.add(Contract(**cols, addons=[], declared_groups=[], key_groups=[]))
            s.flush()
        s.rollback()


def test_renew_and_switch(db, fam):
    pid = resident(db, fam)
    op = doctor_principal(fam)
    with db.session() as s:
        first = contracts.sign_contract(s, op, person_id=pid, team_id=fam.team)
        renewed = contracts.renew_contract(s, op, first.id)
        assert renewed.start_date == first.end_date + dt.timedelta(days=1) and renewed.previous_id == first.id
        assert first.status == "ended" and first.end_reason == "renewed" and renewed.status == "active"
        switched = contracts.switch_contract(s, op, renewed.id, team_id=fam.team2)
        assert switched.doctor_id == fam.doctor2 and switched.start_date == common.today()
        assert renewed.end_reason == "switched" and renewed.end_date < renewed.start_date  # cut: never covered
        with pytest.raises(Conflict):
            contracts.renew_contract(s, op, first.id)
        s.commit()
        types = [e.event_type for e in s.scalars(select(OutboxEvent).where(OutboxEvent.person_id == pid,
                                                  OutboxEvent.event_type.like("contract.%")).order_by(OutboxEvent.id))]
        assert types == ["contract.signed", "contract.ended", "contract.signed", "contract.ended", "contract.signed"]


def test_expired_contract_makes_way_for_a_new_one(db, fam):
    pid = resident(db, fam)
    with db.session() as s:
        start = common.today() - dt.timedelta(days=400)
        old = contracts.sign_contract(s, cli_principal(), person_id=pid, team_id=fam.team, start_date=start)
        s.commit()
        assert contracts.expire_contracts(s, cli_principal(), on=common.today()) >= 1
        assert old.status == "expired"
        new = contracts.sign_contract(s, cli_principal(), person_id=pid, team_id=fam.team2)
        assert new.status == "active"
        s.commit()
        n = s.execute(text("SELECT count(*) FROM fam_contract WHERE person_id = :p AND status = 'active'"),
                      {"p": pid}).scalar()
        assert n == 1


def test_staff_of_another_institution_cannot_sign(db, fam, world):
    from onetrip.kit.principal import Principal

    outsider = Principal(kind="user", id="x", name="x", organization_id=world.org_a, roles=frozenset({"family_doctor"}))
    pid = resident(db, fam)
    with db.session() as s:
        from onetrip.kit.errors import Forbidden

        with pytest.raises(Forbidden):
            contracts.sign_contract(s, outsider, person_id=pid, team_id=fam.team)


def test_concurrent_followups_do_not_lose_the_uncontrolled_run(db, fam):
    """Four follow-ups of one registry at once: the row lock orders them, so the run of consecutive
    uncontrolled visits (R3.3) counts every one of them."""
    from onetrip.family.models import Followup, Registry
    from tests.family.conftest import enrolled

    _, reg = enrolled(db, fam)

    def record():
        with db.session() as s:
            followups.record_followup(s, doctor_principal(fam), reg, sbp=150, dbp=95)
            s.commit()

    assert run_concurrently(record, [()] * 4) == []
    with db.session() as s:
        r = s.get(Registry, reg)
        assert r.consecutive_uncontrolled == 4
        codes = sorted(s.scalars(select(Followup.classification).where(Followup.registry_id == reg)))
        assert codes == ["uncontrolled_first"] + ["uncontrolled_repeat"] * 3
