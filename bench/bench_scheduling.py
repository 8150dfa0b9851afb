"""Scheduling benchmarks (issue 5). Not part of the test run.

1. itinerary — a synthetic fortnight of slots over a county's sites (a lead hospital, two district
   hospitals, three branch centres; issue 17); N patients (default 2,000) with 1–4 exams each, each
   ordered at one site, arrive one after another. Each is booked three times, on three copies of the
   capacity: by the itinerary (CP-SAT with greedy fallback; preferred sites: ordering + lead hospital),
   by first-available (each exam's earliest place anywhere) and by first-available at the ordering site
   (elsewhere only for an exam it does not offer). A trip is a (day, site) pair. Reports trips per
   (multi-exam) patient, the one-trip share where one site offers all the exams, minutes on site, rule
   violations (I1–I6, S1, S2), solve p50/p95.
2. booking — throughput of concurrent bookings through the service on PostgreSQL (or SQLite): W worker
   threads, each with its own session per booking, race over slots with a few places each; reports
   bookings/s and checks no slot is over-booked, every success has exactly one row, one audit event,
   one care relationship and one outbox event, and the audit chains verify. Reports the load average
   before and after (the machine is shared).

    .venv/bin/python bench/bench_scheduling.py itinerary --patients 2000
    .venv/bin/python bench/bench_scheduling.py booking --url postgresql://postgres@127.0.0.1:5432/bench_sched
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import statistics
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

from onetrip.kit.clock import local_datetime
from onetrip.scheduling import itinerary, rules
from onetrip.scheduling.calendar import template_weekday
from onetrip.scheduling.itinerary import Candidate
from onetrip.scheduling.rules import Exam, Placed, RuleParams, SiteInfo

CATALOGUE = {e["code"]: e for e in json.loads(
    (Path(__file__).parents[1] / "src/onetrip/db/seeds/exam_catalogue.json").read_text("utf-8"))}
# A county (issue 17: trips are (day, site) pairs): site → modality → devices, sized so a fortnight's
# places are ~1.3× the demand of 2,000 patients. The lead hospital has everything; the two district
# hospitals most; the branch centres ultrasound and X-ray. Coordinates (km grid → degrees) for S2.
SITES: dict[str, dict[str, int]] = {
    "LEAD": {"CT": 3, "US": 3, "DX": 1, "MR": 2, "ES": 2, "RF": 1, "CLINIC": 1},
    "DH1": {"CT": 2, "US": 1, "DX": 1, "MR": 1, "ES": 1},
    "DH2": {"CT": 1, "US": 1, "DX": 1},
    "BC1": {"US": 1, "DX": 1}, "BC2": {"US": 1, "DX": 1}, "BC3": {"US": 1, "DX": 1},
}
SITE_XY = {"LEAD": (0, 0), "DH1": (12, 3), "DH2": (-8, 10), "BC1": (15, -10), "BC2": (-20, -5), "BC3": (5, 25)}
ORDERING = [("LEAD", 40), ("DH1", 15), ("DH2", 15), ("BC1", 10), ("BC2", 10), ("BC3", 10)]
MINUTES = {"CT": 20, "US": 15, "DX": 10, "MR": 30, "ES": 30, "RF": 20, "CLINIC": 10}
EXAM_MIX = [("CT_HEAD", 8), ("CT_CHEST", 10), ("CT_ABD_C", 5), ("CTA_COR", 2), ("US_ABD", 14), ("US_THY", 8),
            ("US_PELVIS", 8), ("DR_CHEST", 20), ("MR_HEAD", 4), ("MR_LSPINE", 4), ("ES_GASTRO", 5),
            ("ES_COLON", 3), ("RF_BARIUM", 4), ("CLINIC_IM", 5)]
BLOCKS = (("08:00", "11:30"), ("13:30", "17:00"))


def site_infos() -> dict[str, SiteInfo]:
    return {k: SiteInfo(k, k, k, 29.87 + y / 111.0, 121.55 + x / 96.0) for k, (x, y) in SITE_XY.items()}


def make_slots(start: dt.date, days: int) -> dict[str, list[list]]:
    """modality → [[slot_id, start, end, free, site]] (mutable free places)."""
    out: dict[str, list[list]] = defaultdict(list)
    for i in range(days):
        day = start + dt.timedelta(days=i)
        if template_weekday(day) not in (0, 1, 2, 3, 4):
            continue
        for site, devices in SITES.items():
            for modality, n in devices.items():
                minutes = MINUTES[modality]
                for dev in range(n):
                    for a, b in BLOCKS:
                        t, end = local_datetime(day, a), local_datetime(day, b)
                        while t + dt.timedelta(minutes=minutes) <= end:
                            out[modality].append([f"{site}-{modality}{dev}-{t:%m%d%H%M}", t,
                                                  t + dt.timedelta(minutes=minutes), 1, site])
                            t += dt.timedelta(minutes=minutes)
    return out


def patients(n: int, seed: int) -> list[tuple[str, list[Exam]]]:
    """(ordering site, exams) per patient."""
    rng = random.Random(seed)
    codes, weights = zip(*EXAM_MIX, strict=True)
    osites, oweights = zip(*ORDERING, strict=True)
    out = []
    for p in range(n):
        k = rng.choices([1, 2, 3, 4], weights=[35, 35, 20, 10])[0]
        chosen: list[str] = []
        while len(chosen) < k:
            c = rng.choices(codes, weights=weights)[0]
            if c not in chosen:
                chosen.append(c)
        out.append((rng.choices(osites, weights=oweights)[0],
                    [Exam(f"p{p}e{i}", c, CATALOGUE[c]["duration_minutes"], frozenset(CATALOGUE[c]["tags"]))
                     for i, c in enumerate(chosen)]))
    return out


def candidates_for(exams: list[Exam], slots: dict[str, list[list]],
                   sites: set[str] | None = None) -> dict[str, list[Candidate]]:
    """Free slots per exam; with ``sites``, those sites' — and, for an exam none of them offers, any
    site's (as service.propose_itinerary does)."""
    out = {}
    for e in exams:
        every = [Candidate(s[0], s[1], s[2], s[0].rsplit("-", 1)[0], s[4], s[3], s[4])
                 for s in slots[CATALOGUE[e.code]["modality"]] if s[3] > 0]
        near = [c for c in every if sites is None or c.site_key in sites]
        out[e.key] = near or every
    return out


