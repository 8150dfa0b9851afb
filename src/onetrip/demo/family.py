"""Demo district family-doctor work: teams at every branch centre, contracts (more among the elderly),
hypertension and diabetes registries, a year of follow-ups classified by the real rules (R3.3, R3.5) —
including patients who fall behind (overdue, lost to follow-up) and who stay uncontrolled — home BP and
glucose readings with the alerts they raise, and the outbox events the cockpit reads (contract.signed,
registry.enrolled, followup.recorded; ``occurred_at`` is when it happened).

Deterministic for a seed (ids too). Bulk inserts with ``db.bulk`` (COPY on PostgreSQL, executemany
elsewhere). Idempotent: a database that has teams already is left alone.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections import defaultdict
from typing import Any

from sqlalchemy import Table, func, select
from sqlalchemy.orm import Session

from onetrip.db.bulk import bulk_insert
from onetrip.family import rules
from onetrip.family.common import params
from onetrip.family.models import Alert, Contract, Followup, Reading, Registry, Team
from onetrip.kit.clock import LOCAL_TZ
from onetrip.outbox import service as outbox_service
from onetrip.outbox.models import OutboxEvent
from onetrip.persons.models import PatientRecord, Person
from onetrip.registry.models import Organization, Practitioner

LOCAL = LOCAL_TZ
DRUGS = {rules.HYPERTENSION: ["氨氯地平片 5mg qd", "缬沙坦胶囊 80mg qd", "吲达帕胺片 2.5mg qd"],
         rules.DIABETES: ["二甲双胍片 0.5g tid", "格列美脲片 2mg qd", "阿卡波糖片 50mg tid"]}


class _Bulk:
    """Rows per table, written at the end with one bulk insert each (``db.bulk``)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.rows: dict[Table, list[dict[str, Any]]] = defaultdict(list)

    def add(self, model, **row: Any) -> None:
        self.rows[model.__table__].append(row)

    def write(self, table: Table) -> int:
        return bulk_insert(self.session, table, self.rows.pop(table, []))


