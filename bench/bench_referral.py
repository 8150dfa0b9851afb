"""Referral benchmarks (issue 6). Not part of the test run.

On a database where `onetrip demo` has run (the demo referrals are there):
1. load — the demo loader again (the existing demo referrals are renamed first): wall and CPU seconds;
2. worklist — the lead hospital's incoming worklist (open referrals, first page), the nav badge counts,
   the year's figures with year-on-year change, and one referral's package as a FHIR Bundle: p50/p95 ms
   in process (service functions, no HTTP).

    ONETRIP_DATABASE_URL=sqlite:////tmp/demo.db onetrip demo
    .venv/bin/python bench/bench_referral.py --url sqlite:////tmp/demo.db [--load]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time

from sqlalchemy import select, update
from sqlalchemy.orm import sessionmaker

from onetrip import schema  # noqa: F401 — registers every table
from onetrip.db.session import make_engine
from onetrip.kit.clock import local_date, utcnow
from onetrip.kit.principal import cli_principal
from onetrip.referral import figures, package
from onetrip.referral import repository as repo
from onetrip.referral.models import Referral
from onetrip.registry.models import Organization


def timed(fn, n: int) -> tuple[float, float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    out.sort()
    return statistics.median(out), out[min(len(out) - 1, int(0.95 * len(out)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--load", action="store_true", help="time the demo loader again (renames existing demo rows)")
    ap.add_argument("-n", type=int, default=100)
    a = ap.parse_args()
    engine = make_engine(a.url)
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    today = local_date(utcnow())
    if a.load:
        from onetrip.demo.referral import load_referrals

        with factory() as s:
            s.execute(update(Referral).where(Referral.source == "demo").values(source="demo-old"))
            s.commit()
            t, c = time.perf_counter(), time.process_time()
            out = load_referrals(s, 4242, today)  # another seed: the demo ids are seeded
            s.commit()
            print(f"load_referrals: {out} wall {time.perf_counter() - t:.1f} s, CPU {time.process_time() - c:.1f} s")
    with factory() as s:
        total = s.scalar(select(Referral.id).limit(1)) and s.query(Referral).count()
        lead = s.scalar(select(Organization).where(Organization.code == "LH1"))
        op = cli_principal()
        now = utcnow()
        print(f"referrals in the database: {total:,}")
        f = repo.WorklistFilter(box="incoming")
        p50, p95 = timed(lambda: repo.worklist(s, lead.id, f, now, limit=30), a.n)
        print(f"worklist (LH1 incoming, open, page of 30): p50 {p50:.1f} ms, p95 {p95:.1f} ms")
        f_all = repo.WorklistFilter(box="incoming", status=["completed"])
        p50, p95 = timed(lambda: repo.worklist(s, lead.id, f_all, now, limit=30), a.n)
        print(f"worklist (LH1 incoming, completed, page of 30 + total): p50 {p50:.1f} ms, p95 {p95:.1f} ms")
        p50, p95 = timed(lambda: repo.badges(s, lead.id, now, today), a.n)
        print(f"badges: p50 {p50:.1f} ms, p95 {p95:.1f} ms")
        start = today - dt.timedelta(days=364)
        p50, p95 = timed(lambda: figures.compute(s, op, organization_id=None, start=start, end=today),
                         max(5, a.n // 10))
        print(f"figures (a year, all institutions, with YoY): p50 {p50:.1f} ms, p95 {p95:.1f} ms")
        r = s.scalar(select(Referral).where(Referral.to_organization_id == lead.id, Referral.status == "completed")
                     .order_by(Referral.submitted_at.desc()).limit(1))
        p50, p95 = timed(lambda: package.to_bundle(s, package.assemble(s, op, r)), max(5, a.n // 5))
        print(f"package → validated FHIR Bundle: p50 {p50:.1f} ms, p95 {p95:.1f} ms")
        s.rollback()  # the reads' audit rows are not kept


if __name__ == "__main__":
    main()
