"""Vaccination desk benchmark (issue 20 acceptance: the desk's scan-to-verdict p95 <= 100 ms).

    .venv/bin/python bench/bench_vaccination_desk.py                       # fresh SQLite file, 300 children
    .venv/bin/python bench/bench_vaccination_desk.py --children 500 --url postgresql+psycopg://.../empty_db

Method. In process: the real ASGI app (``create_app``) driven by Starlette's TestClient — the whole HTTP stack
(routing, bearer-token auth, scope check, pydantic, JSON) without a socket — against a database migrated here
(a fresh SQLite file by default, or ``--url``: an empty database to migrate). Set-up (not timed): the rule
values and the schedule seeded, one clinic, a vaccinator signed in, one HepB lot with one single-dose package
per child received through the inbound API, and the children registered (2-3 months old: HepB dose 1 due).
Timed, sequentially, per child: the scan-to-verdict ``POST /api/immunization/desk/check`` (the audited patient
read, today's forecast over the recorded doses, the package lookup and every R6.5 check), then the record
``POST /api/immunization/desk/vaccinations`` (the checks again, the conditional dose UPDATE, the R6.6 record,
the audit). Prints p50 / p95 / max ms of each and writes bench/results/vaccination-desk-<db>-<children>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy.orm import sessionmaker  # noqa: E402

from onetrip import schema  # noqa: E402,F401 — registers every table
from onetrip.app import create_app  # noqa: E402
from onetrip.auth.service import create_user  # noqa: E402
from onetrip.config import Settings  # noqa: E402
from onetrip.db.migrate import upgrade  # noqa: E402
from onetrip.db.session import make_engine  # noqa: E402
from onetrip.identity import service as identity  # noqa: E402
from onetrip.identity.schemas import PatientInput  # noqa: E402
from onetrip.immunization.service import seed_schedule  # noqa: E402
from onetrip.kit import clock  # noqa: E402
from onetrip.kit.identifiers import make_uscc  # noqa: E402
from onetrip.kit.principal import cli_principal  # noqa: E402
from onetrip.registry import service as registry  # noqa: E402
from onetrip.registry.models import MedicalCommunity  # noqa: E402
from onetrip.rules.service import seed_rules  # noqa: E402

PASSWORD = "Kestrel-Quay-2026!"
NO = {"fever": False, "allergy": False, "immune": False, "neuro": False, "reaction": False}


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(p * len(s)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--children", type=int, default=300)
    ap.add_argument("--url", default=None, help="an empty database to migrate (default: a fresh SQLite file)")
    a = ap.parse_args()
    url = a.url or f"sqlite:///{tempfile.mkdtemp(prefix='desk-bench-')}/desk.db"
    upgrade(url)
    engine = make_engine(url)
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    op = cli_principal()
    today = clock.local_date(clock.utcnow())
    with factory() as s:
        seed_rules(s)
        seed_schedule(s)
        mc = MedicalCommunity(code="MCB", name="基准医共体")
        s.add(mc)
        s.flush()
        org = registry.create_organization(s, op, code="VACB", name="基准接种门诊", org_type="branch_centre",
                                           grade="1A", uscc=make_uscc("12330000000000001"), community_id=mc.id)
        create_user(s, "vacbench", PASSWORD, ["vaccinator"], "基准接种员", org.id)
        kids = [identity.register(s, op, PatientInput(
            organization_id=org.id, mrn=f"B{i:07d}", name=f"儿童{i}", sex="1" if i % 2 else "2",
            birth_date=today - dt.timedelta(days=60 + i % 30))).id for i in range(a.children)]
        s.commit()
    app = create_app(Settings(database_url=url), factory=factory)
    with TestClient(app) as client:
        r = client.post("/auth/token", data={"grant_type": "password", "username": "vacbench", "password": PASSWORD})
        r.raise_for_status()
        hdr = {"Authorization": f"Bearer {r.json()['access_token']}"}
        codes = [f"7{i:019d}" for i in range(a.children)]
        r = client.post("/api/immunization/inbound", headers=hdr, json={
            "organization_id": org.id, "vaccine_code": "HepB", "product_name": "乙肝疫苗 10μg", "holder": "示例生物",
            "specification": "0.5 mL/支", "doses_per_package": 1, "lot_number": "BENCH-1",
            "expiry": (today + dt.timedelta(days=365)).isoformat(), "trace_codes": codes})
        r.raise_for_status()
        check_ms, record_ms = [], []
        for kid, code in zip(kids, codes, strict=True):
            body = {"patient_id": f"ONETRIP-IMM:{kid}", "trace_code": code, "answers": NO}
            t = time.perf_counter()
            r = client.post("/api/immunization/desk/check", headers=hdr, json=body)
            check_ms.append((time.perf_counter() - t) * 1000)
            assert r.status_code == 200 and r.json()["ok"], r.text
            t = time.perf_counter()
            r = client.post("/api/immunization/desk/vaccinations", headers=hdr,
                            json={**body, "site": "right-thigh", "route": "IM"})
            record_ms.append((time.perf_counter() - t) * 1000)
            assert r.status_code == 201, r.text
    kind = url.split(":", 1)[0].split("+")[0]
    out = {"children": a.children, "database": kind, "mode": "in-process ASGI (TestClient), sequential",
           "check_p50_ms": round(statistics.median(check_ms), 1), "check_p95_ms": round(pct(check_ms, 0.95), 1),
           "check_max_ms": round(max(check_ms), 1), "record_p50_ms": round(statistics.median(record_ms), 1),
           "record_p95_ms": round(pct(record_ms, 0.95), 1), "record_max_ms": round(max(record_ms), 1),
           "python": platform.python_version(), "cpus": os.cpu_count()}
    print(json.dumps(out, indent=1))
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / f"vaccination-desk-{kind}-{a.children}.json").write_text(json.dumps(out, indent=1))
    print("PASS" if out["check_p95_ms"] <= 100 else "FAIL", "scan-to-verdict p95 <= 100 ms")


if __name__ == "__main__":
    main()
