"""Indicator cockpit benchmark (issue 8). Not part of the test run.

A district-year on PostgreSQL: N encounters (default 10,000,000) over 365 days across the demo district's
institutions and departments, plus result look-ups (调阅, audit rows), recognition checks and decisions,
appointments, and the outbox events of referrals (36,000 a year, as the seeds report), family-doctor
contracts, registry enrolments and follow-ups. Bulk-loaded server-side (INSERT … SELECT generate_series,
foreign-key triggers off during the load), then:

1. full rebuild (``onetrip.analytics.facts.rebuild``) — target ≤ 5 min;
2. the same aggregation SQL the rebuild runs (visits and look-ups), on PostgreSQL and on DuckDB over the
   same rows (exported with COPY … TO STDOUT and loaded into DuckDB);
3. one more day of data with its outbox events, then the incremental update (``facts.update``) —
   target ≤ 5 s;
4. cockpit API p95 (``GET /api/cockpit`` with varying filters, and ``/api/indicators/{id}/values``
   grouped by institution over a year) through the real app in-process — target ≤ 300 ms.

    .venv/bin/python bench/bench_analytics.py --url postgresql://postgres@127.0.0.1:5432/bench_analytics
    .venv/bin/python bench/bench_analytics.py --encounters 200000 --keep   # a quick run; keep the database

The database is dropped at the end unless --keep (or when less than 20 GB of disk would be left).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import sessionmaker

DAY = 86_400


def load_average() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')} load {load_average()}] {msg}", flush=True)


def admin_url(url: str) -> str:
    return url.rsplit("/", 1)[0] + "/postgres"


def recreate(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    eng = create_engine(admin_url(url).replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        c.execute(text(f'CREATE DATABASE "{name}"'))
    eng.dispose()


def drop(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    eng = create_engine(admin_url(url).replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    eng.dispose()


# --- load ------------------------------------------------------------------------------------------

def setup(factory, residents: int) -> None:
    from onetrip.demo.loader import load_district
    from onetrip.recognition.service import seed_catalogue
    from onetrip.rules.service import seed_rules

    with factory() as s:
        seed_rules(s)
        seed_catalogue(s)
        load_district(s, residents=residents, seed=42)
        s.commit()


TEMP = """
CREATE TABLE b_org AS SELECT (row_number() OVER (ORDER BY code) - 1)::int AS i, id, community_id, org_type,
  coalesce((SELECT array_agg(d.id ORDER BY d.id) FROM department d WHERE d.organization_id = o.id), '{}') AS depts
  FROM organization o WHERE org_type IN ('lead_hospital','district_hospital','branch_centre','station');
CREATE TABLE b_rec AS SELECT (row_number() OVER (ORDER BY id) - 1)::int AS i, id, person_id FROM patient_record;
CREATE INDEX ON b_rec (i); CREATE INDEX ON b_org (i);
"""


def sql_encounters(lo: int, hi: int, n_org: int, n_rec: int, start: dt.date, days: int, salt: str = "") -> str:
    return f"""
INSERT INTO encounter (id, person_id, patient_record_id, organization_id, department_id, community_id,
  organization_level, in_county, encounter_class, visit_date, status, outside_institution, source, created_at,
  updated_at)
SELECT md5('enc{salt}' || g), r.person_id, r.id,
  CASE WHEN x.outside THEN NULL ELSE o.id END,
  CASE WHEN x.outside OR cardinality(o.depts) = 0 THEN NULL ELSE o.depts[1 + (x.h % cardinality(o.depts))] END,
  o.community_id,
  CASE WHEN x.outside THEN 'outside' WHEN o.org_type IN ('branch_centre','station') THEN 'primary' ELSE 'county' END,
  NOT x.outside, x.cls, DATE '{start.isoformat()}' + (g % {days})::int, 'finished',
  CASE WHEN x.outside THEN '浙大一院' END, 'bench', now(), now()