def offers(site: str, exams: list[Exam]) -> bool:
    return all(SITES[site].get(CATALOGUE[e.code]["modality"], 0) > 0 for e in exams)


def take(slots: dict[str, list[list]], exams: list[Exam], chosen: dict[str, Candidate]) -> None:
    index = {s[0]: s for ss in slots.values() for s in ss}
    for e in exams:
        if e.key in chosen:
            index[chosen[e.key].slot_id][3] -= 1


def bench_itinerary(n: int, seed: int, time_limit_ms: int) -> dict:
    start = dt.date(2026, 12, 7)  # a Monday; two weeks with no holiday
    p = RuleParams()
    infos = site_infos()
    names = ("itinerary", "first_available", "first_available_ordering_site")
    slots = {name: make_slots(start, 14) for name in names}
    stats = {name: defaultdict(list) for name in names}
    solve_ms, solvers = [], defaultdict(int)
    unplaced_why: dict[str, int] = defaultdict(int)
    for ordering, exams in patients(n, seed):
        preferred = frozenset({ordering, "LEAD"})
        prop = itinerary.plan(exams, candidates_for(exams, slots["itinerary"], set(preferred)), p,
                              time_limit_ms=time_limit_ms, sites=infos, preferred=preferred, horizon_days=14)
        solve_ms.append(prop.solve_ms)
        solvers[prop.solver + "/" + prop.status] += 1
        if not prop.placements:
            unplaced_why[(prop.reasons[0]["rule"] if prop.reasons else "?") + " " +
                          ",".join(sorted(e.code for e in exams))] += 1
        chosen_by = {
            "itinerary": prop.placements,
            "first_available": itinerary.first_available(exams, candidates_for(exams, slots["first_available"])),
            "first_available_ordering_site": itinerary.first_available(
                exams, candidates_for(exams, slots["first_available_ordering_site"], {ordering})),
        }
        one_site_offers_all = any(offers(site, exams) for site in SITES)
        for name, chosen in chosen_by.items():
            take(slots[name], exams, chosen)
            s = stats[name]
            if len(chosen) < len(exams):
                s["unplaced"].append(len(exams) - len(chosen))
                continue
            trips, onsite = itinerary.measure(chosen)
            placed = [Placed(e.key, e.tags, chosen[e.key].start, chosen[e.key].end, chosen[e.key].site_key)
                      for e in exams]
            broken = rules.violations(placed, p, sites=infos)
            s["trips"].append(trips)
            s["onsite"].append(onsite)
            s["violations"].append(len(broken))
            s["violating_patients"].append(1 if broken else 0)
            s["exams"].append(len(exams))
            s["one_site_offers_all"].append(one_site_offers_all)
    out: dict = {"patients": n, "seed": seed, "time_limit_ms": time_limit_ms, "sites": SITES,
                 "solvers": dict(solvers),
                 "unplaced_why": dict(sorted(unplaced_why.items(), key=lambda kv: -kv[1])[:15])}
    for name, s in stats.items():
        multi = [(t, o) for t, k, o in zip(s["trips"], s["exams"], s["one_site_offers_all"], strict=True) if k > 1]
        offered = [t for t, o in multi if o]
        out[name] = {
            "placed_patients": len(s["trips"]), "unplaced_patients": len(s["unplaced"]),
            "trips_per_patient": round(statistics.mean(s["trips"]), 3),
            "trips_per_patient_multi_exam": round(statistics.mean(t for t, _ in multi), 3),
            "one_trip_share_multi_exam_one_site_offers_all": round(sum(t == 1 for t in offered) / len(offered), 3),
            "minutes_on_site_per_trip": round(sum(s["onsite"]) / max(sum(s["trips"]), 1), 1),
            "rule_violations": sum(s["violations"]), "patients_with_violation": sum(s["violating_patients"]),
        }
    q = statistics.quantiles(solve_ms, n=100)
    out["solve_ms"] = {"p50": round(q[49], 1), "p95": round(q[94], 1), "max": round(max(solve_ms), 1)}
    it = out["itinerary"]["trips_per_patient_multi_exam"]
    for base in ("first_available", "first_available_ordering_site"):
        gr = out[base]["trips_per_patient_multi_exam"]
        out[f"fewer_trips_multi_exam_pct_vs_{base}"] = round(100 * (gr - it) / gr, 1)
    return out


