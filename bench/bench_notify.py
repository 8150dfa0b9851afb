"""Notification dispatcher throughput (issue 6 §6). Not part of the test run.

N events (default 5,000) are written to the outbox of a fresh, migrated database (one committed transaction
each, through outbox.record_event), then D dispatchers (threads, each with its own sessions and
``--concurrency`` senders) deliver them to a local threaded HTTP receiver (its own process) that answers 204. Reports the
fan-out time, the end-to-end delivery rate (events/s), and checks every event arrived and none twice.

    .venv/bin/python bench/bench_notify.py --url sqlite:////tmp/bench_notify.db --events 5000
    .venv/bin/python bench/bench_notify.py --url postgresql://postgres@127.0.0.1:5432/bench_notify --dispatchers 2
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import sessionmaker

from onetrip.db.migrate import upgrade
from onetrip.db.session import make_engine, normalize_url
from onetrip.kit.principal import cli_principal
from onetrip.notify import service
from onetrip.notify.dispatcher import Dispatcher
from onetrip.notify.models import Delivery
from onetrip.outbox.service import record_event
from onetrip.rules.service import seed_rules


def fresh_database(url: str) -> None:
    if url.startswith("sqlite"):
        path = Path(url.split("///", 1)[1])
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
    else:
        base, name = url.rsplit("/", 1)
        admin = create_engine(normalize_url(base + "/postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            c.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
    upgrade(url)


RECEIVER = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
out = open(sys.argv[2], "a", buffering=1)
class H(BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        out.write(self.headers["X-OneTrip-Event-Id"] + "\\n")
        self.send_response(204)
        self.end_headers()
s = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H)
s.daemon_threads = True
s.serve_forever()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def delivered(factory) -> int:
    with factory() as s:
        return s.scalar(select(func.count()).select_from(Delivery).where(Delivery.status == "delivered")) or 0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="sqlite:////tmp/bench_notify.db")
    ap.add_argument("--events", type=int, default=5000)
    ap.add_argument("--dispatchers", type=int, default=1)
    ap.add_argument("--concurrency", type=int, default=8)
    args = ap.parse_args()

    fresh_database(args.url)
    engine = make_engine(args.url)
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    log_path = Path(f"/tmp/bench_notify_hits_{os.getpid()}.txt")
    log_path.unlink(missing_ok=True)
    port = free_port()
    receiver = subprocess.Popen([sys.executable, "-c", RECEIVER, str(port), str(log_path)])
    time.sleep(1.0)
    with factory() as s:
        seed_rules(s)
        service.create_subscription(s, cli_principal(), service.SubscriptionInput(
            name="bench", endpoint=f"http://127.0.0.1:{port}/hook", event_types=["bench.*"]))
        s.commit()
    t0 = time.perf_counter()
    ids = []
    for i in range(args.events):
        with factory() as s:
            ids.append(record_event(s, "bench.tick", "Task", str(i), {"i": i, "organization_id": "x" * 32}).event_id)
            s.commit()
    write_s = time.perf_counter() - t0

    dispatchers = [Dispatcher(factory, worker=f"bench-{k}", concurrency=args.concurrency)
                   for k in range(args.dispatchers)]
    t1 = time.perf_counter()
    fanned = dispatchers[0].fan_out_all(dispatchers[0].rules())
    fan_s = time.perf_counter() - t1
    stop = threading.Event()
    threads = [threading.Thread(target=d.run, args=(stop,), kwargs={"poll_seconds": 0.05}) for d in dispatchers]
    t2 = time.perf_counter()
    for t in threads:
        t.start()
    while delivered(factory) < len(ids) and time.perf_counter() - t2 < 900:
        time.sleep(0.1)
    send_s = time.perf_counter() - t2
    stop.set()
    for t in threads:
        t.join()
    receiver.terminate()
    receiver.wait(10)
    hits = Counter(log_path.read_text().split())
    log_path.unlink(missing_ok=True)
    dup = sum(n - 1 for n in hits.values())
    kind = "sqlite" if args.url.startswith("sqlite") else "postgresql"
    print(f"db={kind} events={args.events} dispatchers={args.dispatchers} concurrency={args.concurrency}")
    print(f"outbox writes: {args.events / write_s:,.0f} events/s ({write_s:.1f} s)")
    print(f"fan-out: {fanned} events in {fan_s:.2f} s ({fanned / fan_s:,.0f} events/s)")
    print(f"delivery: {len(hits)} delivered in {send_s:.1f} s = {len(hits) / send_s:,.0f} events/s; "
          f"duplicates {dup}; missing {len(set(ids) - set(hits))}")
    print(f"load average: {os.getloadavg()}")
    sys.exit(0 if len(hits) == len(ids) and dup == 0 else 1)


if __name__ == "__main__":
    main()
