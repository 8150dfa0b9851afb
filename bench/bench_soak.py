"""Load and soak test: mixed staff traffic (bench/soak/locustfile.py) against `onetrip serve --workers N`.

    .venv/bin/python bench/bench_soak.py                                  # PostgreSQL, 10 min, 2 workers
    .venv/bin/python bench/bench_soak.py --skip-load                      # reuse the loaded database
    .venv/bin/python bench/bench_soak.py --db sqlite --users 50 --workers 1 --minutes 5

Loads the demo district (`onetrip demo`, default 20,000 residents) into its own database, creates one
clinician account per institution and picks each institution's own patients and free future slots, starts
the server, runs locust headless (its users on the same machine: the load generator and the server share
the 2 cores, as stated in docs/benchmarks.md), samples the server's memory (all worker processes) once a
minute, and checks afterwards that no slot holds more bookings than places. Writes
bench/results/soak-<db>.json and the locust CSVs next to it, and prints a Markdown row for the docs.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PG_ADMIN = os.environ.get("ONETRIP_BENCH_PG_ADMIN", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def database_url(kind: str, name: str, recreate: bool) -> str:
    if kind == "sqlite":
        path = RESULTS / f"{name}.sqlite"
        if recreate:
            for p in RESULTS.glob(f"{name}.sqlite*"):
                p.unlink()
        return f"sqlite:///{path}"
    if recreate:
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            c.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
    return PG_ADMIN.rsplit("/", 1)[0].replace("+psycopg", "") + "/" + name


def load(url: str, residents: int) -> float:
    t = time.perf_counter()
    subprocess.run([str(ROOT / ".venv/bin/onetrip"), "demo", "--residents", str(residents), "--no-serve"],
                   env={**os.environ, "ONETRIP_DATABASE_URL": url}, check=True, stdout=subprocess.DEVNULL)
    if url.startswith("postgresql"):
        eng = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")
        with eng.connect() as c:
            c.execute(text("ANALYZE"))
        eng.dispose()
    return time.perf_counter() - t


def fixture(url: str, base: str, per_org: int, slots_per_org: int) -> dict:
    """One clinician per institution that has both patients and bookable slots; its own patients (with a
    validated ID: booking is real-name) and free slots from tomorrow on."""
    from sqlalchemy import select
    from sqlalchemy.orm import sessionmaker

    from onetrip.auth.service import create_user
    from onetrip.db.session import make_engine
    from onetrip.persons.models import PatientRecord, Person
    from onetrip.scheduling.models import Resource, Slot

    engine = make_engine(url)
    password = "Soak-" + secrets.token_urlsafe(12) + "!9a"
    desks, patients, slots = [], {}, {}
    tomorrow = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    with sessionmaker(bind=engine)() as s:
        orgs = s.execute(select(Slot.organization_id).where(Slot.start > tomorrow, Slot.blocked.is_(False))
                         .group_by(Slot.organization_id)).scalars().all()
        for org in orgs:
            rows = s.execute(
                select(Slot.id, Resource.exam_codes).join(Resource, Resource.id == Slot.resource_id)
                .where(Slot.organization_id == org, Slot.start > tomorrow, Slot.blocked.is_(False),
                       Slot.booked < Slot.capacity - Slot.reserved)
                .order_by(Slot.start).limit(slots_per_org)).all()
            slots[org] = [{"slot": sid, "exam": codes[0]} for sid, codes in rows if codes]
            people = s.execute(
                select(Person.id, PatientRecord.id, Person.id_number, Person.name)
                .join(PatientRecord, PatientRecord.person_id == Person.id)
                .where(PatientRecord.organization_id == org, Person.id_number.is_not(None))
                .limit(per_org)).all()
            patients[org] = [{"person": p, "record": r, "identifier": i, "name": f} for p, r, i, f in people]
            if not slots[org] or not patients[org]:
                slots.pop(org), patients.pop(org)
                continue
            user = create_user(s, f"soak.{secrets.token_hex(3)}", password, ["clinician"], "soak", org)
            desks.append({"org": org, "user": user.username})
        s.commit()
        items = [r[0] for r in s.execute(text(
            "SELECT local_code FROM recognition_item WHERE active ORDER BY local_code LIMIT 20"))]
    engine.dispose()
    with httpx.Client(base_url=base, timeout=30) as http:
        for d in desks:
            r = http.post("/auth/token", data={"grant_type": "password", "username": d["user"], "password": password})
            r.raise_for_status()
            d["token"] = r.json()["access_token"]
    return {"desks": desks, "patients": patients, "slots": slots, "items": items or ["CT-HEAD"]}


def rss_mb(root_pid: int) -> float:
    """Resident memory of the server: the uvicorn process and every worker it started."""
    pids = [root_pid]
    try:
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(root_pid)], capture_output=True, text=True).stdout
        pids += [int(x) for x in out.split()]
    except OSError:
        pass
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return round(total / 1024, 1)


def overbooked(url: str) -> int:
    eng = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with eng.connect() as c:
        n = c.execute(text(
            "SELECT count(*) FROM (SELECT a.slot_id FROM sched_appointment a JOIN sched_slot s ON s.id = a.slot_id"
            " WHERE a.status IN ('booked', 'pending', 'fulfilled', 'checked-in')"
            " GROUP BY a.slot_id, s.capacity HAVING count(*) > max(s.capacity)) x")).scalar_one()
    eng.dispose()
    return int(n)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", choices=["postgresql", "sqlite"], default="postgresql")
    ap.add_argument("--database", default="onetrip_soak")
    ap.add_argument("--residents", type=int, default=20_000)
    ap.add_argument("--skip-load", action="store_true")
    ap.add_argument("--users", type=int, default=100)
    ap.add_argument("--spawn-rate", type=float, default=20)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--locust-processes", type=int, default=1)
    args = ap.parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    url = database_url(args.db, args.database, recreate=not args.skip_load)
    result: dict = {"db": args.db, "residents": args.residents, "users": args.users, "minutes": args.minutes,
                    "server_workers": args.workers, "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                    "python": platform.python_version(),
                    "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    if not args.skip_load:
        print(f"loading the demo district ({args.residents:,} residents) …", flush=True)
        result["load_seconds"] = round(load(url, args.residents), 1)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "ONETRIP_DATABASE_URL": url}
    server = subprocess.Popen([str(ROOT / ".venv/bin/onetrip"), "serve", "--port", str(port), "--workers",
                               str(args.workers)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              start_new_session=True)
    try:
        for _ in range(120):
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            raise SystemExit("server did not start: " + (server.stderr.read(2000).decode() if server.stderr else ""))
        fx = fixture(url, base, per_org=300, slots_per_org=400)
        result["desks"] = len(fx["desks"])
        fx_path = RESULTS / f"soak-{args.db}-fixture.json"
        fx_path.write_text(json.dumps(fx), encoding="utf-8")
        prefix = RESULTS / f"soak-{args.db}"
        cmd = [str(ROOT / ".venv/bin/locust"), "-f", str(ROOT / "bench/soak/locustfile.py"), "--headless",
               "-u", str(args.users), "-r", str(args.spawn_rate), "-t", f"{int(args.minutes * 60)}s",
               "-H", base, "--csv", str(prefix), "--csv-full-history", "--only-summary", "--stop-timeout", "10"]
        if args.locust_processes > 1:
            cmd += ["--processes", str(args.locust_processes)]
        memory: list[tuple[float, float]] = []
        started = time.monotonic()
        locust = subprocess.Popen(cmd, env={**os.environ, "ONETRIP_SOAK_FIXTURE": str(fx_path)},
                                  stdout=subprocess.DEVNULL, stderr=open(f"{prefix}-locust.log", "w"))  # noqa: SIM115
        while locust.poll() is None:
            memory.append((round((time.monotonic() - started) / 60, 2), rss_mb(server.pid)))
            for _ in range(60):
                if locust.poll() is not None:
                    break
                time.sleep(1)
        result["memory_mb_by_minute"] = memory
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
    with open(f"{prefix}_stats.csv", encoding="utf-8") as f:
        rows = {r["Name"]: r for r in csv.DictReader(f)}
    agg = rows["Aggregated"]
    result["requests"] = int(agg["Request Count"])
    result["failures"] = int(agg["Failure Count"])
    result["rps"] = round(float(agg["Requests/s"]), 1)
    result["p50_ms"], result["p95_ms"], result["p99_ms"] = (float(agg["50%"]), float(agg["95%"]), float(agg["99%"]))
    result["max_ms"] = round(float(agg["Max Response Time"]), 1)
    result["by_request"] = {n: {"count": int(r["Request Count"]), "fail": int(r["Failure Count"]),
                                "p95_ms": float(r["95%"]), "p99_ms": float(r["99%"])}
                            for n, r in rows.items() if n != "Aggregated"}
    mem = [m for t, m in memory if t >= 2]
    if len(mem) >= 2:
        result["memory_growth_pct_min2_to_end"] = round((mem[-1] - mem[0]) / mem[0] * 100, 1)
    result["slots_overbooked"] = overbooked(url)
    (RESULTS / f"soak-{args.db}.json").write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k != "by_request"}, indent=2, ensure_ascii=False))
    print(f"| {args.db} | {args.workers} | {args.users} | {args.minutes:g} min | {result['requests']:,} | "
          f"{result['rps']} | {result['p95_ms']:g} | {result['p99_ms']:g} | {result['max_ms']:g} | "
          f"{result['failures']} | {result.get('memory_growth_pct_min2_to_end', '–')} % |")
    random.seed()
    return 0 if result["failures"] == 0 and result["slots_overbooked"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