def _book_all(url: str, jobs: list[tuple[str, str]], threads: int, pool_size: int | None = None) -> dict:
    """Book ``jobs`` (slot, patient) with ``threads`` threads, each booking its own session/transaction,
    on an engine made as the server makes it (``pool_size``: None = the server's default)."""
    from sqlalchemy.orm import sessionmaker

    from onetrip.db.session import make_engine
    from onetrip.kit.errors import Conflict
    from onetrip.kit.principal import cli_principal
    from onetrip.scheduling import service

    engine = make_engine(url, pool_size=pool_size)
    backends = _track_backends(engine)
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    op = cli_principal("bench")
    lock, out = threading.Lock(), {"ok": 0, "conflicts": 0, "errors": []}
    it = iter(jobs)

    def worker():
        while True:
            with lock:
                job = next(it, None)
            if job is None:
                return
            with factory() as s:
                try:
                    service.book(s, op, slot_id=job[0], patient_record_id=job[1], exam_code="CT_HEAD", channel="app")
                    s.commit()
                    with lock:
                        out["ok"] += 1
                except Conflict:
                    s.rollback()
                    with lock:
                        out["conflicts"] += 1
                except Exception as e:  # noqa: BLE001 — counted and reported
                    s.rollback()
                    out["errors"].append(repr(e)[:200])

    out["pool_size"] = engine.pool.size() if engine.dialect.name == "postgresql" else None
    out["start"] = time.time()
    cpu0 = time.process_time()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    out["end"] = time.time()
    out["client_cpu_s"] = time.process_time() - cpu0
    out["server_cpu_s"] = _backend_cpu_seconds(engine, backends)
    engine.dispose()
    return out


