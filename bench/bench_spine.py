"""Spine benchmark: load the synthetic district into PostgreSQL, then measure patient read and search
latency through the HTTP API with a real client (httpx, keep-alive) against `onetrip serve` (uvicorn,
one worker) on 127.0.0.1.

    .venv/bin/python bench/bench_spine.py --residents 1000000
    .venv/bin/python bench/bench_spine.py --residents 1000000 --skip-load     # reuse the loaded database

Writes bench/results/spine-<residents>.json and prints a Markdown table for docs/benchmarks.md.
The server and this client share the machine's 2 cores. Requests are sequential (latency, not
throughput); every read and every patient in a search page writes its audit row, as in production.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
ADMIN_URL = os.environ.get("ONETRIP_BENCH_PG_ADMIN", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def recreate_database(name: str) -> str:
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        c.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return ADMIN_URL.rsplit("/", 1)[0].replace("+psycopg", "") + "/" + name


def load(url: str, residents: int, seed: int) -> dict:
    from sqlalchemy.orm import sessionmaker

    from onetrip.db.migrate import upgrade
    from onetrip.db.session import make_engine
    from onetrip.demo.loader import load_district
    from onetrip.rules.service import seed_rules

    t0 = time.perf_counter()
    upgrade(url)
    engine = make_engine(url)
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    last = [0.0]

    def progress(step: str, done: int, total: int) -> None:
        if time.perf_counter() - last[0] > 15 or done == total:
            last[0] = time.perf_counter()
            print(f"  {step}: {done:,}/{total:,} ({time.perf_counter() - t0:.0f} s)", flush=True)

    with factory() as s:
        seed_rules(s)
        summary = load_district(s, residents=residents, seed=seed, progress=progress, batch_commit=s.commit)
        s.commit()
    loaded = time.perf_counter() - t0
    with engine.connect() as c:
        c.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
    engine.dispose()
    return {"load_seconds": round(loaded, 1), "total_with_analyze_seconds": round(time.perf_counter() - t0, 1),
            **{k: summary[k] for k in ("persons", "patient_records", "organizations", "practitioners")}}


def samples(url: str, n: int) -> list[tuple[str, str | None, str | None, str]]:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as c:
        rows = c.execute(text(
            "SELECT id, id_number, phone, name_pinyin FROM patient_record TABLESAMPLE SYSTEM (1) "
            "WHERE id_number IS NOT NULL AND phone IS NOT NULL LIMIT :n"), {"n": n}).all()
    engine.dispose()
    return [tuple(r) for r in rows]


def make_client_token(url: str) -> tuple[str, str]:
    from sqlalchemy.orm import sessionmaker

    from onetrip.auth.service import create_client
    from onetrip.db.session import make_engine

    engine = make_engine(url)
    with sessionmaker(bind=engine)() as s:
        client, secret = create_client(s, "bench HIS", "system/Patient.rs")
        s.commit()
        cid = client.client_id
    engine.dispose()
    return cid, secret


def make_clinician(url: str) -> str:
    """A clinician at the first lead hospital: searches take the access-policy path (own records plus
    persons the policy permits elsewhere) instead of the operator path."""
    import uuid

    from sqlalchemy import select
    from sqlalchemy.orm import sessionmaker

    from onetrip.auth.service import create_user
    from onetrip.db.session import make_engine
    from onetrip.registry.models import Organization

    engine = make_engine(url)
    name = f"bench.{uuid.uuid4().hex[:6]}"
    with sessionmaker(bind=engine)() as s:
        org = s.scalar(select(Organization).where(Organization.org_type == "lead_hospital").order_by(Organization.code))
        create_user(s, name, "Bench@2026pass", ["clinician"], "bench", org.id)
        s.commit()
    engine.dispose()
    return name


def measure(http: httpx.Client, paths: list[str], headers: dict) -> dict:
    lat = []
    for p in paths:
        t = time.perf_counter()
        r = http.get(p, headers=headers)
        lat.append((time.perf_counter() - t) * 1000)
        if r.status_code != 200:
            raise SystemExit(f"{p} → {r.status_code}: {r.text[:300]}")
    return {"n": len(lat), "p50_ms": round(pct(lat, 50), 2), "p95_ms": round(pct(lat, 95), 2),
            "p99_ms": round(pct(lat, 99), 2), "mean_ms": round(statistics.fmean(lat), 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--residents", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--database", default="onetrip_bench")
    ap.add_argument("--skip-load", action="store_true")
    ap.add_argument("--requests", type=int, default=2000)
    args = ap.parse_args()

    url = ADMIN_URL.rsplit("/", 1)[0].replace("+psycopg", "") + "/" + args.database
    result: dict = {"residents": args.residents, "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                    "python": platform.python_version()}
    if not args.skip_load:
        url = recreate_database(args.database)
        print(f"loading {args.residents:,} residents into {args.database} …", flush=True)
        result["load"] = load(url, args.residents, args.seed)
        print(f"  loaded in {result['load']['load_seconds']} s", flush=True)

    cid, secret = make_client_token(url)
    port = free_port()
    env = {**os.environ, "ONETRIP_DATABASE_URL": url}
    server = subprocess.Popen([str(ROOT / ".venv/bin/onetrip"), "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        with httpx.Client(base_url=base, timeout=30) as http:
            tok = http.post("/auth/token", data={"grant_type": "client_credentials", "client_id": cid,
                                                 "client_secret": secret}).json()["access_token"]
            h = {"Authorization": f"Bearer {tok}"}
            rows = samples(url, args.requests)
            rng = random.Random(1)
            rng.shuffle(rows)
            n = min(len(rows), args.requests)
            warm = [f"/fhir/R4/Patient/{r[0]}" for r in rows[:200]]
            measure(http, warm, h)
            result["read"] = measure(http, [f"/fhir/R4/Patient/{r[0]}" for r in rows[:n]], h)
            k = n // 2
            result["search_identifier"] = measure(http, [f"/fhir/R4/Patient?identifier={r[1]}" for r in rows[:k]], h)
            result["search_phone"] = measure(http, [f"/fhir/R4/Patient?phone={r[2]}" for r in rows[:k]], h)
            result["search_pinyin_name"] = measure(
                http, [f"/fhir/R4/Patient?name={r[3]}&_count=20" for r in rows[:k]], h)
            user = make_clinician(url)
            tok = http.post("/auth/token", data={"grant_type": "password", "username": user,
                                                 "password": "Bench@2026pass"}).json()["access_token"]
            hc = {"Authorization": f"Bearer {tok}"}
            result["clinician_search_pinyin_name"] = measure(
                http, [f"/fhir/R4/Patient?name={r[3]}&_count=20" for r in rows[:k]], hc)
            result["clinician_search_identifier"] = measure(
                http, [f"/fhir/R4/Patient?identifier={r[1]}" for r in rows[:k]], hc)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"spine-{args.residents}.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))
    print(json.dumps(result, indent=2, ensure_ascii=False))
    print("\n| operation | n | p50 ms | p95 ms | p99 ms |\n|---|---|---|---|---|")
    for key in ("read", "search_identifier", "search_phone", "search_pinyin_name", "clinician_search_pinyin_name",
                "clinician_search_identifier"):
        m = result[key]
        print(f"| {key} | {m['n']} | {m['p50_ms']} | {m['p95_ms']} | {m['p99_ms']} |")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    main()
