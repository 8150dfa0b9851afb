"""Acceptance: a year of synthetic follow-ups (the demo loader on a small district) gives 签约率 (overall
and per key group), 管理率, 规范管理率 and 控制率 (RULES R3.6, R5.3) per team, doctor and institution that
match an independent SQL computation written here. Also: the demo loader is deterministic, bulk, and
emits the outbox events the cockpit reads."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select, text

from onetrip.demo.family import load_family
from onetrip.demo.loader import load_district
from onetrip.family import common
from onetrip.family.figures import service as figures
from onetrip.family.models import Contract, Followup, Registry
from onetrip.kit.principal import cli_principal
from onetrip.outbox.models import OutboxEvent

MANAGED_SQL = """
WITH managed AS (
  SELECT r.id, r.{col} AS grp FROM fam_registry r
  WHERE r.programme = :programme AND r.enrolled_on <= :end AND (r.closed_on IS NULL OR r.closed_on > :end)
), fu AS (
  SELECT f.registry_id, f.controlled,
         ROW_NUMBER() OVER (PARTITION BY f.registry_id
                            ORDER BY f.visit_date DESC, f.created_at DESC, f.id DESC) AS rn,
         COUNT(*) OVER (PARTITION BY f.registry_id) AS n
  FROM fam_followup f WHERE f.visit_date >= :start AND f.visit_date <= :end
)
SELECT m.grp, COUNT(*) AS managed,
       SUM(CASE WHEN fu.n >= 4 THEN 1 ELSE 0 END) AS standard,
       SUM(CASE WHEN fu.controlled THEN 1 ELSE 0 END) AS controlled
