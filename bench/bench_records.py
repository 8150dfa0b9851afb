"""Shared-results benchmarks (issue 4): ingest over FHIR Bundles and HL7 v2 / MLLP against a raw COPY of the
same rows, and the latency of the timeline and of the order-time recognition check, on PostgreSQL with
≥ 10M observations. Not part of the test run.

    B=".venv/bin/python bench/bench_records.py"
    $B load --residents 300000 --observations 10000000   # a district + 10M observations by COPY (~33 min)
    $B copy --reports 3000                               # raw COPY of the rows the ingest runs send
    $B ingest-fhir --reports 3000 --clients 4            # transaction Bundles through `onetrip serve`
    $B ingest-mllp --reports 3000 --clients 4            # ORU^R01 through the MLLP listener, until stored
    $B timeline --requests 1000
    $B check --requests 1000

Every subcommand works on --url (default postgresql://postgres@127.0.0.1:5432/bench_records) and writes
bench/results/records-<subcommand>.json (with `uptime` before and after: the machine is shared).
The ingest runs and `copy` generate the same reports for the same --seed (a DiagnosticReport with 1-18
Observations each, ~10 on average: chemistry and blood-count panels, lipids, HbA1c, glucose, imaging),
each run with fresh identifiers, so the ratio to COPY compares like with like.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import queue
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import httpx  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

console = Console()
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/bench_records"
ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
LOINC = "http://loinc.org"
LOCAL = "urn:onetrip:cs:local"
V2_0074 = "http://terminology.hl7.org/CodeSystem/v2-0074"
MARK_EXT = "urn:onetrip:sd:recognition-mark"
CHINA_TZ = dt.timezone(dt.timedelta(hours=8))

# analyte: (LOINC, local code, display, unit, low, high, mean, sd)
A = {
    "GLU": ("2345-7", "GLU", "葡萄糖", "mmol/L", 3.9, 6.1, 5.6, 1.2), "ALT": ("1742-6", "ALT", "丙氨酸氨基转移酶", "U/L", 9, 50, 28, 15),
    "AST": ("1920-8", "AST", "天门冬氨酸氨基转移酶", "U/L", 15, 40, 25, 10), "CRE": ("2160-0", "CRE", "肌酐", "umol/L", 57, 111, 80, 20),
    "BUN": ("3094-0", "BUN", "尿素", "mmol/L", 3.1, 8.0, 5.2, 1.5), "TBIL": ("1975-2", "TBIL", "总胆红素", "umol/L", 0, 23, 12, 5),
    "ALB": ("1751-7", "ALB", "白蛋白", "g/L", 40, 55, 45, 4), "TP": ("2885-2", "TP", "总蛋白", "g/L", 65, 85, 72, 5),
    "NA": ("2951-2", "NA", "钠", "mmol/L", 137, 147, 141, 3), "K": ("2823-3", "K", "钾", "mmol/L", 3.5, 5.3, 4.2, 0.4),
    "CL": ("2075-0", "CL", "氯", "mmol/L", 99, 110, 104, 3), "CA": ("17861-6", "CA", "钙", "mmol/L", 2.11, 2.52, 2.3, 0.1),
    "CO2": ("2028-9", "CO2", "二氧化碳", "mmol/L", 22, 29, 25, 2), "ALP": ("6768-6", "ALP", "碱性磷酸酶", "U/L", 45, 125, 80, 25),
    "WBC": ("6690-2", "WBC", "白细胞计数", "10*9/L", 3.5, 9.5, 6.5, 1.8), "RBC": ("789-8", "RBC", "红细胞计数", "10*12/L", 4.3, 5.8, 4.8, 0.5),
    "HGB": ("718-7", "HGB", "血红蛋白", "g/L", 130, 175, 140, 15), "HCT": ("4544-3", "HCT", "红细胞压积", "%", 40, 50, 43, 4),
    "MCV": ("787-2", "MCV", "平均红细胞体积", "fL", 82, 100, 90, 5), "MCH": ("785-6", "MCH", "平均血红蛋白量", "pg", 27, 34, 30, 2),
    "MCHC": ("786-4", "MCHC", "平均血红蛋白浓度", "g/L", 316, 354, 335, 10), "PLT": ("777-3", "PLT", "血小板计数", "10*9/L", 125, 350, 230, 60),
    "RDW": ("788-0", "RDW", "红细胞分布宽度", "%", 11, 16, 13, 1), "MPV": ("32623-1", "MPV", "平均血小板体积", "fL", 7, 13, 10, 1),
    "NEUTP": ("770-8", "NEUT%", "中性粒细胞百分比", "%", 40, 75, 60, 8), "LYMPHP": ("736-9", "LYMPH%", "淋巴细胞百分比", "%", 20, 50, 30, 7),
    "MONOP": ("5905-5", "MONO%", "单核细胞百分比", "%", 3, 10, 6, 2), "EOSP": ("713-8", "EOS%", "嗜酸性粒细胞百分比", "%", 0.4, 8, 2, 1),
    "BASOP": ("706-2", "BASO%", "嗜碱性粒细胞百分比", "%", 0, 1, 0.5, 0.2), "NEUT": ("751-8", "NEUT#", "中性粒细胞计数", "10*9/L", 1.8, 6.3, 4, 1.2),
    "LYMPH": ("731-0", "LYMPH#", "淋巴细胞计数", "10*9/L", 1.1, 3.2, 2, 0.6), "MONO": ("742-7", "MONO#", "单核细胞计数", "10*9/L", 0.1, 0.6, 0.4, 0.1),
    "CHOL": ("2093-3", "CHOL", "总胆固醇", "mmol/L", 0, 5.2, 4.8, 0.9), "TG": ("2571-8", "TG", "甘油三酯", "mmol/L", 0, 1.7, 1.5, 0.6),
    "HDL": ("2085-9", "HDL", "高密度脂蛋白胆固醇", "mmol/L", 1.04, 2.0, 1.3, 0.3), "LDL": ("13457-7", "LDL", "低密度脂蛋白胆固醇", "mmol/L", 0, 3.4, 2.9, 0.7),
    "HBA1C": ("4548-4", "HBA1C", "糖化血红蛋白", "%", 4, 6, 6.2, 1.1),
}  # fmt: skip
# panel: (LOINC, local code, display, v2-0074 category, weight, analytes, conclusion)
PANELS = [
    ("24323-8", "CMP", "综合代谢检查", "CH", 30, ["GLU", "ALT", "AST", "CRE", "BUN", "TBIL", "ALB", "TP", "NA", "K", "CL", "CA",
                                           "CO2", "ALP"], None),
    ("58410-2", "CBC", "血常规", "HM", 30, ["WBC", "RBC", "HGB", "HCT", "MCV", "MCH", "MCHC", "PLT", "RDW", "MPV", "NEUTP",
                                     "LYMPHP", "MONOP", "EOSP", "BASOP", "NEUT", "LYMPH", "MONO"], None),
    ("57698-3", "LIPID", "血脂四项", "CH", 10, ["CHOL", "TG", "HDL", "LDL"], None),
    ("4548-4", "HBA1C", "糖化血红蛋白", "CH", 8, ["HBA1C"], None),
    ("2345-7", "GLU", "葡萄糖", "CH", 8, ["GLU"], None),
    ("24725-4", "CT-HEAD", "头颅CT平扫", "CT", 4, [], "颅内未见明显异常密度影。"),
    ("24627-2", "CT-CHEST", "胸部CT平扫", "CT", 4, [], "双肺纹理清晰，未见实质性病变。"),
    ("36643-5", "XR-CHEST", "胸部X线正侧位", "DX", 4, [], "心肺膈未见明显异常。"),
    (None, "US-ABD", "腹部超声", "RUS", 2, [], "肝胆胰脾未见明显异常。"),
]  # fmt: skip
PANEL_WEIGHTS = [p[4] for p in PANELS]


# ── helpers ──────────────────────────────────────────────────────────────────────────────────────
def sa_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def latency(values: list[float]) -> dict:
    return {"n": len(values), "p50_ms": round(pct(values, 50), 2), "p95_ms": round(pct(values, 95), 2),
            "p99_ms": round(pct(values, 99), 2), "mean_ms": round(statistics.fmean(values), 2),
            "max_ms": round(max(values), 2)}


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=False)


def save(name: str, result: dict) -> None:
    result = {"when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores", "python": platform.python_version(),
              **result}
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"records-{name}.json"
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    console.print_json(json.dumps(result, ensure_ascii=False))
    console.print(f"→ {path.relative_to(ROOT)}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def engine_for(url: str):
    return create_engine(sa_url(url))


def ts(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


# ── synthetic reports (shared by load, copy and the ingest runs) ─────────────────────────────────────
class Gen:
    """Reports with their observations for random patient records; deterministic for a seed."""

    def __init__(self, records: list[tuple[str, str, str, str, str]], seed: int, tag: str,
                 days_back: int = 730) -> None:
        self.records = records  # (record id, person id, organization id, organization code, mrn)
        self.rng = random.Random(seed)
        self.tag = tag
        self.now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        self.days_back = days_back
        self.n = 0

    def report(self) -> dict:
        rng = self.rng
        rec_id, person_id, org_id, org_code, mrn = rng.choice(self.records)
        panel = rng.choices(PANELS, PANEL_WEIGHTS)[0]
        # 10% of results from the last 30 days (so order checks find results within their window)
        back = rng.uniform(0, 30) if rng.random() < 0.1 else rng.uniform(0, self.days_back)
        effective = self.now - dt.timedelta(days=back, seconds=rng.randrange(3600))
        self.n += 1
        obs = []
        for a in panel[5]:
            loinc, local, display, unit, low, high, mean, sd = A[a]
            value = round(max(0.0, rng.gauss(mean, sd)), 2)
            obs.append({"loinc": loinc, "local": local, "display": display, "unit": unit, "low": low, "high": high,
                        "value": value, "interp": "H" if value > high else "L" if value < low else "N"})
        return {"ident": f"{self.tag}{self.n}", "record_id": rec_id, "person_id": person_id, "org_id": org_id,
                "org_code": org_code, "mrn": mrn, "panel": panel, "effective": effective,
                "issued": effective + dt.timedelta(hours=2), "mark": "浙HR" if rng.random() < 0.75 else None,
                "obs": obs}


def fhir_observation(r: dict, o: dict, i: int, subject: dict) -> dict:
    return {"resourceType": "Observation", "status": "final",
            "identifier": [{"system": f"urn:onetrip:bench:{r['org_code']}:lis.obs", "value": f"{r['ident']}-{i}"}],
            "code": {"coding": [{"system": LOINC, "code": o["loinc"], "display": o["display"]},
                                {"system": LOCAL, "code": o["local"]}], "text": o["display"]},
            "subject": subject, "effectiveDateTime": ts(r["effective"]),
            "valueQuantity": {"value": o["value"], "unit": o["unit"], "system": "http://unitsofmeasure.org",
                              "code": o["unit"]},
            "interpretation": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                                            "code": o["interp"]}]}],
            "referenceRange": [{"low": {"value": o["low"]}, "high": {"value": o["high"]}}],
            "performer": [{"reference": f"Organization/{r['org_id']}"}]}


def fhir_report(r: dict, subject: dict, results: list[dict]) -> dict:
    loinc, local, display, cat, _, _, conclusion = r["panel"]
    codings = ([{"system": LOINC, "code": loinc, "display": display}] if loinc else []) + [
        {"system": LOCAL, "code": local}]
    body = {"resourceType": "DiagnosticReport", "status": "final",
            "identifier": [{"system": f"urn:onetrip:bench:{r['org_code']}:lis", "value": r["ident"]}],
            "category": [{"coding": [{"system": V2_0074, "code": cat}]}],
            "code": {"coding": codings, "text": display}, "subject": subject,
            "effectiveDateTime": ts(r["effective"]), "issued": ts(r["issued"]),
            "performer": [{"reference": f"Organization/{r['org_id']}"}]}
    if r["mark"]:
        body["extension"] = [{"url": MARK_EXT, "valueString": r["mark"]}]
    if conclusion:
        body["conclusion"] = conclusion
    if results:
        body["result"] = results
    return body


def transaction_bundle(r: dict) -> dict:
    """What a hospital LIS sends: the report and its observations, the patient by MRN at the sender."""
    subject = {"identifier": {"system": f"urn:onetrip:sid:mrn:{r['org_code']}", "value": r["mrn"]}}
    entries, refs = [], []
    for i, o in enumerate(r["obs"], start=1):
        full = f"urn:uuid:{uuid.UUID(int=random.getrandbits(128))}"
        refs.append({"reference": full})
        entries.append({"fullUrl": full, "resource": fhir_observation(r, o, i, subject),
                        "request": {"method": "POST", "url": "Observation"}})
    entries.append({"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": fhir_report(r, subject, refs),
                    "request": {"method": "POST", "url": "DiagnosticReport"}})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def hl7_ts(value: dt.datetime) -> str:
    return value.astimezone(CHINA_TZ).strftime("%Y%m%d%H%M%S")


def oru_message(r: dict, control_id: str) -> bytes:
    loinc, local, display, cat, _, _, conclusion = r["panel"]
    obr4 = f"{loinc}^{display}^LN^{local}^{display}^L" if loinc else f"{local}^{display}^L"
    segs = [f"MSH|^~\\&|LIS|{r['org_code']}|ONETRIP|ONETRIP|{hl7_ts(r['issued'])}||ORU^R01^ORU_R01|{control_id}|P|2.5.1"
            "||||||UNICODE UTF-8",
            f"PID|1||{r['mrn']}^^^{r['org_code']}^MR",
            f"OBR|1||{r['ident']}|{obr4}|||{hl7_ts(r['effective'])}|||||||||||||||{hl7_ts(r['issued'])}||{cat}|F"]
    for i, o in enumerate(r["obs"], start=1):
        segs.append(f"OBX|{i}|NM|{o['loinc']}^{o['display']}^LN^{o['local']}^{o['display']}^L||{o['value']}|{o['unit']}|"
                    f"{o['low']}-{o['high']}|{o['interp']}|||F|||{hl7_ts(r['effective'])}")
    if conclusion:
        segs.append(f"OBX|{len(r['obs']) + 1}|TX|{local}^{display}^L||{conclusion}||||||F")
    return ("\r".join(segs) + "\r").encode("utf-8")


def load_records_sample(url: str, n: int, seed: int) -> list[tuple[str, str, str, str, str]]:
    """Patient records with their person, organization (id, code) and MRN — the senders' patients."""
    eng = engine_for(url)
    with eng.connect() as c:
        rows = c.execute(text(
            "SELECT r.id, r.person_id, r.organization_id, o.code, r.mrn FROM patient_record AS r "
            "TABLESAMPLE SYSTEM (5) REPEATABLE (:seed) JOIN organization o ON o.id = r.organization_id "
            "WHERE r.deleted_at IS NULL LIMIT :n"), {"n": n, "seed": seed}).all()
    eng.dispose()
    return [tuple(r) for r in rows]


