"""CPU cost per request of the staff mix (issue 26): server CPU, PostgreSQL backend CPU, latency, per endpoint.

    .venv/bin/python bench/bench_request_cost.py                       # load 2,000 residents, 300 requests each
    .venv/bin/python bench/bench_request_cost.py --skip-load -n 500    # reuse the loaded database
    PYTHONPATH=/tmp/old/src .venv/bin/python bench/bench_request_cost.py --skip-load   # another tree's code
    .venv/bin/python bench/bench_request_cost.py --skip-load --compare /tmp/old/src      # old vs new, interleaved

Loads a small demo district into its own PostgreSQL database and picks one clinician, its patients and free
slots (bench/bench_soak.py's ``database_url``, ``load`` and ``fixture``), starts ``onetrip serve --workers 1``,
and for each endpoint of the soak mix (bench/soak/locustfile.py) sends N sequential requests with the
clinician's bearer token. Sequential, so the server's and PostgreSQL's CPU time over a batch divided by N is
the cost of one request: server CPU from /proc/<pid>/stat (utime + stime of the uvicorn process and its
children), PostgreSQL CPU the same way for the backends of the bench database (pg_stat_activity; the
monitor's own connection excluded), statements per request from pg_stat_statements when it is loaded
(``shared_preload_libraries``; otherwise reported as absent), and latency p50/p95 as the client sees it.
The client (this script) runs on the same cores; its CPU is not counted. Writes
bench/results/request-cost[-label].json and prints a Markdown table. The machine is shared: with
``--compare`` both trees' servers run side by side and take turns (25 requests each), so a burst of other
work on the machine falls on both.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_soak import RESULTS, ROOT, database_url, fixture, free_port, load  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """utime + stime of each process (seconds); a process that is gone is left out."""
    out = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[pid] = (int(fields[11]) + int(fields[12])) / TICK  # fields 14 and 15 of stat(5)
    return out


def server_pids(root: int) -> list[int]:
    pids, todo = [root], [root]
    while todo:
        res = subprocess.run(["ps", "-o", "pid=", "--ppid", str(todo.pop())], capture_output=True, text=True)
        kids = [int(x) for x in res.stdout.split()]
        pids += kids
        todo += kids
    return pids


class Postgres:
    """The bench database's backends (their CPU) and, when loaded, pg_stat_statements (their calls)."""

    def __init__(self, url: str, name: str):
        self.engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1),
                                    isolation_level="AUTOCOMMIT")
        self.conn = self.engine.connect()
        self.name = name
        self.me = self.conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        try:
            self.conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_stat_statements"))
            self.conn.execute(text("SELECT 1 FROM pg_stat_statements LIMIT 1"))
            self.statements = True
        except Exception:  # not in shared_preload_libraries: the view cannot be read
            self.statements = False

    def backends(self) -> list[int]:
        return list(self.conn.execute(text(
            "SELECT pid FROM pg_stat_activity WHERE datname = :d AND backend_type = 'client backend'"
            " AND pid <> :me"), {"d": self.name, "me": self.me}).scalars())

    def calls(self) -> int | None:
        if not self.statements:
            return None
        return int(self.conn.execute(text(
            "SELECT coalesce(sum(s.calls), 0) FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid"
            " WHERE d.datname = :d AND s.userid = (SELECT oid FROM pg_roles WHERE rolname = current_user)"
            " AND s.query NOT ILIKE '%pg_stat%'"), {"d": self.name}).scalar_one())

    def close(self) -> None:
        self.conn.close()
        self.engine.dispose()


def requests_of(fx: dict):
    """Each endpoint of the mix: a name and a function(i) sending its i-th request (and checking the answer)."""
    desk = fx["desks"][0]
    org = desk["org"]
    patients, slots, items = fx["patients"][org], fx["slots"][org], fx["items"]
    h = {"Authorization": f"Bearer {desk['token']}", "Accept": "application/fhir+json"}

    def p(i: int) -> dict:
        return patients[i % len(patients)]

    def ok(r: httpx.Response, *codes: int) -> httpx.Response:
        if r.status_code not in (codes or (200,)):
            raise SystemExit(f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text[:300]}")
        return r

    def book_cancel(c: httpx.Client, i: int) -> None:
        s = slots[i % len(slots)]
        r = ok(c.post("/api/scheduling/appointments", headers=h, json={
            "slot_id": s["slot"], "patient_record_id": p(i)["record"], "exam_code": s["exam"], "channel": "clinic"}),
            201, 409)
        if r.status_code == 201:
            ok(c.post(f"/api/scheduling/appointments/{r.json()['id']}/cancel", headers=h, json={"reason": "bench"}))

    return {
        "Patient read": lambda c, i: ok(c.get(f"/fhir/R4/Patient/{p(i)['record']}", headers=h)),
        "Patient?identifier": lambda c, i: ok(c.get(f"/fhir/R4/Patient?identifier={p(i)['identifier']}",
                                                    headers=h)),
        "Patient?name": lambda c, i: ok(c.get(f"/fhir/R4/Patient?name={p(i)['name']}&_count=20", headers=h)),
        "Observation?patient": lambda c, i: ok(c.get(f"/fhir/R4/Observation?patient={p(i)['record']}&_count=20",
                                                     headers=h)),
        "timeline": lambda c, i: ok(c.get(f"/api/persons/{p(i)['person']}/timeline", headers=h)),
        "recognition check": lambda c, i: ok(c.post("/api/recognition/check", headers=h, json={
            "person_id": p(i)["person"], "item_code": items[i % len(items)], "ordering_org_id": org})),
        "book + cancel (2 requests)": book_cancel,
    }