FROM generate_series({lo}, {hi}) g
CROSS JOIN LATERAL (SELECT abs(hashint4(g)) AS h) hh
CROSS JOIN LATERAL (SELECT hh.h, (hh.h % 1000) < 55 AS outside,
  CASE WHEN (hh.h / 1000) % 100 < 3 THEN 'IMP' WHEN (hh.h / 1000) % 100 < 11 THEN 'EMER' ELSE 'AMB' END AS cls) x
JOIN b_org o ON o.i = (x.h / 100000) % {n_org}
JOIN b_rec r ON r.i = g % {n_rec}
"""


def sql_lookups(lo: int, hi: int, n_org: int, start: dt.date, days: int, seq0: int) -> str:
    t0 = dt.datetime.combine(start, dt.time(0), dt.UTC) - dt.timedelta(hours=8)
    return f"""
INSERT INTO audit_event (chain, chain_seq, recorded_at, type_code, subtype, action, outcome, agent_org_id, source,
  entity_person_id, entity_what, prev_hash, row_hash)
SELECT 30000, {seq0} + g, TIMESTAMPTZ '{t0.isoformat()}' + ((g % {days}) * interval '1 day')
  + ((hashint4(g) & 65535) * interval '1 second'), 'rest', 'read', 'R', '0', o.id, 'api', NULL,
  'DiagnosticReport/' || md5('r' || g), 'bench', 'bench'
FROM generate_series({lo}, {hi}) g JOIN b_org o ON o.i = abs(hashint4(g + 7)) % {n_org}
"""


def sql_recognition(lo: int, hi: int, n_org: int, n_rec: int, start: dt.date, days: int, salt: str = "") -> str:
    t0 = dt.datetime.combine(start, dt.time(1), dt.UTC)
    common = f"""FROM generate_series({lo}, {hi}) g JOIN b_org o ON o.i = abs(hashint4(g + 3)) % {n_org}
JOIN b_rec r ON r.i = g % {n_rec}"""
    when = f"TIMESTAMPTZ '{t0.isoformat()}' + ((g % {days}) * interval '1 day')"
    return f"""
INSERT INTO recognition_decision (id, kind, person_id, check_id, ordering_org_id, item_code, prior_ids, decision,
  reason_code, channel, created_at, updated_at)
SELECT md5('c{salt}' || g), 'check', r.person_id, NULL, o.id, 'GLU',
  CASE WHEN g % 5 = 0 THEN '[]'::jsonb ELSE '["p"]'::jsonb END, NULL, NULL, 'rest', {when}, {when} {common};
INSERT INTO recognition_decision (id, kind, person_id, check_id, ordering_org_id, item_code, prior_ids, decision,
  reason_code, channel, created_at, updated_at)
SELECT md5('d{salt}' || g), 'decision', r.person_id, md5('c{salt}' || g), o.id, 'GLU',
  CASE WHEN g % 5 = 0 THEN '[]'::jsonb ELSE '["p"]'::jsonb END,
  CASE WHEN g % 5 = 0 OR g % 7 = 0 THEN 'repeated' ELSE 'recognised' END,
  CASE WHEN g % 5 = 0 OR g % 7 = 0 THEN (CASE WHEN g % 3 = 0 THEN '99' ELSE '01' END) END, 'rest', {when}, {when}
  {common};
"""


def sql_appointments(lo: int, hi: int, n_rec: int, start: dt.date, days: int) -> str:
    t0 = dt.datetime.combine(start, dt.time(1), dt.UTC)
    when = f"TIMESTAMPTZ '{t0.isoformat()}' + ((g % {days}) * interval '1 day')"
    return f"""
INSERT INTO sched_appointment (id, person_id, patient_record_id, organization_id, slot_id, resource_id, exam_code,
  start, "end", status, channel, precise, used_reserved, booked_at, created_at, updated_at, version_id)
