"""Scheduling fixtures: a small bookable world (the app itself comes from tests/conftest.py)."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass

import pytest

from onetrip.kit.clock import local_date, utcnow
from onetrip.kit.identifiers import make_resident_id
from onetrip.kit.principal import cli_principal
from onetrip.scheduling import service, tasks
from tests.factories import auth, register_patient, token

_seq = itertools.count(101, 2)  # odd: male


def resident_id(seq: int | None = None) -> str:
    return make_resident_id("330281", dt.date(1970, 1, 1) + dt.timedelta(days=next(_seq) * 37 % 15000),
                            seq or next(_seq) % 999)


@dataclass
class Sched:
    ct: str  # resource ids at org A
    us: str
    es: str
    day: dt.date  # first day with slots (a working day after today)


def next_working_day(after: dt.date) -> dt.date:
    from onetrip.scheduling.calendar import template_weekday

    d = after + dt.timedelta(days=1)
    while template_weekday(d) not in (0, 1, 2, 3, 4):
        d += dt.timedelta(days=1)
    return d


def build_sched(db, org_id: str, *, capacity: int = 1, share: float = 0.0, days: int = 14) -> Sched:
    op = cli_principal()
    with db.session() as s:
        service.seed_catalogue(s)
        n = next(_seq)
        ct = service.create_resource(s, op, organization_id=org_id, code=f"CT{n}", name=f"CT {n}", kind="device",
                                     modality="CT", exam_codes=["CT_HEAD", "CT_CHEST", "CT_ABD_C", "CTA_COR"])
        us = service.create_resource(s, op, organization_id=org_id, code=f"US{n}", name=f"超声 {n}", kind="device",
                                     modality="US", exam_codes=["US_ABD", "US_THY", "US_PELVIS"])
        es = service.create_resource(s, op, organization_id=org_id, code=f"ES{n}", name=f"内镜 {n}", kind="room",
                                     modality="ES", exam_codes=["ES_GASTRO", "ES_COLON"])
        for r, minutes in ((ct, 20), (us, 15), (es, 30)):
            for wd in range(5):
                service.add_template(s, op, r.id, weekday=wd, start_time="08:00", end_time="11:30",
                                     slot_minutes=minutes, capacity=capacity, reserved_share=share)
                service.add_template(s, op, r.id, weekday=wd, start_time="13:30", end_time="17:00",
                                     slot_minutes=minutes, capacity=capacity, reserved_share=share)
        today = local_date(utcnow())
        tasks.generate_slots(s, start=today + dt.timedelta(days=1), days=days, organization_id=org_id)
        s.commit()
        return Sched(ct.id, us.id, es.id, next_working_day(today))


def patient(db, org_id: str, *, with_id: bool = True) -> str:
    return register_patient(db, org_id, name="王芳", id_number=resident_id() if with_id else None)


def admin_headers(client, world) -> dict[str, str]:
    return auth(token(client, world.users["admin"]))


def system_headers(client, world) -> dict[str, str]:
    r = client.post("/auth/token", data={"grant_type": "client_credentials", "client_id": world.client_id,
                                         "client_secret": world.client_secret, "scope": "system/*.cruds"})
    assert r.status_code == 200, r.text
    return auth(r.json()["access_token"])


@pytest.fixture
def unhurried_solver(db):
    """CP-SAT's time limit is a rule value (250 ms): on a machine busy with the parallel suite it can stop
    at a feasible 3-trip answer before proving the 2-trip one. These tests check the rules, not the speed
    (bench/bench_scheduling.py measures that), so they give it 2 s."""
    from onetrip.rules.service import set_rule

    with db.session() as s:
        set_rule(s, "scheduling", "solver_time_limit_ms", 2_000, by="test")
        s.commit()
    yield
    with db.session() as s:
        set_rule(s, "scheduling", "solver_time_limit_ms", 250, by="test")
        s.commit()