FROM managed m LEFT JOIN fu ON fu.registry_id = m.id AND fu.rn = 1
GROUP BY m.grp
"""


@pytest.fixture(scope="module")
def district(db):
    today = common.today()
    with db.session() as s:
        load_district(s, residents=1500, seed=23, batch_size=500, batch_commit=s.commit)
        counts = load_family(s, 23, today)
        s.commit()
    return today, counts


def years_before(day: dt.date, n: int) -> dt.date:
    try:
        return day.replace(year=day.year - n)
    except ValueError:
        return day.replace(year=day.year - n, day=28)


@pytest.mark.parametrize("level", ["team", "doctor", "institution"])
def test_programme_figures_match_independent_sql(db, district, level):
    today, counts = district
    assert counts["followups"] > 300 and counts["registries"] > 50
    start, end = dt.date(today.year, 1, 1), today
    col = {"team": "team_id", "doctor": "doctor_id", "institution": "organization_id"}[level]
    with db.session() as s:
        figs = figures.compute_figures(s, cli_principal(), level=level)
        p = common.params(s)
        adults = s.execute(text("SELECT COUNT(*) FROM person WHERE deceased = :f AND merged_into_id IS NULL "
                                "AND birth_date <= :cut"), {"f": False, "cut": years_before(end, 18)}).scalar()
        for programme, prevalence in (("hypertension", p.hypertension_prevalence),
                                      ("diabetes", p.diabetes_prevalence)):
            rows = s.execute(text(MANAGED_SQL.format(col=col)),
                             {"programme": programme, "start": start, "end": end}).all()
            expected = {str(g): (m, int(st or 0), int(c or 0)) for g, m, st, c in rows}
            got = figs["programmes"][programme]
            assert {k: (v["managed"], v["standard"], v["controlled"]) for k, v in got["by"].items()} == expected
            managed = sum(v[0] for v in expected.values())
            standard = sum(v[1] for v in expected.values())
            controlled = sum(v[2] for v in expected.values())
            total = got["total"]
            assert total["management_rate"] == round(managed / (adults * prevalence), 4)
            assert total["standard_rate"] == round(standard / managed, 4)
            assert total["control_rate"] == round(controlled / managed, 4)
            assert 0 < total["standard_rate"] < 1 and 0 < total["control_rate"] < 1  # the data is not trivial
            for g, (m, st, c) in expected.items():
                assert got["by"][g]["control_rate"] == round(c / m, 4)
                assert got["by"][g]["standard_rate"] == round(st / m, 4)
                if level == "institution":  # the institution's adults: residents registered there
                    n = s.execute(text(
                        "SELECT COUNT(DISTINCT p.id) FROM person p JOIN patient_record r ON r.person_id = p.id "
                        "WHERE r.organization_id = :o AND r.deleted_at IS NULL AND p.deceased = :f "
                        "AND p.merged_into_id IS NULL AND p.birth_date <= :cut"),
                        {"o": g, "f": False, "cut": years_before(end, 18)}).scalar()
                    assert got["by"][g]["management_rate"] == round(m / (n * prevalence), 4)


def test_contract_rates_match_independent_sql(db, district):
    today, _ = district
    with db.session() as s:
        figs = figures.compute_figures(s, cli_principal(), level="team")["contracts"]
        living = "p.deceased = :f AND p.merged_into_id IS NULL"
        population = s.execute(text(f"SELECT COUNT(*) FROM person p WHERE {living}"), {"f": False}).scalar()
        covered = ("SELECT DISTINCT c.person_id FROM fam_contract c WHERE c.start_date <= :d AND c.end_date >= :d")
        contracted = s.execute(text(f"SELECT COUNT(*) FROM ({covered}) x"), {"d": today}).scalar()
        assert figs["contracted"] == contracted and figs["population"] == population
        assert figs["contract_rate"] == round(contracted / population, 4)
        old = years_before(today, 65)
        el_pop = s.execute(text(f"SELECT COUNT(*) FROM person p WHERE {living} AND p.birth_date <= :c"),
                           {"f": False, "c": old}).scalar()
        el_con = s.execute(text(f"SELECT COUNT(*) FROM person p WHERE p.birth_date <= :c AND p.id IN ({covered})"),
                           {"c": old, "d": today}).scalar()
        assert figs["key_groups"]["elderly"] == {"contracted": el_con, "population": el_pop,
                                                 "contract_rate": round(el_con / el_pop, 4)}
        young = years_before(today, 7)
        ch_pop = s.execute(text(f"SELECT COUNT(*) FROM person p WHERE {living} AND p.birth_date > :c"),
                           {"f": False, "c": young}).scalar()
        assert figs["key_groups"]["children_0_6"]["population"] == ch_pop
        reg = ("SELECT r.person_id FROM fam_registry r WHERE r.programme = 'hypertension' AND r.enrolled_on <= :d "
               "AND (r.closed_on IS NULL OR r.closed_on > :d)")
        ht_pop = s.execute(text(f"SELECT COUNT(*) FROM ({reg}) x"), {"d": today}).scalar()
        ht_con = s.execute(text(f"SELECT COUNT(*) FROM ({reg}) x WHERE x.person_id IN ({covered})"),
                           {"d": today}).scalar()
        assert figs["key_groups"]["hypertension"]["contracted"] == ht_con
        assert figs["key_groups"]["hypertension"]["contract_rate"] == round(ht_con / ht_pop, 4)
        by_team = dict(s.execute(text("SELECT c.team_id, COUNT(DISTINCT c.person_id) FROM fam_contract c "
                                      "WHERE c.start_date <= :d AND c.end_date >= :d GROUP BY c.team_id"),
                                 {"d": today}).all())
        assert {k: v["contracted"] for k, v in figs["by"].items()} == by_team


def test_figures_over_the_api(client, db, district):
    from onetrip.auth.service import create_user
    from onetrip.registry.models import Organization
    from tests.factories import PASSWORD, auth, token

    with db.session() as s:
        bureau = s.scalars(select(Organization.id).where(Organization.org_type == "bureau")).first()
        create_user(s, "famfig.mgr", PASSWORD, ["bureau_manager"], "卫健局", bureau)
        s.commit()
    mgr = auth(token(client, "famfig.mgr"))  # bureau manager: aggregates only
    r = client.get("/api/family/figures?level=institution", headers=mgr)
    assert r.status_code == 200, r.text
    assert set(r.json()["programmes"]) == {"hypertension", "diabetes"}
    assert client.get("/api/family/figures?level=village", headers=mgr).status_code == 400
    assert client.get("/api/family/figures?year=1999", headers=mgr).status_code == 400
    assert client.get("/api/family/worklist", headers=mgr).status_code == 403  # no patient lists


def test_demo_is_deterministic_bulk_and_emits_events(db, district):
    today, counts = district
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Followup)) == counts["followups"]
        overdue = s.scalar(select(func.count()).select_from(Registry).where(Registry.next_due_date < today))
        uncontrolled = s.scalar(select(func.count()).select_from(Registry).where(Registry.controlled.is_(False)))
        assert overdue > 0 and uncontrolled > 0
        kinds = dict(s.execute(select(OutboxEvent.event_type, func.count()).where(OutboxEvent.event_type.in_(
            ["contract.signed", "registry.enrolled", "followup.recorded"])).group_by(OutboxEvent.event_type)).all())
        assert kinds == {"contract.signed": counts["contracts"], "registry.enrolled": counts["registries"],
                         "followup.recorded": counts["followups"]}
        first = s.scalars(select(Contract.id).order_by(Contract.id).limit(5)).all()
        assert load_family(s, 23, today)["teams"] == 0  # loaded already: left alone
    # same seed, same ids: rebuild in a scratch SQLite database
    from onetrip.db.migrate import upgrade
    from onetrip.db.session import make_engine
    from onetrip.rules.service import seed_rules

    if db.kind != "sqlite":
        return
    import tempfile
    from pathlib import Path

    from sqlalchemy.orm import sessionmaker

    path = Path(tempfile.mkdtemp()) / "again.db"
    upgrade(f"sqlite:///{path}")
    engine = make_engine(f"sqlite:///{path}")
    with sessionmaker(bind=engine)() as s2:
        seed_rules(s2)
        load_district(s2, residents=1500, seed=23, batch_size=500)
        again = load_family(s2, 23, today)
        assert again == counts
        assert s2.scalars(select(Contract.id).order_by(Contract.id).limit(5)).all() == first
    engine.dispose()