def load_family(session: Session, seed: int, today: dt.date, *, readings_share: float = 0.2) -> dict[str, int]:
    """Load teams, contracts, registries, a year of follow-ups to ``today`` and readings. Flushes; the
    caller commits. Returns counts."""
    if session.scalar(select(func.count()).select_from(Team)):
        return {"teams": 0, "contracts": 0, "registries": 0, "followups": 0, "readings": 0, "alerts": 0}
    rng = random.Random(f"onetrip-demo-family:{seed}")
    id_rng = random.Random(f"onetrip-demo-family:{seed}:ids")

    def new_id() -> str:
        return uuid.UUID(int=id_rng.getrandbits(128), version=4).hex

    p = params(session, today)
    now = dt.datetime.combine(today, dt.time(9), LOCAL).astimezone(dt.UTC)
    bulk = _Bulk(session)
    events: list[dict[str, Any]] = []

    def event(kind: str, agg: str, agg_id: str, payload: dict, person_id: str, at: dt.datetime) -> None:
        events.append(outbox_service.event_row(kind, agg, agg_id, payload, person_id=person_id, occurred_at=at))

    def at_local(day: dt.date, hour: int = 9) -> dt.datetime:
        return dt.datetime.combine(day, dt.time(hour, rng.randrange(60)), LOCAL).astimezone(dt.UTC)

    centres = list(session.scalars(select(Organization).where(Organization.org_type == "branch_centre")
                                   .order_by(Organization.code)))
    leads = list(session.scalars(select(Practitioner.id).join(Organization, Organization.id == Practitioner.organization_id)
                                 .where(Organization.org_type == "lead_hospital", Practitioner.qualification == "physician")
                                 .order_by(Practitioner.id).limit(50)))
    staff: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for pid, org_id, qual in session.execute(select(Practitioner.id, Practitioner.organization_id,
                                                    Practitioner.qualification).where(
            Practitioner.organization_id.in_([c.id for c in centres])).order_by(Practitioner.id)):
        staff[org_id][qual or ""].append(pid)
    teams: dict[str, list[dict[str, Any]]] = {}
    for c in centres:
        docs, nurses = staff[c.id]["physician"], staff[c.id]["nurse"]
        n = min(len(docs) - 1, len(nurses), 4)
        made = []
        for i in range(max(n, 0)):
            row = {"id": new_id(), "organization_id": c.id, "code": f"FD{i + 1}", "name": f"{c.name}家庭医生{i + 1}队",
                   "doctor_id": docs[i], "nurse_id": nurses[i], "public_health_id": docs[-1],
                   "specialist_id": leads[(len(made) + len(teams)) % len(leads)] if leads and i == 0 else None,
                   "active": True, "created_at": now, "updated_at": now, "version_id": 1}
            bulk.add(Team, **row)
            made.append(row)
        if made:
            teams[c.id] = made
    counts = {"teams": sum(len(v) for v in teams.values())}

    # Residents of each centre's catchment: the persons registered there (valid ID → the real resident).
    residents = session.execute(
        select(PatientRecord.organization_id, Person.id, Person.birth_date, Person.sex)
        .join(Person, Person.id == PatientRecord.person_id)
        .where(PatientRecord.organization_id.in_(list(teams)), PatientRecord.deleted_at.is_(None),
               Person.id_number.is_not(None), Person.merged_into_id.is_(None), Person.deceased.is_(False))
        .order_by(PatientRecord.organization_id, Person.id)).all()
    seen: set[str] = set()
    n_contracts = n_regs = n_fu = 0
    followups_by_reg: list[tuple[dict, list[dict]]] = []
    for org_id, person_id, birth, sex in residents:
        if person_id in seen:
            continue
        seen.add(person_id)
        age = rules.age_on(birth, today) or 0
        team = teams[org_id][rng.randrange(len(teams[org_id]))]
        programmes = []
        if age >= p.target_min_age:
            if rng.random() < (0.18 if age < 65 else 0.38):
                programmes.append(rules.HYPERTENSION)
            if rng.random() < (0.06 if age < 65 else 0.14):
                programmes.append(rules.DIABETES)
        sign_p = 0.75 if age >= 65 or programmes else 0.55 if age <= 6 else 0.3
        if rng.random() < sign_p:
            start = today - dt.timedelta(days=rng.randrange(0, 330))
            end = rules.add_years(start, 1) - dt.timedelta(days=1)
            declared = ["pregnant"] if sex == "2" and 22 <= age <= 38 and rng.random() < 0.05 else []
            groups = rules.key_groups(birth, start, programmes, declared, p, sex=sex)
            cid = new_id()
            signed = at_local(start)
            bulk.add(Contract, id=cid, person_id=person_id, organization_id=org_id, team_id=team["id"],
                     doctor_id=team["doctor_id"], package="personalised" if rng.random() < 0.2 else "basic",
                     addons=[], start_date=start, end_date=end, status="active",
                     channel="app" if rng.random() < 0.35 else "clinic", declared_groups=declared, key_groups=groups,
                     signed_at=signed, signed_by="demo", ended_at=None, end_reason=None, previous_id=None,
                     created_at=signed, updated_at=signed, version_id=1)
            event("contract.signed", "Contract", cid, {
                "contract_id": cid, "organization_id": org_id, "team_id": team["id"], "doctor_id": team["doctor_id"],
                "key_groups": groups, "start_date": start.isoformat(), "end_date": end.isoformat()}, person_id, signed)
            n_contracts += 1
        for programme in programmes:
            reg, fus = _registry(rng, new_id, p, today, person_id, birth, org_id, team, programme)
            followups_by_reg.append((reg, fus))
            n_regs += 1
            n_fu += len(fus)
            enrolled_at = at_local(reg["enrolled_on"])
            event("registry.enrolled", "CarePlan", reg["id"], {
                "programme": programme, "organization_id": org_id, "team_id": team["id"],
                "doctor_id": team["doctor_id"], "enrolled_on": reg["enrolled_on"].isoformat()}, person_id, enrolled_at)
            for f in fus:
                event("followup.recorded", "Encounter", f["id"], {
                    "followup_id": f["id"], "programme": programme, "organization_id": org_id, "team_id": team["id"],
                    "doctor_id": team["doctor_id"], "visit_date": f["visit_date"].isoformat(),
                    "controlled": f["controlled"], "on_schedule": f["on_schedule"]}, person_id, f["created_at"])
    for reg, fus in followups_by_reg:
        bulk.add(Registry, **reg)
        for f in fus:
            bulk.add(Followup, **f)
    counts.update(contracts=n_contracts, registries=n_regs, followups=n_fu)
    counts.update(_readings(rng, new_id, p, today, bulk, followups_by_reg, readings_share))
    for model in (Team, Contract, Registry, Followup, Reading, Alert):
        bulk.write(model.__table__)
    for e in sorted(events, key=lambda e: e["occurred_at"]):
        bulk.add(OutboxEvent, **e)
    counts["events"] = bulk.write(OutboxEvent.__table__)
    session.flush()
    if session.get_bind().dialect.name == "postgresql":  # fresh statistics after a bulk load, so the planner sees the real sizes at once
        from sqlalchemy import text

        for model in (Team, Contract, Registry, Followup, Reading, Alert):
            session.execute(text(f"ANALYZE {model.__tablename__}"))
    return counts


