"""Demo district shared results (issue 4 §7): a year of lab, imaging and ultrasound results across the
institutions, with repeat orders some of which were recognised (the decision log), so the timeline, the trend
charts and the recognition figures have something to show.

For a sample of residents with a registration at a hospital or branch centre, over the ``days`` before
``today``:

* lab reports (chemistry panel with glucose / ALT / creatinine, HbA1c, blood count with haemoglobin and white
  cells) with LOINC-coded values that drift per resident, so repeated values make trends;
* CT / MR / X-ray and ultrasound reports with an ``ImagingStudy`` each, and a few studies with no report yet;
* recognition marks ("浙HR" at hospitals, "HR" at most branch centres), as the LIS/PACS would send them;
* repeat orders: a later order of an item the resident already has a result of, at the same or another
  institution. Whether the prior was recognisable is decided by the real pure rules (RULES R1.1–R1.6,
  ``recognition.rules.failures``); with a recognisable prior the doctor mostly recognised it (the order is
  dropped — money saved) and otherwise repeated it with a reason code (R1.3), which stores a new result.

Deterministic for a seed (ids too). Rows go in with ``db.bulk`` (COPY on PostgreSQL,
executemany elsewhere); nothing here commits. Look-ups (调阅) come from audited reads, which this loader
leaves to real use of the timeline.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from onetrip.db.bulk import bulk_insert
from onetrip.demo.loader import LOADED_AT
from onetrip.kit.clock import LOCAL_TZ
from onetrip.persons.models import PatientRecord
from onetrip.recognition import rules
from onetrip.recognition.models import RecognitionDecision, RecognitionItem, RecognitionReason
from onetrip.recognition.service import seed_catalogue
from onetrip.records.models import DiagnosticReport, ImagingStudy, Observation
from onetrip.registry.models import Department, Organization

CN = LOCAL_TZ
LOINC = "http://loinc.org"
ISSUERS = ("lead_hospital", "district_hospital", "branch_centre")


@dataclass(frozen=True)
class Analyte:
    code: str
    name: str
    unit: str
    low: float
    high: float
    mean: float
    sd: float


@dataclass(frozen=True)
class Exam:
    item: str  # recognition catalogue local code
    code: str | None  # LOINC of the report
    name: str
    category: str
    section: str
    modality: str | None
    analytes: tuple[Analyte, ...] = ()
    conclusions: tuple[str, ...] = ("未见明显异常",)


GLU = Analyte("2345-7", "葡萄糖", "mmol/L", 3.9, 6.1, 5.8, 1.2)
ALT = Analyte("1742-6", "丙氨酸氨基转移酶", "U/L", 9, 50, 30, 12)
CRE = Analyte("2160-0", "肌酐", "umol/L", 57, 111, 80, 18)
A1C = Analyte("4548-4", "糖化血红蛋白", "%", 4.0, 6.0, 6.2, 0.9)
HGB = Analyte("718-7", "血红蛋白", "g/L", 115, 175, 138, 14)
WBC = Analyte("6690-2", "白细胞计数", "10*9/L", 3.5, 9.5, 6.5, 1.6)
EXAMS = (
    Exam("CMP", "24323-8", "综合代谢检查", "lab", "chemistry", None, (GLU, ALT, CRE)),
    Exam("HBA1C", "4548-4", "糖化血红蛋白", "lab", "chemistry", None, (A1C,)),
    Exam("CBC", "58410-2", "血常规", "lab", "haematology", None, (HGB, WBC)),
    Exam("GLU", "2345-7", "空腹血糖", "lab", "chemistry", None, (GLU,)),
    Exam("CT-HEAD", "24725-4", "头颅CT平扫", "imaging", "CT", "CT", (),
         ("颅内未见明显异常密度影。", "左侧基底节区腔隙性梗塞灶。")),
    Exam("CT-CHEST", "24627-2", "胸部CT平扫", "imaging", "CT", "CT", (),
         ("双肺纹理清晰，未见明显实质性病变。", "右肺上叶小结节，建议随访。")),
    Exam("XR-CHEST", "36643-5", "胸部X线正侧位", "imaging", "XR", "DX", (), ("心肺膈未见明显异常。",)),
    Exam("MR-HEAD", "24590-2", "头颅磁共振", "imaging", "MR", "MR", (), ("脑内少许缺血灶。",)),
    Exam("US-ABD", None, "腹部超声", "ultrasound", "US", "US", (), ("肝胆胰脾未见明显异常。", "脂肪肝（轻度）。")),
)
LAB_WEIGHTS = (5, 2, 4, 3)  # CMP, HBA1C, CBC, GLU
IMAGING_WEIGHTS = (2, 2, 3, 1, 4)
REASONS = ("01", "02", "03", "04", "07", "08", "98", "99")
REASON_WEIGHTS = (3, 2, 2, 2, 5, 3, 1, 2)

_REPORT = ("id", "person_id", "patient_record_id", "organization_id", "identifier_system", "identifier_value",
           "status", "code_local", "code_system", "code", "display", "resource", "category", "section",
           "effective_at", "issued", "conclusion", "recognition_mark", "service_request_id", "created_at",
           "updated_at")
_OBS = ("id", "person_id", "patient_record_id", "organization_id", "identifier_system", "identifier_value",
        "status", "code_local", "code_system", "code", "display", "resource", "report_id", "effective_at",
        "value_quantity", "value_string", "unit", "reference_low", "reference_high", "reference_text",
        "interpretation", "created_at", "updated_at")
_STUDY = ("id", "person_id", "patient_record_id", "organization_id", "identifier_system", "identifier_value",
          "status", "code_local", "code_system", "code", "display", "resource", "modality", "series_count",
          "instance_count", "started_at", "accession", "report_id", "created_at", "updated_at")
_DECISION = ("id", "kind", "person_id", "check_id", "ordering_org_id", "department_id", "item_code", "user_id",
             "prior_ids", "decision", "reason_code", "disease", "remark", "channel", "hook_instance", "created_at",
             "updated_at")


def load_records(session: Session, *, seed: int, today: dt.date, days: int = 365, share: float = 0.08,
                 max_persons: int = 1500) -> dict[str, Any]:
    """Load the demo results for ``share`` of the residents registered at an issuing institution (at most
    ``max_persons``). Returns counts. Refuses nothing: call it once per demo district (the caller checks)."""
    rng = random.Random(seed * 7919 + 4)
    seed_catalogue(session)

    def new_id() -> str:
        return uuid.UUID(int=rng.getrandbits(128), version=4).hex

    orgs = {o.id: o for o in session.scalars(select(Organization).where(Organization.org_type.in_(ISSUERS))
                                             .order_by(Organization.code))}
    if not orgs:
        return {"reports": 0, "observations": 0, "studies": 0, "checks": 0, "decisions": 0}
    departments: dict[str, list[str]] = defaultdict(list)
    for d_id, org_id in session.execute(select(Department.id, Department.organization_id).where(
            Department.organization_id.in_(list(orgs))).order_by(Department.organization_id, Department.code)):
        departments[org_id].append(d_id)
    records: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for rec_id, person_id, org_id in session.execute(
            select(PatientRecord.id, PatientRecord.person_id, PatientRecord.organization_id).where(
                PatientRecord.organization_id.in_(list(orgs)), PatientRecord.deleted_at.is_(None))
            .order_by(PatientRecord.person_id, PatientRecord.organization_id, PatientRecord.id)):
        records[person_id].append((org_id, rec_id))
    persons = sorted(records)
    chosen = sorted(rng.sample(persons, min(max_persons, max(1, int(len(persons) * share)))))
    items = {i.local_code: i for i in session.scalars(select(RecognitionItem))}
    needs_disease = {r.code: r.needs_disease for r in session.scalars(select(RecognitionReason))}
    mapping = {i.local_code: i.standard_code for i in items.values() if i.standard_code}
    issuer = {o.id: rules.Issuer(o.grade, o.community_id, True) for o in orgs.values()}
    start = dt.datetime.combine(today - dt.timedelta(days=days), dt.time(8, 0), CN).astimezone(dt.UTC)
    span = days * 86400 - 12 * 3600
    ident = {o.id: f"urn:onetrip:demo:{o.code.lower()}:report" for o in orgs.values()}
    counter = [0]
    reports: list[tuple] = []
    observations: list[tuple] = []
    studies: list[tuple] = []
    decisions: list[tuple] = []

    def mark_for(org: Organization) -> str | None:
        if org.org_type == "branch_centre":
            return "HR" if rng.random() < 0.6 else None
        return "浙HR" if rng.random() < 0.9 else None

    def add_report(person_id: str, org_id: str, rec_id: str, exam: Exam, when: dt.datetime,
                   level: dict[str, float]) -> tuple:
        org = orgs[org_id]
        counter[0] += 1
        rid = new_id()
        has_values = bool(exam.analytes)
        conclusion = rng.choice(exam.conclusions) if not has_values else None
        row = (rid, person_id, rec_id, org_id, ident[org_id], f"R{counter[0]:08d}", "final", exam.item,
               LOINC if exam.code else None, exam.code, exam.name, {}, exam.category, exam.section, when,
               when + dt.timedelta(hours=rng.randint(1, 30)), conclusion, mark_for(org), None, LOADED_AT, LOADED_AT)
        reports.append(row)
        for n, a in enumerate(exam.analytes, start=1):
            base = level.setdefault(a.code, rng.gauss(a.mean, a.sd))
            value = round(max(0.1, base + rng.gauss(0, a.sd * 0.35)), 1)
            level[a.code] = base + rng.gauss(0, a.sd * 0.1)  # drift
            flag = "H" if value > a.high else "L" if value < a.low else "N"
            observations.append((new_id(), person_id, rec_id, org_id, ident[org_id] + ":obs",
                                 f"R{counter[0]:08d}-{n}", "final", None, LOINC, a.code, a.name, {}, rid, when,
                                 value, None, a.unit, a.low, a.high, None, flag, LOADED_AT, LOADED_AT))
        if exam.modality:
            studies.append((new_id(), person_id, rec_id, org_id, ident[org_id] + ":study", f"S{counter[0]:08d}",
                            "available", exam.item, LOINC if exam.code else None, exam.code, exam.name, {},
                            exam.modality, rng.randint(1, 4), rng.randint(20, 400), when, f"A{counter[0]:08d}", rid,
                            LOADED_AT, LOADED_AT))
        return row

    def prior_ok(exam: Exam, orderer_org: str, prior: tuple, when: dt.datetime) -> bool:
        item = items[exam.item]
        order = rules.OrderItem(item.local_code, item.standard_code, item.category, item.window_days)
        p = rules.PriorResult(prior[0], prior[9], prior[7], prior[12], prior[14], prior[17], bool(exam.analytes),
                              issuer[prior[3]])
        return not rules.failures(order, issuer[orderer_org], p, mapping, item.window_days, when, item.scope)

    for person_id in chosen:
        regs = records[person_id]
        level: dict[str, float] = {}
        history: dict[str, list[tuple]] = defaultdict(list)
        events = [(EXAMS[:4], LAB_WEIGHTS)] * rng.randint(2, 7) + [(EXAMS[4:], IMAGING_WEIGHTS)] * rng.choice(
            (0, 0, 1, 1, 2))
        times = sorted(start + dt.timedelta(seconds=rng.randrange(span)) for _ in events)
        for (pool, weights), when in zip(events, times, strict=True):
            exam = rng.choices(pool, weights)[0]
            org_id, rec_id = rng.choice(regs)
            history[exam.item].append(add_report(person_id, org_id, rec_id, exam, when, level))
            # a repeat order of the same item soon after, at the same or another institution
            if rng.random() < 0.45:
                window = items[exam.item].window_days or 7
                later = when + dt.timedelta(hours=rng.randint(6, max(7, window * 24 - 6)))
                if later.date() > today:
                    continue
                o_org, o_rec = rng.choice(regs)
                priors = [p[0] for p in history[exam.item] if prior_ok(exam, o_org, p, later)]
                check_id = new_id()
                dept = rng.choice(departments[o_org]) if departments[o_org] else None
                channel = "cds-hooks" if rng.random() < 0.6 else "rest"
                decisions.append((check_id, "check", person_id, None, o_org, dept, exam.item, None, priors, None,
                                  None, None, None, channel, None, later, later))
                decided = later + dt.timedelta(minutes=rng.randint(1, 20))
                if priors and rng.random() < 0.68:
                    decisions.append((new_id(), "decision", person_id, check_id, o_org, dept, exam.item, None,
                                      priors, "recognised", None, None, None, channel, None, decided, decided))
                    continue
                reason = rng.choices(REASONS, REASON_WEIGHTS)[0]
                disease = "2型糖尿病" if needs_disease.get(reason) else None
                decisions.append((new_id(), "decision", person_id, check_id, o_org, dept, exam.item, None,
                                  priors, "repeated", reason, disease, None, channel, None, decided, decided))
                history[exam.item].append(add_report(person_id, o_org, o_rec, exam, later + dt.timedelta(hours=1),
                                                     level))
        if rng.random() < 0.03:  # images taken, report not written yet: shown, never offered for recognition
            org_id, rec_id = rng.choice(regs)
            counter[0] += 1
            when = dt.datetime.combine(today, dt.time(9, 0), CN).astimezone(dt.UTC) - dt.timedelta(days=1)
            studies.append((new_id(), person_id, rec_id, org_id, ident[org_id] + ":study", f"S{counter[0]:08d}",
                            "available", "US-ABD", None, None, "腹部超声", {}, "US", 1, 24, when,
                            f"A{counter[0]:08d}", None, LOADED_AT, LOADED_AT))

    bulk_insert(session, DiagnosticReport.__table__, reports, columns=_REPORT)
    bulk_insert(session, Observation.__table__, observations, columns=_OBS)
    bulk_insert(session, ImagingStudy.__table__, studies, columns=_STUDY)
    checks = [d for d in decisions if d[1] == "check"]
    bulk_insert(session, RecognitionDecision.__table__, checks, columns=_DECISION)
    bulk_insert(session, RecognitionDecision.__table__, [d for d in decisions if d[1] == "decision"], columns=_DECISION)
    session.flush()
    recognised = sum(1 for d in decisions if d[9] == "recognised")
    saved = sum((items[d[6]].price for d in decisions if d[9] == "recognised"), Decimal("0"))
    return {"persons": len(chosen), "reports": len(reports), "observations": len(observations),
            "studies": len(studies), "checks": len(checks), "decisions": len(decisions) - len(checks),
            "recognised": recognised, "money_saved": saved}


def loaded(session: Session) -> bool:
    return bool(session.scalar(select(func.count()).select_from(DiagnosticReport)))