def _batch(client: httpx.Client, server: int, pg: Postgres, send, start: int, n: int, acc: dict) -> None:
    """Send n requests; add their server and PostgreSQL CPU, statements and latencies to ``acc``."""
    spids, bpids = server_pids(server), pg.backends()
    s0, b0, q0 = cpu_seconds(spids), cpu_seconds(bpids), pg.calls()
    for i in range(start, start + n):
        t = time.perf_counter()
        send(client, i)
        acc["lat"].append((time.perf_counter() - t) * 1000)
    s1, b1, q1 = cpu_seconds(spids), cpu_seconds(bpids + [x for x in pg.backends() if x not in bpids]), pg.calls()
    acc["server"] += sum(s1[k] - s0.get(k, 0) for k in s1)
    acc["pg"] += sum(b1[k] - b0.get(k, 0) for k in b1)
    if q0 is not None:
        acc["statements"] += q1 - q0
    acc["n"] += n


def _row(name: str, acc: dict, statements: bool) -> dict:
    lat, n = sorted(acc["lat"]), acc["n"]
    return {"endpoint": name, "n": n,
            "server_cpu_ms": round(acc["server"] * 1000 / n, 2), "pg_cpu_ms": round(acc["pg"] * 1000 / n, 2),
            "statements": round(acc["statements"] / n, 1) if statements else None,
            "p50_ms": round(statistics.median(lat), 2), "p95_ms": round(lat[int(len(lat) * 0.95) - 1], 2)}


def start_server(url: str, pythonpath: str | None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "ONETRIP_DATABASE_URL": url}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    # Run the package the interpreter imports (PYTHONPATH may point at another tree), not the console script.
    server = subprocess.Popen([sys.executable, "-m", "onetrip.cli.main", "serve", "--port", str(port),
                               "--workers", "1"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              start_new_session=True, cwd=ROOT)
    for _ in range(120):
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return server, base
        except httpx.HTTPError:
            time.sleep(0.5)
    server.kill()
    raise SystemExit("server did not start: " + (server.stderr.read(2000).decode() if server.stderr else ""))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--database", default="onetrip_request_cost")
    ap.add_argument("--residents", type=int, default=2_000)
    ap.add_argument("--skip-load", action="store_true")
    ap.add_argument("-n", type=int, default=300, help="requests per endpoint (and per server)")
    ap.add_argument("--compare", metavar="SRC", help="also run the code in SRC (a tree's src/, as PYTHONPATH) as a "
                    "second server, alternating batches of 25 requests with this code's, so that both see the "
                    "same load from the rest of the machine")
    ap.add_argument("--label", default="", help="a name for this run in the result file (e.g. old / new)")
    args = ap.parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    url = database_url("postgresql", args.database, recreate=not args.skip_load)
    if not args.skip_load:
        print(f"loading the demo district ({args.residents:,} residents) …", flush=True)
        load(url, args.residents)
    import onetrip
    trees = {"this": (os.environ.get("PYTHONPATH"), str(Path(onetrip.__file__).parent))}
    if args.compare:
        trees["compare"] = (args.compare, str(Path(args.compare) / "onetrip"))
    servers: dict[str, tuple[subprocess.Popen, str]] = {}
    pg = None
    clients: dict[str, httpx.Client] = {}
    results: dict[str, list[dict]] = {k: [] for k in trees}
    try:
        for key, (path, _) in trees.items():
            servers[key] = start_server(url, path)
        sends = {key: requests_of(fixture(url, base, per_org=300, slots_per_org=max(400, args.n * 2)))
                 for key, (_, base) in servers.items()}
        pg = Postgres(url, args.database)
        clients = {key: httpx.Client(base_url=base, timeout=30) for key, (_, base) in servers.items()}
        step = 25 if args.compare else args.n
        for name in sends["this"]:
            accs = {k: {"server": 0.0, "pg": 0.0, "statements": 0, "n": 0, "lat": []} for k in trees}
            for key in trees:  # warm: pool connections, prepared statements, caches
                for i in range(max(5, args.n // 10)):
                    sends[key][name](clients[key], i)
            for start in range(0, args.n, step):
                for key in trees:
                    _batch(clients[key], servers[key][0].pid, pg, sends[key][name], args.n + start,
                           min(step, args.n - start), accs[key])
            for key in trees:
                results[key].append(_row(name, accs[key], pg.statements))
                print(key, json.dumps(results[key][-1], ensure_ascii=False), flush=True)
    finally:
        for c in clients.values():
            c.close()
        if pg is not None:
            pg.close()
        for server, _ in servers.values():
            server.terminate()
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                server.kill()
    result = {"label": args.label, "residents": args.residents, "n": args.n,
              "interleaved": bool(args.compare), "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared)",
              "python": platform.python_version(), "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
              "runs": {trees[k][1]: rows for k, rows in results.items()}}
    out = RESULTS / f"request-cost{'-' + args.label if args.label else ''}.json"
    out.write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")
    for key, rows in results.items():
        print(f"\ncode: {trees[key][1]}  ({args.n} sequential requests per endpoint, {args.residents:,} residents"
              f"{', interleaved with the other tree' if args.compare else ''})")
        print("| endpoint | server CPU ms | PostgreSQL CPU ms | statements | p50 ms | p95 ms |")
        print("|---|---:|---:|---:|---:|---:|")
        for r in rows:
            st = "–" if r["statements"] is None else r["statements"]
            print(f"| {r['endpoint']} | {r['server_cpu_ms']} | {r['pg_cpu_ms']} | {st} | {r['p50_ms']} "
                  f"| {r['p95_ms']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