def _registry(rng: random.Random, new_id, p: rules.Params, today: dt.date, person_id: str, birth: dt.date | None,
              org_id: str, team: dict, programme: str) -> tuple[dict, list[dict]]:
    """One registry and its follow-ups over the last year, classified by the rules. Profiles: most keep
    their quarterly visits; some drift (overdue), some stop (lost); control depends on the patient."""
    enrolled_on = today - dt.timedelta(days=rng.randrange(60, 5 * 365))
    profile = rng.choices(["regular", "late", "lost"], weights=[70, 20, 10])[0]
    control = rng.choice([0.85, 0.7, 0.5, 0.3])
    stop_after = today - dt.timedelta(days=rng.randrange(130, 300)) if profile == "lost" else None
    rid = new_id()
    day = max(enrolled_on, today - dt.timedelta(days=365)) + dt.timedelta(days=rng.randrange(0, 30))
    due: dt.date | None = None
    run = 0
    fus: list[dict] = []
    last: rules.Classification | None = None
    while day <= today and (stop_after is None or day <= stop_after):
        controlled = rng.random() < control
        if programme == rules.HYPERTENSION:
            sbp = rng.randint(118, 138) if controlled else rng.randint(142, 176 if rng.random() > 0.03 else 190)
            dbp = rng.randint(70, 88) if controlled else rng.randint(86, 104 if rng.random() > 0.03 else 114)
            fpg = None
        else:
            sbp, dbp = rng.randint(118, 150), rng.randint(70, 92)
            fpg = round(rng.uniform(5.2, 6.9) if controlled else rng.uniform(7.1, 12.5), 1)
        visit = rules.Visit(programme=programme, visit_date=day, age=rules.age_on(birth, day), sbp=sbp, dbp=dbp,
                            fasting_glucose=fpg)
        last = rules.classify(visit, run, p)
        run = last.consecutive_uncontrolled
        at = dt.datetime.combine(day, dt.time(9, rng.randrange(60)), LOCAL).astimezone(dt.UTC)
        fus.append({"id": new_id(), "registry_id": rid, "person_id": person_id, "programme": programme,
                    "organization_id": org_id, "team_id": team["id"], "doctor_id": team["doctor_id"], "visit_date": day,
                    "method": rng.choice(["clinic", "clinic", "home", "phone"]), "sbp": sbp, "dbp": dbp,
                    "heart_rate": rng.randint(60, 90), "fasting_glucose": fpg, "random_glucose": None, "weight_kg": None,
                    "symptoms": [], "adverse_reaction": False, "complication": False,
                    "medication": [{"drug": rng.choice(DRUGS[programme])}],
                    "adherence": "regular" if controlled or rng.random() < 0.5 else "intermittent",
                    "lifestyle": {}, "classification": last.code, "controlled": last.controlled, "action": last.action,
                    "on_schedule": rules.on_schedule(day, due), "next_due_date": last.next_due,
                    "urgent_reasons": list(last.urgent_reasons), "referral_id": None, "note": None,
                    "recorded_by": "demo", "created_at": at, "updated_at": at})
        due = last.next_due
        slip = rng.randint(20, 60) if profile == "late" else rng.randint(-7, 3)
        day = last.next_due + dt.timedelta(days=slip)
    at = dt.datetime.combine(enrolled_on, dt.time(9), LOCAL).astimezone(dt.UTC)
    reg = {"id": rid, "person_id": person_id, "programme": programme, "organization_id": org_id, "team_id": team["id"],
           "doctor_id": team["doctor_id"], "diagnosis_code": "I10" if programme == rules.HYPERTENSION else "E11",
           "enrolled_on": enrolled_on, "status": "active", "closed_on": None, "close_reason": None,
           "last_visit_date": fus[-1]["visit_date"] if fus else None,
           "next_due_date": last.next_due if last else enrolled_on,
           "last_classification": last.code if last else None, "controlled": last.controlled if last else None,
           "consecutive_uncontrolled": run, "created_at": at, "updated_at": at, "version_id": 1}
    return reg, fus