def _proc_cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _track_backends(engine) -> dict[int, float | None]:
    """PostgreSQL on this machine: the CPU time of every backend this engine starts, read when the
    pool closes it and at the end (``_backend_cpu_seconds``)."""
    from sqlalchemy import event

    seen: dict[int, float | None] = {}
    if engine.dialect.name != "postgresql":
        return seen

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, record):
        seen[dbapi_conn.info.backend_pid] = 0.0
        record.info["backend_pid"] = dbapi_conn.info.backend_pid

    @event.listens_for(engine, "close")
    def _close(dbapi_conn, record):
        pid = record.info.get("backend_pid")
        if pid is not None:
            seen[pid] = _proc_cpu_seconds(pid)

    return seen


def _backend_cpu_seconds(engine, seen: dict[int, float | None]) -> float | None:
    if engine.dialect.name != "postgresql" or not seen:
        return None
    for pid in list(seen):
        now = _proc_cpu_seconds(pid)
        if now is not None:
            seen[pid] = now
    return None if any(v is None for v in seen.values()) else sum(v or 0.0 for v in seen.values())


def bench_booking(url: str, workers: int, bookings: int, capacity: int, processes: int = 1,
                  extra: int = 2, pool_size: int | None = None) -> dict:
    """Concurrent bookings through service.book on a fresh database at ``url``."""
    from sqlalchemy import func, select, text
    from sqlalchemy.orm import sessionmaker

    from onetrip.access.models import CareRelationship
    from onetrip.audit import service as audit
    from onetrip.audit.models import AuditEvent
    from onetrip.db.migrate import upgrade
    from onetrip.db.session import make_engine
    from onetrip.identity import service as identity
    from onetrip.identity.schemas import PatientInput
    from onetrip.kit.identifiers import make_resident_id
    from onetrip.kit.principal import cli_principal
    from onetrip.outbox.models import OutboxEvent
    from onetrip.registry import service as registry
    from onetrip.rules.service import seed_rules
    from onetrip.scheduling import repository as repo
    from onetrip.scheduling import service, tasks
    from onetrip.scheduling.models import Appointment, Slot

    if url.startswith("postgresql"):
        admin = make_engine(url.rsplit("/", 1)[0] + "/postgres").execution_options(isolation_level="AUTOCOMMIT")
        name = url.rsplit("/", 1)[1]
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            c.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
    upgrade(url)
    engine = make_engine(url)
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    op = cli_principal("bench")
    with factory() as s:
        seed_rules(s)
        service.seed_catalogue(s)
        org = registry.create_organization(s, op, code="BENCH", name="压测医院", org_type="lead_hospital")
        r = service.create_resource(s, op, organization_id=org.id, code="CT1", name="CT", kind="device",
                                    modality="CT", exam_codes=["CT_HEAD"])
        for wd in range(7):
            service.add_template(s, op, r.id, weekday=wd, start_time="08:00", end_time="17:00", slot_minutes=5,
                                 capacity=capacity, reserved_share=0)
        tasks.generate_slots(s, start=dt.date.today() + dt.timedelta(days=1), days=30)
        pids = [identity.register(s, op, PatientInput(organization_id=org.id, mrn=f"B{i:06d}", name="压测",
                                                      id_number=make_resident_id("330281", dt.date(1980, 1, 1)
                                                                                 + dt.timedelta(days=i), 1)))
                .id for i in range(bookings)]
        slot_ids = [x.id for x in repo.slots(s, resource_ids=[r.id], limit=100_000)]
        s.commit()
    # Each slot gets capacity + extra attempts (default 2): some must fail; nothing may over-book.
    attempts = [(slot_ids[i // (capacity + extra)], pids[i]) for i in range(bookings)]
    engine.dispose()  # forked workers make their own connections
    load_before = [round(x, 2) for x in os.getloadavg()]  # the machine is shared: say how busy it was
    shares = [attempts[i::processes] for i in range(processes)]  # a slot's attempts spread over processes
    if processes == 1:
        results = [_book_all(url, shares[0], workers, pool_size)]
    else:
        import multiprocessing

        with multiprocessing.get_context("fork").Pool(processes) as pool:
            results = pool.starmap(_book_all, [(url, share, max(1, workers // processes), pool_size)
                                                 for share in shares])
    ok = [sum(r["ok"] for r in results)]
    conflicts = [sum(r["conflicts"] for r in results)]
    errors = [e for r in results for e in r["errors"]]
    elapsed = max(r["end"] for r in results) - min(r["start"] for r in results)
    client_cpu = sum(r["client_cpu_s"] for r in results)
    server_cpu = None if any(r["server_cpu_s"] is None for r in results) else sum(r["server_cpu_s"] for r in results)
    load_after = [round(x, 2) for x in os.getloadavg()]
    with factory() as s:
        over = s.scalar(select(func.count()).select_from(Slot).where(Slot.booked > Slot.capacity))
        rows = s.scalar(select(func.count()).select_from(Appointment))
        mismatched = s.scalar(select(func.count()).select_from(Slot).where(
            Slot.booked != select(func.count()).where(Appointment.slot_id == Slot.id).scalar_subquery()))
        # one audit event, care relationship and outbox event per booking, and the chains intact
        booking_audits = s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.subtype == "create", AuditEvent.entity_what.like("Appointment/%")))
        cares = s.scalar(select(func.count()).select_from(CareRelationship).where(
            CareRelationship.kind == "appointment"))
        outbox = s.scalar(select(func.count()).select_from(OutboxEvent).where(
            OutboxEvent.event_type == "appointment.booked"))
        chains = s.scalar(select(func.count(func.distinct(AuditEvent.chain))).where(
            AuditEvent.entity_what.like("Appointment/%")))
        checked, problems = audit.verify(s)
    engine.dispose()
    return {"database": url.split(":")[0], "processes": processes, "workers": workers,
            "pool_size_per_process": results[0]["pool_size"], "attempts": bookings,
            "capacity": capacity, "attempts_per_slot": capacity + extra,
            "booked": ok[0], "conflicts_409": conflicts[0], "errors": len(errors), "error_sample": errors[:3],
            "seconds": round(elapsed, 2), "bookings_per_s": round(ok[0] / elapsed, 1),
            "attempts_per_s": round(bookings / elapsed, 1), "over_booked_slots": over,
            "appointment_rows": rows, "slots_whose_count_differs_from_rows": mismatched,
            "booking_audit_events": booking_audits, "care_relationships": cares, "outbox_events": outbox,
            "audit_chains_used": chains, "audit_rows_verified": checked, "audit_problems": len(problems),
            "load_average_before": load_before, "load_average_after": load_after,
            # CPU per attempt (client = the booking processes, server = their PostgreSQL backends): what
            # a booking costs, much less dependent on the shared machine's load than the rate; 2 cores / that
            # = the CPU-bound ceiling.
            "client_cpu_ms_per_attempt": round(1000 * client_cpu / bookings, 3),
            "server_cpu_ms_per_attempt": round(1000 * server_cpu / bookings, 3) if server_cpu is not None else None,
            "ceiling_bookings_per_s_on_2_idle_cores": round(2 * ok[0] / (client_cpu + server_cpu), 1)
            if server_cpu else None}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("itinerary")
    a.add_argument("--patients", type=int, default=2000)
    a.add_argument("--seed", type=int, default=5)
    a.add_argument("--time-limit-ms", type=int, default=250)
    b = sub.add_parser("booking")
    b.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/onetrip_bench_sched")
    b.add_argument("--workers", type=int, default=50)
    b.add_argument("--bookings", type=int, default=3000)
    b.add_argument("--capacity", type=int, default=3)
    b.add_argument("--extra", type=int, default=2, help="attempts per slot beyond its capacity (each gets a 409)")
    b.add_argument("--processes", type=int, default=1, help="worker processes (workers are split among them)")
    b.add_argument("--pool-size", type=int, default=None,
                   help="PostgreSQL connections per process (default: the server's, db.session.default_pool_size)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    if args.cmd == "itinerary":
        result = bench_itinerary(args.patients, args.seed, args.time_limit_ms)
    else:
        result = bench_booking(args.url, args.workers, args.bookings, args.capacity, args.processes, args.extra,
                               args.pool_size)
    text = json.dumps(result, ensure_ascii=False, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
