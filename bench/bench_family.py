"""Family-doctor worklist benchmark (issue 7). Not part of the test run.

One team with N managed patients (default 5,000; hypertension and diabetes) and Y years (default 5) of
quarterly-ish follow-ups (~20 per patient, 100,000 rows for the defaults) in a district of other teams
(``--other-teams``, same size each, so the indexes have to pick the team out). Then the worklist the web
page and the API serve — ``worklist.service.build`` for the team: the page of the 100 most overdue patients,
the due/overdue/lost counts, open alerts, and one audit event per listed patient — is timed R times
(each in its own transaction, rolled back), for each view (all due, overdue, lost), and p50/p95/max are
reported with the load average (the machine is shared).

    .venv/bin/python bench/bench_family.py --url postgresql://postgres@127.0.0.1:5432/bench_family
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import statistics
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.orm import sessionmaker

from onetrip.db.migrate import upgrade
from onetrip.db.session import make_engine
from onetrip.demo.family import _Bulk
from onetrip.family import common, rules
from onetrip.family.models import Followup, Registry, Team
from onetrip.family.worklist import service as worklists
from onetrip.kit.principal import cli_principal
from onetrip.persons.models import Person
from onetrip.registry.models import Organization, Practitioner
from onetrip.rules.service import seed_rules

RESULTS = Path(__file__).parent / "results"


def fresh_database(url: str) -> None:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.remove(path + suffix)
        return
    base, name = url.rsplit("/", 1)
    admin = create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1) + "/postgres",
                          isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        c.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()


def build(session, patients: int, years: int, other_teams: int, today: dt.date, seed: int) -> tuple[str, int]:
    rng = random.Random(seed)
    id_rng = random.Random(f"{seed}:ids")

    def new_id() -> str:
        return uuid.UUID(int=id_rng.getrandbits(128), version=4).hex

    p = common.params(session, today)
    now = dt.datetime.now(dt.UTC)
    stamp = {"created_at": now, "updated_at": now}
    bulk = _Bulk(session)
    org = new_id()
    bulk.add(Organization, id=org, code="BENCHFD", name="基准社区卫生服务中心", name_en=None, org_type="branch_centre",
             grade="1A", uscc=None, licence_no=None, community_id=None, parent_id=None, address=None, phone=None,
             active=True, version_id=1, **stamp)
    bulk.write(Organization.__table__)
    teams = []
    for t in range(1 + other_teams):
        pr = [new_id() for _ in range(3)]
        for i, q in enumerate(("physician", "nurse", "physician")):
            bulk.add(Practitioner, id=pr[i], organization_id=org, department_id=None, staff_no=f"{t}-{i}",
                     name=f"医生{t}{i}", name_pinyin=f"yisheng{t}{i}", sex="1", title=None, qualification=q,
                     licence_no=None, practice_since=None, phone=None, active=True, version_id=1, **stamp)
        tid = new_id()
        bulk.add(Team, id=tid, organization_id=org, code=f"FD{t + 1}", name=f"团队{t + 1}", doctor_id=pr[0],
                 nurse_id=pr[1], public_health_id=pr[2], specialist_id=None, active=True, version_id=1, **stamp)
        teams.append((tid, pr[0]))
    bulk.write(Practitioner.__table__)
    bulk.write(Team.__table__)
    n_fu = 0
    for tid, doc in teams:
        for i in range(patients):
            pid = new_id()
            birth = dt.date(1940 + rng.randrange(45), 1 + rng.randrange(12), 1 + rng.randrange(28))
            bulk.add(Person, id=pid, id_number=None, name=f"患者{i}", name_pinyin=f"huanzhe{i}", sex=rng.choice("12"),
                     birth_date=birth, phone=f"+86138{rng.randrange(10**8):08d}", deceased=False,
                     province=None, city=None, district=None, street=None, address_line=None, merged_into_id=None,
                     version_id=1, **stamp)
            programme = rules.HYPERTENSION if rng.random() < 0.75 else rules.DIABETES
            rid = new_id()
            day = today - dt.timedelta(days=365 * years) + dt.timedelta(days=rng.randrange(60))
            stop = today - dt.timedelta(days=rng.randrange(0, 400)) if rng.random() < 0.3 else today
            run, last, seen = 0, None, None
            while day <= stop:
                ok = rng.random() < 0.65
                sbp, dbp = (rng.randint(118, 138), rng.randint(70, 88)) if ok else (rng.randint(142, 170),
                                                                                   rng.randint(88, 100))
                fpg = round(rng.uniform(5, 6.9) if ok else rng.uniform(7.1, 11), 1)
                last = rules.classify(rules.Visit(programme, day, 60, sbp, dbp, fpg), run, p)
                run = last.consecutive_uncontrolled
                bulk.add(Followup, id=new_id(), registry_id=rid, person_id=pid, programme=programme,
                         organization_id=org, team_id=tid, doctor_id=doc, visit_date=day, method="clinic", sbp=sbp,
                         dbp=dbp, heart_rate=None, fasting_glucose=fpg, random_glucose=None, weight_kg=None,
                         symptoms=[], adverse_reaction=False, complication=False, medication=[], adherence="regular",
                         lifestyle={}, classification=last.code, controlled=last.controlled, action=last.action,
                         on_schedule=True, next_due_date=last.next_due, urgent_reasons=[], referral_id=None,
                         note=None, recorded_by="bench", **stamp)
                n_fu += 1
                seen = day
                day = last.next_due + dt.timedelta(days=rng.randint(-5, 20))
            bulk.add(Registry, id=rid, person_id=pid, programme=programme, organization_id=org, team_id=tid,
                     doctor_id=doc, diagnosis_code=None, enrolled_on=today - dt.timedelta(days=365 * years),
                     status="active", closed_on=None, close_reason=None,
                     last_visit_date=seen, next_due_date=last.next_due if last else today,
                     last_classification=last.code if last else None, controlled=last.controlled if last else None,
                     consecutive_uncontrolled=run, version_id=1, **stamp)
        bulk.write(Person.__table__)
        bulk.write(Registry.__table__)
        bulk.write(Followup.__table__)
        session.commit()
    session.execute(text("ANALYZE"))
    session.commit()
    print(f"built: {len(teams)} teams × {patients:,} managed patients, {n_fu:,} follow-ups")
    return teams[0][0], n_fu


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/bench_family")
    ap.add_argument("--patients", type=int, default=5000)
    ap.add_argument("--years", type=int, default=5)
    ap.add_argument("--other-teams", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--limit", type=int, default=100, help="page size (the web page shows 50)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--reuse", action="store_true", help="time an existing benchmark database (skip the build)")
    args = ap.parse_args()
    load_before = os.getloadavg()
    if not args.reuse:
        fresh_database(args.url)
        upgrade(args.url)
    engine = make_engine(args.url)
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    today = common.today()
    t0 = time.perf_counter()
    with factory() as s:
        if args.reuse:
            team = s.scalar(text("SELECT id FROM fam_team WHERE code = 'FD1'"))
            n_fu = s.scalar(text("SELECT count(*) FROM fam_followup"))
        else:
            seed_rules(s)
            s.commit()
            team, n_fu = build(s, args.patients, args.years, args.other_teams, today, args.seed)
    build_s = time.perf_counter() - t0
    op = cli_principal("bench")
    out = {"url": args.url.rsplit("@", 1)[-1], "limit": args.limit, "patients_per_team": args.patients, "teams": 1 + args.other_teams,
           "years": args.years, "followups": n_fu, "build_seconds": round(build_s, 1), "views": {}}
    for only in (None, "overdue", "lost"):
        times, cpu = [], []
        for _ in range(args.repeats):
            with factory() as s:
                t, c = time.perf_counter(), time.process_time()
                data = worklists.build(s, op, team_id=team, only=only, limit=args.limit)
                s.flush()
                times.append((time.perf_counter() - t) * 1000)
                cpu.append((time.process_time() - c) * 1000)
                s.rollback()
        out["views"][only or "due"] = {"p50_ms": round(statistics.median(times), 1), "p95_ms": round(pct(times, 0.95), 1),
                                       "max_ms": round(max(times), 1), "client_cpu_p50_ms": round(statistics.median(cpu), 1),
                                       "client_cpu_p95_ms": round(pct(cpu, 0.95), 1), "rows": len(data["items"]),
                                       "counts": data["counts"]}
        print(only or "due", out["views"][only or "due"])
    out["load_average_before"] = [round(x, 2) for x in load_before]
    out["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print("load average before", out["load_average_before"], "after", out["load_average_after"])
    RESULTS.mkdir(exist_ok=True)
    kind = "pg" if args.url.startswith("postgresql") else "sqlite"
    (RESULTS / f"family-worklist-{kind}.json").write_text(json.dumps(out, indent=2, ensure_ascii=False))
    engine.dispose()


if __name__ == "__main__":
    main()