SELECT md5('a' || g), r.person_id, r.id, res.organization_id, 'benchslot', res.id, 'CT_HEAD',
  {when}, {when} + interval '15 minutes',
  (ARRAY['booked','fulfilled','fulfilled','fulfilled','noshow','cancelled','checked-in'])[1 + g % 7], 'web',
  g % 10 <> 0, false, {when} - ((g % 9) * interval '1 day'), now(), now(), 1
FROM generate_series({lo}, {hi}) g JOIN b_rec r ON r.i = g % {n_rec}
JOIN (SELECT (row_number() OVER (ORDER BY id) - 1)::int AS i, id, organization_id FROM sched_resource) res
  ON res.i = g % (SELECT count(*) FROM sched_resource)
"""


def sql_events(kind: str, lo: int, hi: int, n_org: int, start: dt.date, days: int) -> str:
    """Outbox events in the CONTRACTS.md shapes."""
    day = f"(DATE '{start.isoformat()}' + (g % {days})::int)"
    at = f"({day}::timestamp + interval '10 hours')::timestamptz"
    if kind == "referral":
        et = "(ARRAY['referral.submitted','referral.accepted','referral.completed'])[1 + g % 3]"
        rid, payload = "md5('ref' || (g / 3))", f"""jsonb_build_object('referral_id', md5('ref' || (g / 3)),
  'direction', CASE WHEN (g / 3) % 2 = 0 THEN 'up' ELSE 'down' END, 'from_organization_id', o.id,
  'to_organization_id', NULL, 'to_department_id', NULL, 'submitted_at', to_char({at}, 'YYYY-MM-DD"T"HH24:MI:SSOF'),
  'at', to_char({at}, 'YYYY-MM-DD"T"HH24:MI:SSOF'), 'reserved_slot', false)"""
        agg, person = "Referral", "NULL"
    elif kind == "contract":
        et, rid, agg, person = "'contract.signed'", "md5('k' || g)", "Contract", "md5('p' || g)"
        payload = f"""jsonb_build_object('contract_id', md5('k' || g), 'organization_id', o.id, 'team_id', 't',
  'doctor_id', 'd', 'key_groups', '[]'::jsonb, 'start_date', {day}::text, 'end_date', ({day} + 365)::text)"""
    elif kind == "enrol":
        et, rid, agg, person = "'registry.enrolled'", "md5('p' || g)", "Registry", "md5('p' || g)"
        payload = f"""jsonb_build_object('programme', CASE WHEN g % 4 = 0 THEN 'diabetes' ELSE 'hypertension' END,
  'organization_id', o.id, 'team_id', 't', 'doctor_id', 'd', 'enrolled_on', {day}::text)"""
    else:  # follow-ups: four per enrolled patient on average
        et, rid, agg, person = "'followup.recorded'", "md5('f' || g)", "Followup", "md5('p' || (g / 4))"
        payload = f"""jsonb_build_object('followup_id', md5('f' || g), 'programme',
  CASE WHEN (g / 4) % 4 = 0 THEN 'diabetes' ELSE 'hypertension' END, 'organization_id', o.id, 'team_id', 't',
  'doctor_id', 'd', 'visit_date', {day}::text, 'controlled', g % 3 <> 0, 'on_schedule', true)"""
    return f"""