def _readings(rng: random.Random, new_id, p: rules.Params, today: dt.date, bulk: _Bulk,
              regs: list[tuple[dict, list[dict]]], share: float) -> dict[str, int]:
    """Home readings about once a week for the last year for a share of the managed patients; the last two
    weeks' out-of-range readings raise open alerts (older ones were acknowledged)."""
    n = alerts = 0
    done: set[str] = set()
    for reg, fus in regs:
        pid = reg["person_id"]
        if pid in done or rng.random() >= share:
            continue
        done.add(pid)
        base_sbp = (fus[-1]["sbp"] if fus else 140) or 140
        diabetic = reg["programme"] == rules.DIABETES
        day = today - dt.timedelta(days=365)
        while day <= today:
            at = dt.datetime.combine(day, dt.time(7, rng.randrange(60)), LOCAL).astimezone(dt.UTC)
            sbp = max(85, min(220, int(rng.gauss(base_sbp, 9))))
            dbp = max(50, min(125, int(sbp * 0.62 + rng.gauss(0, 5))))
            glucose = round(max(2.8, rng.gauss(7.5, 1.8)), 1) if diabetic else None
            codes = rules.reading_alerts(sbp, dbp, glucose, p)
            rid = new_id()
            bulk.add(Reading, id=rid, person_id=pid, measured_at=at, sbp=sbp, dbp=dbp, pulse=rng.randint(58, 92),
                     glucose=glucose, glucose_context="fasting" if diabetic else None, source="home", device_id=None,
                     source_system=None, source_id=None, alerts=codes, resource=None, created_at=at)
            n += 1
            if codes:
                recent = (today - day).days < 14
                bulk.add(Alert, id=new_id(), person_id=pid, team_id=reg["team_id"], reading_id=rid, codes=codes,
                         summary=f"自测异常 {sbp}/{dbp} mmHg / self-check out of range {sbp}/{dbp} mmHg",
                         acknowledged_at=None if recent else at + dt.timedelta(hours=6),
                         acknowledged_by=None if recent else "demo", created_at=at, updated_at=at)
                alerts += 1
            day += dt.timedelta(days=rng.randint(5, 9))
    return {"readings": n, "alerts": alerts}
