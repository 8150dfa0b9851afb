"""Coverage benchmark (issue 20 point 6): 及时接种率 / 累计接种率 for 100,000 children under seven.

    .venv/bin/python bench/bench_immunization_coverage.py                     # 100,000 children, SQLite file
    .venv/bin/python bench/bench_immunization_coverage.py --children 20000 --no-db

Method (a repeated request is served from coverage_service's cache after one data-version check, also timed).
Children born 2019-01-16 .. 2026-01-15 (under seven on the assessment date 2026-01-15) in 12 townships
(3 % without one), with the histories of bench_immunization_forecast.py (doses from the minimum age plus 0-45
days, 4 % missed, ending that series). Timed: (1) the pure functions (``coverage.coverage`` over the rows, every
default dose); (2) unless --no-db, what a cockpit request costs on a database: the ONE query of
``repository.coverage_children`` (persons outer-joined to their doses, grouped in Python) plus (1). The database
is a temporary SQLite file holding only the two tables (filled first, not timed). Writes
bench/results/immunization-coverage-<children>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from bench_immunization_forecast import history  # noqa: E402

from onetrip.immunization import coverage as cov  # noqa: E402
from onetrip.immunization.forecast import Schedule  # noqa: E402
from onetrip.immunization.schedule import load_seed  # noqa: E402

ASSESSED = dt.date(2026, 1, 15)
FIRST = dt.date(2019, 1, 16)
TOWNS = [f"第{i}镇" for i in range(1, 13)]


def children(n: int, seed: int, sched: Schedule) -> list[cov.ChildRow]:
    rng = random.Random(seed)
    span = (ASSESSED - FIRST).days
    out = []
    for _ in range(n):
        birth = FIRST + dt.timedelta(days=rng.randint(0, span - 1))
        town = None if rng.random() < 0.03 else rng.choice(TOWNS)
        out.append(cov.ChildRow(birth, town, tuple(history(rng, sched, birth, rng.choice(("female", "male"))))))
    return out


def db_run(rows: list[cov.ChildRow], targets: list[cov.Target]) -> dict:
    from sqlalchemy import create_engine, insert
    from sqlalchemy.orm import Session

    import onetrip.schema  # noqa: F401 — every table, so the foreign keys resolve
    from onetrip.immunization import repository
    from onetrip.immunization.models import Vaccination
    from onetrip.kit.clock import local_datetime
    from onetrip.persons.models import Person

    path = Path(tempfile.mkdtemp()) / "coverage.db"
    engine = create_engine(f"sqlite:///{path}")
    Person.metadata.create_all(engine, tables=[Person.__table__, Vaccination.__table__])
    now = dt.datetime.now(dt.UTC)
    t0 = time.perf_counter()
    with Session(engine) as s:
        persons, doses = [], []
        for i, r in enumerate(rows):
            pid = uuid.UUID(int=i + 1).hex
            persons.append({"id": pid, "name": "儿童", "name_pinyin": "er tong", "sex": "1", "birth_date": r.birth,
                            "street": r.township, "deceased": False, "created_at": now, "updated_at": now,
                            "version_id": 1})
            for j, d in enumerate(r.doses):
                doses.append({"id": uuid.UUID(int=(i + 1) << 32 | j).hex, "person_id": pid, "patient_record_id": pid,
                              "organization_id": "clinic", "vaccine_code": d.vaccine, "dose_number": 1,
                              "occurred_at": local_datetime(d.date, "09:30"), "status": "completed",
                              "created_at": now, "updated_at": now})
        s.execute(insert(Person.__table__), persons)
        for k in range(0, len(doses), 50_000):
            s.execute(insert(Vaccination.__table__), doses[k:k + 50_000])
        s.commit()
    fill = time.perf_counter() - t0
    with Session(engine) as s:
        t0 = time.perf_counter()
        read = repository.coverage_children(s, FIRST, ASSESSED, sorted({c for t in targets for c in t.codes}))
        q = time.perf_counter() - t0
        cells = cov.coverage(read, targets, ASSESSED)
        total = time.perf_counter() - t0
        t0 = time.perf_counter()  # what a cached request costs: the data-version check of coverage_service
        repository.coverage_version(s)
        version = time.perf_counter() - t0
    engine.dispose()
    path.unlink()
    return {"fill_s": round(fill, 2), "query_and_group_s": round(q, 2), "request_s": round(total, 2),
            "cached_request_s": round(version, 3), "cells": len(cells)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--children", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=20)
    ap.add_argument("--no-db", action="store_true", help="time the pure functions only")
    args = ap.parse_args()
    sched = Schedule(load_seed())
    rows = children(args.children, args.seed, sched)
    targets = cov.targets(sched.rows, ASSESSED)
    t0 = time.perf_counter()
    cells = cov.coverage(rows, targets, ASSESSED)
    pure = time.perf_counter() - t0
    result = {"children": args.children, "doses": sum(len(r.doses) for r in rows), "seed": args.seed,
              "assessed": ASSESSED.isoformat(), "dose_keys": [t.key for t in targets], "cells": len(cells),
              "pure_s": round(pure, 2), "python": platform.python_version(), "cpus": os.cpu_count()}
    if not args.no_db:
        result["sqlite"] = db_run(rows, targets)
    out = ROOT / "bench" / "results" / f"immunization-coverage-{args.children}.json"
    out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    print(f"{args.children:,} children ({result['doses']:,} doses): pure functions {pure:.2f} s"
          + (f"; SQLite request (one query + grouping + rates) {result['sqlite']['request_s']:.2f} s, "
             f"repeated (cache hit: the data-version check) {result['sqlite']['cached_request_s']:.3f} s"
             if "sqlite" in result else ""))


if __name__ == "__main__":
    main()