INSERT INTO outbox_event (event_id, occurred_at, event_type, aggregate_type, aggregate_id, person_id, payload)
SELECT md5('{kind}ev' || g), {at}, {et}, '{agg}', {rid}, {person}, {payload}
FROM generate_series({lo}, {hi}) g JOIN b_org o ON o.i = abs(hashint4(g + 11)) % {n_org}
"""


def chunked(conn, label: str, total: int, step: int, make) -> None:
    t = time.perf_counter()
    for lo in range(0, total, step):
        hi = min(total, lo + step) - 1
        conn.execute(text(make(lo, hi)))
        conn.commit()
        log(f"  {label}: {hi + 1:,}/{total:,} ({time.perf_counter() - t:.0f} s)")


def bulk_load(engine, factory, args, start: dt.date, days: int) -> dict:
    from onetrip.scheduling.models import Resource

    with factory() as s:
        for n, org in enumerate(s.execute(text("SELECT id FROM organization WHERE org_type IN "
                                               "('lead_hospital','district_hospital') ORDER BY code")).scalars()):
            s.add(Resource(organization_id=org, code=f"BCT{n}", name=f"CT{n}", kind="device", modality="CT",
                           exam_codes=["CT_HEAD"]))
        s.commit()
    t0 = time.perf_counter()
    with engine.connect() as c:
        for stmt in TEMP.strip().split(";"):
            if stmt.strip():
                c.execute(text(stmt))
        n_org = c.execute(text("SELECT count(*) FROM b_org")).scalar()
        n_rec = c.execute(text("SELECT count(*) FROM b_rec")).scalar()
        for table in ("encounter", "audit_event", "recognition_decision", "sched_appointment", "outbox_event"):
            c.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER ALL"))  # FK checks (and append-only guards)
        c.execute(text("DROP INDEX IF EXISTS ix_encounter_visit_date_org, ix_encounter_person_id"))
        c.commit()
        step = 1_000_000
        chunked(c, "encounters", args.encounters, step,
                lambda lo, hi: sql_encounters(lo, hi, n_org, n_rec, start, days))
        # A chain of their own (number 30000) so the real chains' positions stay untouched.
        chunked(c, "look-ups (audit rows)", args.lookups, step,
                lambda lo, hi: sql_lookups(lo, hi, n_org, start, days, 1))
        chunked(c, "recognition checks+decisions", args.decisions, step,
                lambda lo, hi: sql_recognition(lo, hi, n_org, n_rec, start, days))
        chunked(c, "appointments", args.appointments, step,
                lambda lo, hi: sql_appointments(lo, hi, n_rec, start, days))
        chunked(c, "referral events", args.referrals * 3, step,
                lambda lo, hi: sql_events("referral", lo, hi, n_org, start, days))
        chunked(c, "contract events", args.contracts, step,
                lambda lo, hi: sql_events("contract", lo, hi, n_org, start, days))
        chunked(c, "registry events", args.managed, step,
                lambda lo, hi: sql_events("enrol", lo, hi, n_org, start, days))
        chunked(c, "follow-up events", args.managed * 4, step,
                lambda lo, hi: sql_events("followup", lo, hi, n_org, start, days))
        log("  indexes")
        c.execute(text("CREATE INDEX ix_encounter_visit_date_org ON encounter (visit_date, organization_id)"))
        c.execute(text("CREATE INDEX ix_encounter_person_id ON encounter (person_id)"))
        for table in ("encounter", "audit_event", "recognition_decision", "sched_appointment", "outbox_event"):
            c.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER ALL"))
        c.commit()
        c.execute(text("ANALYZE"))
        c.commit()
        size = c.execute(text("SELECT pg_size_pretty(pg_database_size(current_database()))")).scalar()
    return {"load_s": time.perf_counter() - t0, "n_org": n_org, "n_rec": n_rec, "db_size": size}


# --- phases ----------------------------------------------------------------------------------------

def full_rebuild(factory) -> dict:
    from onetrip.analytics import facts

    with factory() as s:
        t = time.perf_counter()
        summary = facts.rebuild(s)
        s.commit()
        return {"rebuild_s": time.perf_counter() - t, **summary}


def side_by_side(engine, factory, workdir: Path) -> dict:
    """The rebuild's two big aggregations (visits by day × institution × department; look-ups by local day ×
    institution), the same SQL text on PostgreSQL and on DuckDB over the same rows."""
    import duckdb

    from onetrip.analytics import counts

    out: dict = {}

    def pg_sql(stmt) -> str:
        return str(stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))

    with factory() as s:
        captured = {"visits": pg_sql(counts.encounter_stmt(None)), "lookups": pg_sql(counts.lookup_stmt(s, None))}
    exports = {
        "visits": ("encounter", "SELECT visit_date, community_id, organization_id, department_id, encounter_class, "
                                "in_county, organization_level, status FROM encounter"),
        "lookups": ("audit_event", "SELECT recorded_at, agent_org_id, action, outcome, entity_what FROM audit_event"),
    }
    duck = duckdb.connect(str(workdir / "bench.duckdb"))
    duck.execute("SET TimeZone = 'UTC'")
    raw = engine.raw_connection()
    try:
        for name, (table, query) in exports.items():
            path = workdir / f"{table}.csv"
            t = time.perf_counter()
            with raw.cursor() as cur, path.open("wb") as f, cur.copy(f"COPY ({query}) TO STDOUT (FORMAT CSV, HEADER)") as cp:
                for chunk in cp:
                    f.write(chunk)
            out[f"{name}_export_s"] = time.perf_counter() - t
            t = time.perf_counter()
            types = {"visit_date": "DATE", "in_county": "BOOLEAN", "recorded_at": "TIMESTAMPTZ"}
            cols = query.split("SELECT ", 1)[1].split(" FROM")[0].split(", ")
            duck.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM read_csv('{path}', header=true, "
                         f"columns={{{', '.join(repr(c) + ': ' + repr(types.get(c, 'VARCHAR')) for c in cols)}}})")
            out[f"{name}_duckdb_load_s"] = time.perf_counter() - t
            path.unlink()
    finally:
        raw.close()
    for name, sql in captured.items():
        with engine.connect() as c:
            t = time.perf_counter()
            n_pg = len(c.execute(text(sql)).all())
            out[f"{name}_pg_s"] = time.perf_counter() - t
        t = time.perf_counter()
        n_duck = len(duck.execute(sql).fetchall())
        out[f"{name}_duckdb_s"] = time.perf_counter() - t
        out[f"{name}_groups"] = (n_pg, n_duck)
    duck.close()
    return out


def one_more_day(engine, factory, args, day: dt.date, n_org: int, n_rec: int) -> dict:
    """A day of new data with the outbox events its services would have written, then facts.update."""
    from onetrip.analytics import facts

    salt = f"x{time.time_ns()}"  # ids of their own, so --reuse runs can add another day

    per_day = args.encounters // 365
    base = args.encounters + 10_000_000
    with engine.connect() as c:
        c.execute(text("ALTER TABLE encounter DISABLE TRIGGER ALL"))
        c.execute(text(sql_encounters(base, base + per_day - 1, n_org, n_rec, day, 1, salt)))
        c.execute(text("ALTER TABLE encounter ENABLE TRIGGER ALL"))
        c.execute(text(f"""INSERT INTO outbox_event (event_id, occurred_at, event_type, aggregate_type, aggregate_id,
  person_id, payload) SELECT md5('{salt}ee' || id), now(), 'encounter.recorded', 'Encounter', id, person_id,
  jsonb_build_object('encounter_id', id, 'organization_id', organization_id, 'organization_level', organization_level,
  'department_id', department_id, 'visit_date', visit_date::text, 'in_county', in_county)
  FROM encounter WHERE visit_date = DATE '{day.isoformat()}' AND id IN (SELECT md5('enc{salt}' || g)
  FROM generate_series({base}, {base + per_day - 1}) g)"""))
        c.execute(text("ALTER TABLE audit_event DISABLE TRIGGER ALL"))
        top = c.execute(text("SELECT coalesce(max(chain_seq), 0) FROM audit_event WHERE chain = 30000")).scalar()
        c.execute(text(sql_lookups(base, base + args.lookups // 365 - 1, n_org, day, 1, top + 1 - base)))
        c.execute(text("ALTER TABLE audit_event ENABLE TRIGGER ALL"))
        c.execute(text("ALTER TABLE recognition_decision DISABLE TRIGGER ALL"))
        c.execute(text(sql_recognition(base, base + args.decisions // 365 - 1, n_org, n_rec, day, 1, salt)))
        c.execute(text("ALTER TABLE recognition_decision ENABLE TRIGGER ALL"))
        c.execute(text(f"""INSERT INTO outbox_event (event_id, occurred_at, event_type, aggregate_type, aggregate_id,
  person_id, payload) SELECT md5('{salt}re' || id), now(), 'recognition.decided', 'RecognitionDecision', id, person_id,
  jsonb_build_object('check_id', check_id) FROM recognition_decision
  WHERE kind = 'decision' AND created_at >= TIMESTAMPTZ '{day.isoformat()}T00:00:00+08:00'
  AND NOT EXISTS (SELECT 1 FROM outbox_event o WHERE o.aggregate_id = recognition_decision.id)"""))
        c.execute(text(sql_events("referral", base, base + args.referrals * 3 // 365, n_org, day, 1)
                       .replace("md5('referralev' || g)", f"md5('{salt}referralev' || g)")))
        n_events = c.execute(text("SELECT count(*) FROM outbox_event WHERE occurred_at > now() - interval '1 hour'"
                                  )).scalar()
        c.commit()
    with factory() as s:
        t = time.perf_counter()
        summary = facts.update(s)
        s.commit()
        return {"update_s": time.perf_counter() - t, "new_events": n_events, **summary}


def cockpit_latency(url: str, factory, requests: int) -> dict:
    from fastapi.testclient import TestClient

    from onetrip.app import create_app
    from onetrip.auth.service import create_user
    from onetrip.config import Settings

    with factory() as s:
        bureau = s.execute(text("SELECT id FROM organization WHERE org_type = 'bureau'")).scalar()
        communities = list(s.execute(text("SELECT id FROM medical_community ORDER BY code")).scalars())
        orgs = list(s.execute(text("SELECT id FROM organization WHERE org_type <> 'bureau' ORDER BY code")).scalars())
        if not s.execute(text("SELECT 1 FROM app_user WHERE username = 'bench_mgr'")).first():
            create_user(s, "bench_mgr", "Bench@2026pass", ["bureau_manager"], "bench", bureau)
        s.commit()
    app = create_app(Settings(database_url=url), factory=factory)
    times: dict[str, list[float]] = {"cockpit": [], "values": []}
    ids = ["outpatient_visits", "smart_booking_rate", "referrals_up", "recognition_rate", "no_show_rate",
           "exam_wait_median", "lookups"]
    with TestClient(app) as client:
        tok = client.post("/auth/token", data={"grant_type": "password", "username": "bench_mgr",
                                               "password": "Bench@2026pass"}).json()["access_token"]
        h = {"Authorization": f"Bearer {tok}"}
        filters = [{}] + [{"community": c} for c in communities] + [{"community": "", "organization": o}
                                                                     for o in orgs[:6]]
        client.get("/api/cockpit", headers=h)  # warm-up
        for n in range(requests):
            t = time.perf_counter()
            r = client.get("/api/cockpit", headers=h, params=filters[n % len(filters)])
            times["cockpit"].append(time.perf_counter() - t)
            assert r.status_code == 200, r.text
            t = time.perf_counter()
            r = client.get(f"/api/indicators/{ids[n % len(ids)]}/values", headers=h,
                           params={"period": "month", "from": (dt.date.today() - dt.timedelta(days=365)).isoformat(),
                                   "to": dt.date.today().isoformat(), "group_by": "organization"})
            times["values"].append(time.perf_counter() - t)
            assert r.status_code == 200, r.text
    out = {}
    for k, v in times.items():
        v.sort()
        out[f"{k}_p50_ms"] = statistics.median(v) * 1000
        out[f"{k}_p95_ms"] = v[int(len(v) * 0.95) - 1] * 1000
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/bench_analytics")
    p.add_argument("--encounters", type=int, default=10_000_000)
    p.add_argument("--lookups", type=int, default=2_000_000)
    p.add_argument("--decisions", type=int, default=500_000, help="checks, each with one decision")
    p.add_argument("--appointments", type=int, default=1_000_000)
    p.add_argument("--referrals", type=int, default=36_000, help="referrals a year (3 events each)")
    p.add_argument("--contracts", type=int, default=300_000)
    p.add_argument("--managed", type=int, default=100_000, help="enrolled chronic patients (4 follow-ups each)")
    p.add_argument("--residents", type=int, default=20_000, help="demo district persons (visits cycle over them)")
    p.add_argument("--requests", type=int, default=60)
    p.add_argument("--keep", action="store_true", help="keep the database afterwards")
    p.add_argument("--reuse", action="store_true", help="skip the load: the database is already there")
    args = p.parse_args()
    from onetrip.db.migrate import upgrade
    from onetrip.db.session import make_engine
    from onetrip.kit.clock import local_date

    today = local_date(dt.datetime.now(dt.UTC))
    days = 365
    start = today - dt.timedelta(days=days)
    url = args.url
    log(f"machine: {os.cpu_count()} cores; db {url}; {args.encounters:,} encounters {start} … {today - dt.timedelta(days=1)}")
    if not args.reuse:
        recreate(url)
        upgrade(url)
    engine = make_engine(url)
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    results: dict = {}
    if not args.reuse:
        setup(factory, args.residents)
        log("district loaded; bulk load …")
        results.update(bulk_load(engine, factory, args, start, days))
        log(f"bulk load {results['load_s']:.0f} s, database {results['db_size']}")
    else:
        from onetrip.analytics.models import AnalyticsFactMonth

        AnalyticsFactMonth.__table__.create(engine, checkfirst=True)  # databases loaded before it existed
        with engine.connect() as c:
            results["n_org"] = c.execute(text("SELECT count(*) FROM b_org")).scalar()
            results["n_rec"] = c.execute(text("SELECT count(*) FROM b_rec")).scalar()
    with engine.connect() as c:
        # Denominators of 签约率 / 管理率: the primary institutions' catchments.
        c.execute(text("""INSERT INTO analytics_catchment (organization_id, residents, hypertension_estimated,
  diabetes_estimated, created_at, updated_at) SELECT id, 30000, 3600, 1350, now(), now() FROM organization
  WHERE org_type IN ('branch_centre', 'station') ON CONFLICT DO NOTHING"""))
        c.commit()
    la = load_average()
    results.update(full_rebuild(factory))
    log(f"full rebuild {results['rebuild_s']:.1f} s ({results['fact_rows']:,} fact rows; load before {la})")
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP", "/tmp")) as tmp:
        results.update(side_by_side(engine, factory, Path(tmp)))
    log("side by side: " + ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                                     for k, v in results.items() if k.startswith(("visits", "lookups"))))
    results.update(one_more_day(engine, factory, args, today, results["n_org"], results["n_rec"]))
    log(f"incremental update of one day: {results['update_s']:.2f} s ({results['new_events']:,} new events, "
        f"days {results['days']})")
    results.update(cockpit_latency(url, factory, args.requests))
    log(f"cockpit p50 {results['cockpit_p50_ms']:.0f} ms p95 {results['cockpit_p95_ms']:.0f} ms; values p50 "
        f"{results['values_p50_ms']:.0f} ms p95 {results['values_p95_ms']:.0f} ms")
    engine.dispose()
    free_gb = shutil.disk_usage("/").free / 2**30
    if not args.keep or free_gb < 20:
        drop(url)
        log(f"dropped the bench database ({free_gb:.0f} GB free before)")
    print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in results.items()})


if __name__ == "__main__":
    main()