# ── COPY rows ────────────────────────────────────────────────────────────────────────────────────
OBS_COLS = ("id", "created_at", "updated_at", "person_id", "patient_record_id", "organization_id", "identifier_system",
            "identifier_value", "status", "code_local", "code_system", "code", "display", "resource", "report_id",
            "effective_at", "value_quantity", "value_string", "unit", "reference_low", "reference_high",
            "reference_text", "interpretation")
REP_COLS = ("id", "created_at", "updated_at", "person_id", "patient_record_id", "organization_id", "identifier_system",
            "identifier_value", "status", "code_local", "code_system", "code", "display", "resource", "category",
            "section", "effective_at", "issued", "conclusion", "recognition_mark", "service_request_id")
N = "\\N"


def pg_ts(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S+00")


OBS_JSON = ('{"resourceType":"Observation","status":"final","identifier":[{"system":"%s","value":"%s"}],"code":%s,'
            '"subject":{"reference":"Patient/%s"},"effectiveDateTime":"%s","valueQuantity":{"value":%s,"unit":"%s",'
            '"system":"http://unitsofmeasure.org","code":"%s"},"interpretation":[{"coding":[{"system":'
            '"http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation","code":"%s"}]}],"referenceRange":'
            '[{"low":{"value":%s},"high":{"value":%s}}],"performer":[{"reference":"Organization/%s"}]}')
CODE_JSON = {a[0]: json.dumps({"coding": [{"system": LOINC, "code": a[0], "display": a[2]}, {"system": LOCAL, "code": a[1]}],
                                "text": a[2]}, ensure_ascii=False, separators=(",", ":")) for a in A.values()}


def copy_lines(r: dict, now: str) -> tuple[str, list[str]]:
    """(report line, observation lines) in COPY text format: the columns the FHIR ingest would store (the
    resource JSON is the same document ``fhir_observation`` builds, written from a template for speed)."""
    from onetrip.records.rules import classify

    rep_id = uuid.uuid4().hex
    eff = pg_ts(r["effective"])
    eff_fhir = ts(r["effective"])
    system = f"urn:onetrip:bench:{r['org_code']}:lis.obs"
    rec, org = r["record_id"], r["org_id"]
    obs_lines, results = [], []
    for i, o in enumerate(r["obs"], start=1):
        oid = uuid.uuid4().hex
        value = f"{r['ident']}-{i}"
        res = OBS_JSON % (system, value, CODE_JSON[o["loinc"]], rec, eff_fhir, o["value"], o["unit"], o["unit"],
                          o["interp"], o["low"], o["high"], org)
        results.append({"reference": f"Observation/{oid}"})
        obs_lines.append("\t".join((
            oid, now, now, r["person_id"], rec, org, system, value, "final", o["local"], LOINC, o["loinc"],
            o["display"], res, rep_id, eff, str(o["value"]), N, o["unit"], str(o["low"]), str(o["high"]), N,
            o["interp"])))
    loinc, local, display, cat, _, _, conclusion = r["panel"]
    res = fhir_report(r, {"reference": f"Patient/{rec}"}, results)
    category, section = classify([cat])
    rep_line = "\t".join((
        rep_id, now, now, r["person_id"], rec, org, res["identifier"][0]["system"], r["ident"],
        "final", local, LOINC if loinc else N, loinc or N, display, json.dumps(res, ensure_ascii=False, separators=(",", ":")),
        category, section or N, eff, pg_ts(r["issued"]), conclusion or N, r["mark"] or N, N))
    return rep_line, obs_lines


def _chunk(job: tuple) -> tuple[list[str], list[str], int]:
    """One COPY chunk of the bulk load (run in a worker process): reports until ``target`` observations."""
    history, seed, index, target, now = job
    gen = Gen(history, seed * 100_003 + index, f"L{index}-", days_back=730)
    reps, obs = [], []
    while len(obs) < target:
        rep_line, obs_lines = copy_lines(gen.report(), now)
        reps.append(rep_line)
        obs.extend(obs_lines)
    return reps, obs, len(obs)


_HISTORY: list = []


def _init_worker(history: list) -> None:
    _HISTORY[:] = history


def _chunk_in_worker(job: tuple) -> tuple[str, str, int]:
    reps, obs, n = _chunk((_HISTORY, *job))
    return "\n".join(reps) + "\n", "\n".join(obs) + "\n", len(reps)


# ── load ─────────────────────────────────────────────────────────────────────────────────────────
def recreate_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        c.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()


def cmd_load(args) -> None:
    import psycopg
    from sqlalchemy.orm import sessionmaker

    from onetrip.db.migrate import upgrade
    from onetrip.db.session import make_engine
    from onetrip.demo.loader import load_district
    from onetrip.recognition.service import seed_catalogue
    from onetrip.rules.service import seed_rules

    result: dict = {"uptime_before": uptime(), "residents": args.residents, "target_observations": args.observations}
    t0 = time.perf_counter()
    if not args.keep_district:
        recreate_database(args.url)
        upgrade(sa_url(args.url))
        engine = make_engine(args.url)
        factory = sessionmaker(bind=engine, expire_on_commit=False)
        with progress() as bar, factory() as s:
            tasks: dict[str, int] = {}

            def step(name: str, done: int, total: int) -> None:
                if name not in tasks:
                    tasks[name] = bar.add_task(f"district: {name}", total=total)
                bar.update(tasks[name], completed=done, total=total)

            seed_rules(s)
            seed_catalogue(s)
            summary = load_district(s, residents=args.residents, seed=args.seed, progress=step, batch_commit=s.commit)
            s.commit()
        engine.dispose()
        result["district"] = {k: summary[k] for k in ("persons", "patient_records", "organizations")}
        result["district_seconds"] = round(time.perf_counter() - t0, 1)
        with engine_for(args.url).connect() as c:
            c.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))

    eng = engine_for(args.url)
    with eng.connect() as c:
        records = [tuple(r) for r in c.execute(text(
            "SELECT r.id, r.person_id, r.organization_id, o.code, r.mrn FROM patient_record r "
            "JOIN organization o ON o.id = r.organization_id WHERE r.deleted_at IS NULL ORDER BY r.id")).all()]
    eng.dispose()
    rng = random.Random(args.seed)
    history = rng.sample(records, int(len(records) * args.with_history))
    result["records_with_history"] = len(history)

    t1 = time.perf_counter()
    conn = psycopg.connect(args.url, autocommit=False)
    conn.execute("SET maintenance_work_mem = '1GB'")
    conn.execute("SET session_replication_role = replica")  # FK triggers off during the bulk COPY (checked below)
    # Secondary indexes and the primary key of rec_observation are dropped and rebuilt after the COPY.
    defs = [r[0] for r in conn.execute(
        "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE i.indrelid = 'rec_observation'::regclass AND NOT i.indisprimary AND NOT EXISTS "
        "(SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)").fetchall()]
    cons = conn.execute("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = "
                        "'rec_observation'::regclass AND contype IN ('p', 'u')").fetchall()
    idx_names = [d.split(" INDEX ", 1)[1].split(" ON ", 1)[0] for d in defs]
    for name in idx_names:
        conn.execute(f"DROP INDEX {name}")
    for name, _ in cons:
        conn.execute(f"ALTER TABLE rec_observation DROP CONSTRAINT {name}")
    conn.commit()

    now = pg_ts(dt.datetime.now(dt.UTC))
    n_obs = n_rep = 0
    per_chunk = 50_000
    jobs = [(args.seed, i, per_chunk, now) for i in range(-(-args.observations // per_chunk))]
    import multiprocessing

    with progress() as bar, multiprocessing.Pool(args.processes, _init_worker, (history,)) as pool:
        task = bar.add_task("observations (COPY)", total=args.observations)
        for reps, obs, k in pool.imap(_chunk_in_worker, jobs):
            with conn.cursor() as cur:
                with cur.copy(f"COPY rec_diagnostic_report ({', '.join(REP_COLS)}) FROM STDIN") as cp:
                    cp.write(reps)
                with cur.copy(f"COPY rec_observation ({', '.join(OBS_COLS)}) FROM STDIN") as cp:
                    cp.write(obs)
            conn.commit()
            n_obs += obs.count("\n")
            n_rep += k
            bar.update(task, completed=n_obs)
    result["copy_seconds"] = round(time.perf_counter() - t1, 1)
    t2 = time.perf_counter()
    conn.execute("SET session_replication_role = origin")
    with console.status("rebuilding the primary key, unique constraint and indexes of rec_observation …"):
        for name, definition in cons:
            conn.execute(f"ALTER TABLE rec_observation ADD CONSTRAINT {name} {definition}")
            conn.commit()
        for d in defs:
            conn.execute(d)
            conn.commit()
    result["index_seconds"] = round(time.perf_counter() - t2, 1)
    conn.autocommit = True
    with console.status("checking references (the COPY ran without FK triggers) and VACUUM ANALYZE …"):
        orphans = conn.execute(
            "SELECT count(*) FROM rec_observation o LEFT JOIN rec_diagnostic_report r ON r.id = o.report_id "
            "LEFT JOIN patient_record p ON p.id = o.patient_record_id WHERE r.id IS NULL OR p.id IS NULL").fetchone()[0]
        if orphans:
            raise SystemExit(f"{orphans} observations reference a missing report or patient record")
        conn.execute("VACUUM ANALYZE rec_observation")
        conn.execute("VACUUM ANALYZE rec_diagnostic_report")
    sizes = conn.execute("SELECT pg_size_pretty(pg_total_relation_size('rec_observation')), "
                         "pg_size_pretty(pg_total_relation_size('rec_diagnostic_report')), "
                         "pg_size_pretty(pg_database_size(current_database()))").fetchone()
    conn.close()
    result.update({"observations": n_obs, "reports": n_rep, "total_seconds": round(time.perf_counter() - t0, 1),
                   "rows_per_second_copy": round((n_obs + n_rep) / result["copy_seconds"]),
                   "size_rec_observation": sizes[0], "size_rec_diagnostic_report": sizes[1], "size_database": sizes[2],
                   "uptime_after": uptime()})
    save("load", result)


# ── raw COPY of the ingest runs' rows ──────────────────────────────────────────────────────────────
def make_reports(args, tag: str) -> list[dict]:
    records = load_records_sample(args.url, 20_000, args.seed)
    gen = Gen(records, args.seed, tag, days_back=365)
    return [gen.report() for _ in range(args.reports)]


def run_tag(kind: str) -> str:
    return f"{kind}{dt.datetime.now(dt.UTC):%m%d%H%M%S}-"


def cmd_copy(args) -> None:
    import psycopg

    reports = make_reports(args, run_tag("C"))
    now = pg_ts(dt.datetime.now(dt.UTC))
    lines = [copy_lines(r, now) for r in reports]
    n_obs = sum(len(o) for _, o in lines)
    rep_buf = "\n".join(r for r, _ in lines) + "\n"
    obs_buf = "\n".join(x for _, o in lines for x in o) + "\n"
    before = uptime()
    conn = psycopg.connect(args.url)
    t0 = time.perf_counter()
    with conn.cursor() as cur:  # one COPY per table, normal FK checks and every index, then COMMIT
        with cur.copy(f"COPY rec_diagnostic_report ({', '.join(REP_COLS)}) FROM STDIN") as cp:
            cp.write(rep_buf)
        with cur.copy(f"COPY rec_observation ({', '.join(OBS_COLS)}) FROM STDIN") as cp:
            cp.write(obs_buf)
    conn.commit()
    seconds = time.perf_counter() - t0
    after = uptime()
    ids = [r.split("\t", 1)[0] for r, _ in lines]
    with conn.cursor() as cur:  # leave the 10M-row database as it was
        cur.execute("DELETE FROM rec_observation WHERE report_id = ANY(%s)", (ids,))
        cur.execute("DELETE FROM rec_diagnostic_report WHERE id = ANY(%s)", (ids,))
    conn.commit()
    conn.close()
    save(f"copy{args.suffix}", {"uptime_before": before, "reports": len(reports), "observations": n_obs,
                  "seconds": round(seconds, 3), "observations_per_second": round(n_obs / seconds),
                  "reports_per_second": round(len(reports) / seconds), "uptime_after": after})


# ── ingest over FHIR ─────────────────────────────────────────────────────────────────────────────
def _group_cpu(pgid: int) -> float:
    """User + system CPU seconds of every live process of a process group (the server and its uvicorn
    workers), from /proc."""
    tick, total = os.sysconf("SC_CLK_TCK"), 0.0
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                f = Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(f[2]) == pgid:  # field 5 of stat: the process group
                total += (int(f[11]) + int(f[12])) / tick
    return total


class IngestCost:
    """CPU per observation of the server (its process group), of the database's PostgreSQL backends and of
    this client process between ``start`` and ``stop``: on the shared machine these vary much less with
    load than the rate does."""

    _BACKENDS = "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"

    def __init__(self, url: str, pgid: int) -> None:
        self.conn = engine_for(url).connect().execution_options(isolation_level="AUTOCOMMIT")
        self.pgid = pgid

    def _backends(self) -> dict[int, float]:
        tick, out = os.sysconf("SC_CLK_TCK"), {}
        for (pid,) in self.conn.execute(text(self._BACKENDS)):
            try:
                f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            out[pid] = (int(f[11]) + int(f[12])) / tick
        return out

    def start(self) -> None:
        self.before = (_group_cpu(self.pgid), self._backends(), time.process_time())

    def stop(self, n_obs: int) -> dict:
        server, backends, client = _group_cpu(self.pgid), self._backends(), time.process_time()
        self.conn.close()
        pg = sum(v - self.before[1].get(k, 0.0) for k, v in backends.items())  # new backends: all theirs
        us = lambda x: round(x / n_obs * 1e6)  # noqa: E731
        return {"server_us": us(server - self.before[0]), "postgres_us": us(pg),
                "client_us": us(client - self.before[2])}


def make_client(url: str, scopes: str) -> tuple[str, str]:
    from sqlalchemy.orm import sessionmaker

    from onetrip.auth.service import create_client
    from onetrip.db.session import make_engine

    engine = make_engine(url)
    with sessionmaker(bind=engine)() as s:
        client, secret = create_client(s, f"bench {uuid.uuid4().hex[:6]}", scopes)
        s.commit()
        cid = client.client_id
    engine.dispose()
    return cid, secret


class Server:
    """`onetrip serve` in its own process group on a free port."""

    def __init__(self, url: str, workers: int = 1) -> None:
        self.port = free_port()
        env = {**os.environ, "ONETRIP_DATABASE_URL": url}
        self.proc = subprocess.Popen([str(ROOT / ".venv/bin/onetrip"), "serve", "--port", str(self.port),
                                      "--workers", str(workers)], env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        self.base = f"http://127.0.0.1:{self.port}"
        for _ in range(240):
            try:
                if httpx.get(self.base + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.5)
        raise SystemExit("the server did not start")

    def token(self, cid: str, secret: str) -> str:
        r = httpx.post(self.base + "/auth/token", data={"grant_type": "client_credentials", "client_id": cid,
                                                        "client_secret": secret})
        return r.json()["access_token"]

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=30)


def run_threads(n: int, work, items: list, label: str) -> tuple[float, list]:
    q: queue.Queue = queue.Queue()
    for it in items:
        q.put(it)
    out: list = []
    lock = threading.Lock()
    errors: list[str] = []
    with progress() as bar:
        task = bar.add_task(label, total=len(items))

        def loop(k: int) -> None:
            state: dict = {}
            while True:
                try:
                    it = q.get_nowait()
                except queue.Empty:
                    break
                try:
                    r = work(state, k, it)
                except Exception as e:  # noqa: BLE001 — reported after the run
                    with lock:
                        errors.append(f"{type(e).__name__}: {e}"[:500])
                    continue
                with lock:
                    out.append(r)
                bar.advance(task)
            if "close" in state:
                state["close"]()

        threads = [threading.Thread(target=loop, args=(k,)) for k in range(n)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = time.perf_counter() - t0
    if errors:
        raise SystemExit(f"{len(errors)} errors, first: {errors[0]}")
    return seconds, out


def cmd_ingest_fhir(args) -> None:
    reports = make_reports(args, run_tag("F"))
    bodies = [(len(r["obs"]), json.dumps(transaction_bundle(r), ensure_ascii=False).encode()) for r in reports]
    n_obs = sum(n for n, _ in bodies)
    cid, secret = make_client(args.url, "system/DiagnosticReport.c system/Observation.c system/ImagingStudy.c "
                                        "system/ServiceRequest.c system/Patient.c")
    server = Server(args.url, args.workers)
    try:
        tok = server.token(cid, secret)
        headers = {"Authorization": f"Bearer {tok}", "Content-Type": "application/fhir+json"}
        if args.prefer:  # what a sender that keeps only the outcome asks for (FHIR http.html#ops)
            headers["Prefer"] = args.prefer
        warm, bodies = bodies[:args.warmup], bodies[args.warmup:]
        n_obs -= sum(n for n, _ in warm)

        def post(state: dict, k: int, item: tuple[int, bytes]) -> tuple[float, int]:
            if "http" not in state:
                state["http"] = httpx.Client(base_url=server.base, timeout=60)
                state["close"] = state["http"].close
            t = time.perf_counter()
            r = state["http"].post("/fhir/R4", content=item[1], headers=headers)
            ms = (time.perf_counter() - t) * 1000
            if r.status_code != 200:
                raise RuntimeError(f"{r.status_code}: {r.text[:300]}")
            created = sum(1 for e in r.json()["entry"] if e["response"]["status"].startswith("201"))
            if created != item[0] + 1:
                raise RuntimeError(f"{created} created of {item[0] + 1}")
            return ms, item[0]

        run_threads(args.clients, post, warm, "warm-up bundles")
        cost = IngestCost(args.url, server.proc.pid)
        before = uptime()
        cost.start()
        seconds, out = run_threads(args.clients, post, bodies, "transaction Bundles")
        cpu = cost.stop(n_obs)
        after = uptime()
    finally:
        server.stop()
    lat = [ms for ms, _ in out]
    save(f"ingest-fhir{args.suffix}", {
        "uptime_before": before, "uptime_after": after, "server_workers": args.workers, "clients": args.clients,
        "prefer": args.prefer or None,
        "bundles": len(bodies), "observations": n_obs, "entries": n_obs + len(bodies), "seconds": round(seconds, 2),
        "observations_per_second": round(n_obs / seconds), "bundles_per_second": round(len(bodies) / seconds, 1),
        "cpu_per_observation": cpu, "bundle_latency": latency(lat)})


# ── ingest over MLLP ─────────────────────────────────────────────────────────────────────────────
def cmd_ingest_mllp(args) -> None:
    tag = run_tag("M")
    reports = make_reports(args, tag)
    msgs = [(len(r["obs"]), oru_message(r, f"{tag}{i}")) for i, r in enumerate(reports)]
    n_obs = sum(n for n, _ in msgs)
    port = free_port()
    env = {**os.environ, "ONETRIP_DATABASE_URL": args.url}
    proc = subprocess.Popen([str(ROOT / ".venv/bin/python"), "-m", "onetrip.interop.hl7v2.mllp", "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    eng = engine_for(args.url)
    try:
        for _ in range(240):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)

        def send(state: dict, k: int, item: tuple[int, bytes]) -> float:
            if "sock" not in state:
                state["sock"] = socket.create_connection(("127.0.0.1", port), timeout=120)
                state["buf"] = b""
                state["close"] = state["sock"].close
            t = time.perf_counter()
            state["sock"].sendall(b"\x0b" + item[1] + b"\x1c\x0d")
            while b"\x1c\x0d" not in state["buf"]:
                chunk = state["sock"].recv(65536)
                if not chunk:
                    raise ConnectionError("closed")
                state["buf"] += chunk
            frame, state["buf"] = state["buf"].split(b"\x1c\x0d", 1)
            if b"MSA|AA|" not in frame:
                raise RuntimeError(frame.decode(errors="replace")[:300])
            return (time.perf_counter() - t) * 1000

        cost = IngestCost(args.url, proc.pid)
        before = uptime()
        cost.start()
        t0 = time.perf_counter()
        ack_seconds, lat = run_threads(args.clients, send, msgs, "ORU^R01 (until ACK)")
        with progress() as bar:
            task = bar.add_task("handlers (until stored)", total=len(msgs))
            while True:
                with eng.connect() as c:
                    done, failed = c.execute(text(
                        "SELECT count(*) FILTER (WHERE status = 'processed'), count(*) FILTER (WHERE status = 'failed') "
                        "FROM hl7_inbox WHERE control_id LIKE :t"), {"t": tag + "%"}).one()
                bar.update(task, completed=done)
                if failed:
                    raise SystemExit(f"{failed} messages failed in their handler")
                if done >= len(msgs):
                    break
                time.sleep(0.2)
        seconds = time.perf_counter() - t0
        cpu = cost.stop(n_obs)  # the polling above is this process's too: a few ms
        after = uptime()
        with eng.connect() as c:
            stored = c.execute(text("SELECT count(*) FROM rec_observation WHERE identifier_value LIKE :t"),
                               {"t": tag + "%"}).scalar()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        eng.dispose()
    if stored != n_obs:
        raise SystemExit(f"stored {stored} observations of {n_obs}")
    save(f"ingest-mllp{args.suffix}", {
        "uptime_before": before, "uptime_after": after, "clients": args.clients, "messages": len(msgs),
        "observations": n_obs, "seconds_until_acked": round(ack_seconds, 2),
        "seconds_until_stored": round(seconds, 2), "observations_per_second": round(n_obs / seconds),
        "cpu_per_observation": cpu,
        "messages_per_second_acked": round(len(msgs) / ack_seconds, 1), "ack_latency": latency(lat)})


# ── timeline and order check ───────────────────────────────────────────────────────────────────────
def patients_with_history(url: str, n: int, sample_percent: float = 1) -> list[tuple[str, str, str]]:
    """(person, a report's local code, its issuing organization) for random persons with results, from a
    ``sample_percent`` sample of the reports' pages (1 % of the 10M database is enough for 1,100)."""
    eng = engine_for(url)
    with eng.connect() as c:
        rows = c.execute(text(
            "SELECT DISTINCT ON (person_id) person_id, code_local, organization_id FROM rec_diagnostic_report "
            "TABLESAMPLE SYSTEM (:pct) REPEATABLE (7) WHERE identifier_value LIKE 'L%' AND code_local IN "
            "(SELECT local_code FROM recognition_item) LIMIT :n"), {"n": n * 3, "pct": sample_percent}).all()
        orgs = [r[0] for r in c.execute(text("SELECT id FROM organization ORDER BY code")).all()]
    eng.dispose()
    rows = [tuple(r) for r in rows]
    random.Random(3).shuffle(rows)
    return [(p, code, random.Random(hash(p)).choice(orgs)) for p, code, _ in rows[:n]]


def _cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User + system CPU of each live process (Linux /proc), in seconds."""
    out = {}
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[pid] = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return out


class ServerCost:
    """CPU of the server process and of the database's PostgreSQL backends, and the statements the database
    ran (pg_stat_statements, when the extension is there), between ``start`` and ``stop``: per request,
    these vary much less with the shared machine's load than latency does."""

    def __init__(self, url: str, server_pid: int) -> None:
        self.conn = engine_for(url).connect().execution_options(isolation_level="AUTOCOMMIT")
        self.server_pid = server_pid
        self.has_pgss = bool(self.conn.execute(text(
            "SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'")).scalar())

    def _snapshot(self) -> tuple[dict[int, float], dict[int, float], int | None]:
        backends = [r[0] for r in self.conn.execute(text(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"))]
        calls = self.conn.execute(text(
            "SELECT sum(calls)::bigint FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database "
            "WHERE datname = current_database())")).scalar() if self.has_pgss else None
        return _cpu_seconds([self.server_pid]), _cpu_seconds(backends), calls

    def start(self) -> None:
        self.before = self._snapshot()

    def stop(self, n: int) -> dict:
        (s0, b0, c0), (s1, b1, c1) = self.before, self._snapshot()
        self.conn.close()
        server = sum(v - s0.get(k, 0.0) for k, v in s1.items())
        backends = sum(v - b0.get(k, 0.0) for k, v in b1.items())
        out = {"server_cpu_ms_per_request": round(server / n * 1000, 2),
               "postgres_cpu_ms_per_request": round(backends / n * 1000, 2)}
        if c0 is not None and c1 is not None:  # the snapshot's own query counts once; BEGIN/COMMIT included
            out["statements_per_request"] = round((c1 - c0 - 1) / n, 2)
        return out


def cmd_read(args, kind: str) -> None:
    cid, secret = make_client(args.url, "system/*.cruds")
    samples = patients_with_history(args.url, args.requests + args.warmup, args.sample_percent)
    server = Server(args.url, 1)
    counts: list[int] = []
    try:
        tok = server.token(cid, secret)
        h = {"Authorization": f"Bearer {tok}"}
        with httpx.Client(base_url=server.base, timeout=30) as http:
            def one(person: str, code: str, org: str) -> float:
                t = time.perf_counter()
                if kind == "timeline":
                    r = http.get(f"/api/persons/{person}/timeline", headers=h)
                else:
                    r = http.post("/api/recognition/check", headers=h,
                                  json={"person_id": person, "item_code": code, "ordering_org_id": org})
                ms = (time.perf_counter() - t) * 1000
                if r.status_code != 200:
                    raise SystemExit(f"{kind} → {r.status_code}: {r.text[:300]}")
                counts.append(len(r.json()) if kind == "timeline" else len(r.json()["priors"]))
                return ms

            with progress() as bar:
                task = bar.add_task(f"{kind} warm-up", total=args.warmup)
                for s in samples[:args.warmup]:
                    one(*s)
                    bar.advance(task)
            counts.clear()
            before = uptime()
            cost = ServerCost(args.url, server.proc.pid)
            cost.start()
            lat = []
            with progress() as bar:
                task = bar.add_task(kind, total=len(samples) - args.warmup)
                for s in samples[args.warmup:]:
                    lat.append(one(*s))
                    bar.advance(task)
            per_request = cost.stop(len(lat))
            after = uptime()
    finally:
        server.stop()
    eng = engine_for(args.url)
    with eng.connect() as c:
        n_obs = c.execute(text("SELECT reltuples::bigint FROM pg_class WHERE relname = 'rec_observation'")).scalar()
    eng.dispose()
    what = "items per timeline" if kind == "timeline" else "recognisable priors per check"
    save(kind + args.suffix, {"uptime_before": before, "uptime_after": after, "observations_in_database": n_obs,
                "latency": latency(lat), "cost": per_request, what: {"mean": round(statistics.fmean(counts), 2), "max": max(counts),
                                                "zero": sum(1 for c in counts if c == 0)}})


def cmd_cpu(args) -> None:
    """Single-core CPU cost per observation of the steps that do not touch the database: FHIR validation
    (fhir.resources, as on the ingest path), mapping to the service's input, HL7 v2 parsing."""
    from onetrip.interop.hl7v2 import parser
    from onetrip.kit import fhir as mappers
    from onetrip.kit.principal import Principal
    from onetrip.kit.scopes import parse_scopes
    from onetrip.records import fhir

    gen = Gen([("r" * 32, "p" * 32, "o" * 32, "ORG1", "M1")], args.seed, "V")
    reports = [r for r in (gen.report() for _ in range(args.reports * 2)) if r["obs"]][:args.reports]
    bundles = [transaction_bundle(r) for r in reports]
    n_obs = sum(len(r["obs"]) for r in reports)
    principal = Principal(kind="client", id="bench", name="bench", organization_id=None,
                          scopes=parse_scopes("system/*.cruds"), source="rest", raw_scope="system/*.cruds")
    out: dict = {"reports": len(reports), "observations": n_obs, "uptime_before": uptime()}

    def timed(name: str, fn) -> None:
        fn(bundles[:20], reports[:20])
        t = time.perf_counter()
        fn(bundles, reports)
        out[name] = round((time.perf_counter() - t) / n_obs * 1e6, 1)

    timed("bundle_json_parse_us_per_observation", lambda bs, rs: [json.loads(json.dumps(b)) for b in bs])
    timed("validate_bundle_us_per_observation", lambda bs, rs: [mappers.validate("Bundle", b) for b in bs])
    timed("validate_each_resource_us_per_observation", lambda bs, rs: [
        mappers.validate(e["resource"]["resourceType"], e["resource"]) for b in bs for e in b["entry"]])
    timed("validate_transaction_as_ingested_us_per_observation", lambda bs, rs: [
        (mappers.validate("Bundle", {**b, "entry": [{k: v for k, v in e.items() if k != "resource"} for e in b["entry"]]}),
         [mappers.validate(e["resource"]["resourceType"], e["resource"]) for e in b["entry"]]) for b in bs])
    token = mappers._IN_VALIDATED_BUNDLE.set(True)
    try:
        timed("map_to_service_input_us_per_observation", lambda bs, rs: [
            fhir.observation_in(None, {**e["resource"], "subject": {"reference": "Patient/x"}}, principal)
            for b in bs for e in b["entry"] if e["resource"]["resourceType"] == "Observation"])
    finally:
        mappers._IN_VALIDATED_BUNDLE.reset(token)
    msgs = [oru_message(r, f"V{i}") for i, r in enumerate(reports)]
    timed("hl7_parse_us_per_observation", lambda bs, rs: [parser.parse(m) for m in msgs])
    out["uptime_after"] = uptime()
    save("cpu", out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default=os.environ.get("ONETRIP_BENCH_RECORDS_URL", DEFAULT_URL))
    ap.add_argument("--seed", type=int, default=42)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("load", help="a district + N observations with their reports by COPY (recreates the database)")
    p.add_argument("--residents", type=int, default=300_000)
    p.add_argument("--observations", type=int, default=10_000_000)
    p.add_argument("--with-history", type=float, default=0.6, help="share of patient records that have results")
    p.add_argument("--keep-district", action="store_true", help="only add observations to the loaded district")
    p.add_argument("--processes", type=int, default=2, help="generator processes")
    for name in ("copy", "ingest-fhir", "ingest-mllp"):
        p = sub.add_parser(name)
        p.add_argument("--reports", type=int, default=3000)
        p.add_argument("--suffix", default="", help="appended to the result file name")
        if name != "copy":
            p.add_argument("--clients", type=int, default=4)
        if name == "ingest-fhir":
            p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
            p.add_argument("--prefer", default="return=minimal",
                           help='Prefer header of every bundle ("" for none: every stored resource comes back)')
            p.add_argument("--warmup", type=int, default=100)
    p = sub.add_parser("cpu", help="CPU per observation of validation, mapping and HL7 parsing (no database)")
    p.add_argument("--reports", type=int, default=300)
    for name in ("timeline", "check"):
        p = sub.add_parser(name)
        p.add_argument("--requests", type=int, default=1000)
        p.add_argument("--warmup", type=int, default=100)
        p.add_argument("--suffix", default="", help="appended to the result file name")
        p.add_argument("--sample-percent", type=float, default=1,
                       help="share of the reports' pages to draw persons from (raise it on a small database)")
    args = ap.parse_args()
    {"load": cmd_load, "copy": cmd_copy, "ingest-fhir": cmd_ingest_fhir, "ingest-mllp": cmd_ingest_mllp,
     "cpu": cmd_cpu, "timeline": lambda a: cmd_read(a, "timeline"), "check": lambda a: cmd_read(a, "check")}[args.cmd](args)


if __name__ == "__main__":
    main()
