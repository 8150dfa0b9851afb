"""Demo district referrals: two years (this year and the one before, for year-on-year figures) of upward
and downward referrals between each lead hospital and its branch centres, in every state; deterministic
for a seed.

History is written with bulk inserts (referrals, follow-ups and their outbox events, with ``published_at``
set to the event time); the last days' open referrals go through the real service
(audit, care relationships, reserved slots booked through scheduling), so worklists, SLA timers, badges
and the package look like a working day.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from onetrip.kit.clock import LOCAL_TZ, utcnow
from onetrip.kit.errors import ApiError
from onetrip.kit.principal import Principal
from onetrip.outbox.models import OutboxEvent
from onetrip.persons.models import PatientRecord
from onetrip.referral import service
from onetrip.referral.models import Referral, ReferralFollowUp
from onetrip.registry.models import Department, Organization

# Per lead hospital and day (seeds: 79 up + 108 down in nine days at one 基层科; +27.93 % year on year).
UP_PER_DAY, DOWN_PER_DAY, GROWTH = 8.8, 12.0, 1.2793
UP_REASONS = [
    ("U2", "反复胸闷胸痛，基层诊断不明", "R07.400"), ("U5", "需行CT/MRI明确诊断", "I63.900"),
    ("U1", "血压急剧升高伴头痛，超出本院救治能力", "I10.x00"), ("U6", "需内镜检查，本院无设备", "K25.900"),
    ("U2", "血糖控制不佳，并发症待评估", "E11.900"), ("U4", "需手术治疗，超出本院诊疗科目", "K80.200"),
    ("U5", "肺部阴影待查", "J18.900"), ("U1", "慢阻肺急性加重", "J44.100"),
]
DOWN_REASONS = [
    ("D1", "脑梗死恢复期，回社区康复", "I63.900", "住院12天，病情稳定，左侧肢体肌力4级", "每日肢体功能训练，两周后复诊"),
    ("D4", "高血压长期管理", "I10.x00", "住院7天，血压控制平稳", "家庭血压监测，每月随访"),
    ("D4", "2型糖尿病长期管理", "E11.900", "住院9天，胰岛素调整后血糖达标", "糖尿病饮食，每周监测血糖"),
    ("D1", "髋部骨折术后康复", "S72.000", "股骨颈骨折术后第10天", "助行器下地，康复训练"),
    ("D2", "诊断明确，病情稳定", "J18.900", "肺炎治愈出院", "两周后复查胸片"),
    ("D3", "晚期肿瘤安宁疗护", "C34.900", "晚期肺癌，姑息治疗", "疼痛管理，家属照护指导"),
    ("D5", "老年护理", "F03.x00", "痴呆伴行动不便", "居家护理指导"),
    ("D6", "常见病后续治疗", "K29.700", "胃炎，症状缓解", "规律饮食，必要时复诊"),
]
MEDS = [("苯磺酸氨氯地平片", "5 mg qd"), ("二甲双胍缓释片", "0.5 g bid"), ("阿司匹林肠溶片", "100 mg qd"),
        ("阿托伐他汀钙片", "20 mg qn"), ("奥美拉唑肠溶胶囊", "20 mg qd")]


_ICD = service.icd10_codes()
# History events: every state change except arrival and escalation (kept out to stay within the demo's
# time budget; the referral rows carry those times).
_HISTORY_EVENTS = {"submitted", "accepted", "rejected", "scheduled", "completed", "cancelled", "expired"}


def _hexid(rng: random.Random) -> str:
    return f"{rng.getrandbits(128):032x}"


def _principal(org: Organization, name: str) -> Principal:
    return Principal(kind="client", id=f"demo-{org.code}", name=name, organization_id=org.id, source="demo")


def _outcome(rng: random.Random, direction: str) -> str:
    x = rng.random()
    if direction == "up":
        return "rejected" if x < 0.05 else "cancelled" if x < 0.08 else "expired" if x < 0.095 else "completed"
    return "rejected" if x < 0.03 else "cancelled" if x < 0.05 else "expired" if x < 0.06 else "completed"


def _history(rng: random.Random, *, lead: Organization, branches: list[Organization], dept: str | None,
             people: dict[str, list[tuple[str, str]]], start: dt.date, end: dt.date, rate: float,
             rows: list[dict], followups: list[dict], events: list[dict], cfg: dict) -> None:
    """Closed referrals submitted on each day from start to end (inclusive)."""
    day = start
    while day <= end:
        weekday_factor = 0.45 if day.weekday() >= 5 else 1.15
        for direction, per_day in (("up", rate * UP_PER_DAY / (UP_PER_DAY + DOWN_PER_DAY)),
                                   ("down", rate * DOWN_PER_DAY / (UP_PER_DAY + DOWN_PER_DAY))):
            n = int(per_day * weekday_factor + rng.random())
            for _ in range(n):
                branch = rng.choice(branches)
                sender, target = (branch, lead) if direction == "up" else (lead, branch)
                pool = people.get(sender.id) or []
                if not pool:
                    continue
                person_id, record_id = rng.choice(pool)
                at = dt.datetime.combine(day, dt.time(8 + rng.randrange(9), rng.randrange(60)), LOCAL_TZ
                                         ).astimezone(dt.UTC)
                _closed(rng, direction, sender, target, dept if direction == "up" else None, person_id, record_id,
                        at, rows, followups, events, cfg)
        day += dt.timedelta(days=1)


def _closed(rng, direction, sender, target, dept, person_id, record_id, at, rows, followups, events, cfg) -> None:
    rid = _hexid(rng)
    if direction == "up":
        code, reason, dx = rng.choice(UP_REASONS)
        discharge = rehab = None
    else:
        code, reason, dx, discharge, rehab = rng.choice(DOWN_REASONS)
    outcome = _outcome(rng, direction)
    urgent = direction == "up" and rng.random() < 0.12
    sla = float(cfg["sla_hours_urgent" if urgent else "sla_hours"])
    row: dict[str, Any] = {
        "id": rid, "person_id": person_id, "patient_record_id": record_id, "direction": direction, "status": outcome,
        "urgent": urgent, "source": "demo", "from_organization_id": sender.id, "to_organization_id": target.id,
        "to_department_id": dept, "reason": reason, "criteria_codes": [code],
        "diagnoses": [{"code": dx, "display": _ICD[dx]["zh"]}],
        "medications": [{"name": m, "dose": d} for m, d in rng.sample(MEDS, rng.randrange(0, 3))],
        "history_summary": "病史详见共享健康档案" if direction == "up" else None,
        "treatment_summary": "基层初步处理" if direction == "up" else "住院治疗",
        "discharge_summary": discharge, "rehab_plan": rehab, "requester_name": f"{sender.name}医生",
        "reserved_slot": False, "created_at": at - dt.timedelta(minutes=rng.randrange(5, 90)),
        "submitted_at": at, "due_at": at + dt.timedelta(hours=sla),
        "escalate_at": at + dt.timedelta(hours=float(cfg["escalate_hours_urgent" if urgent else "escalate_hours"])),
        "version_id": 1,
    }
    steps = [("submitted", at)]
    if outcome == "expired":
        if rng.random() < 0.9:
            row["escalated_at"] = row["escalate_at"]
            steps.append(("escalated", row["escalate_at"]))
        row["expired_at"] = row["due_at"]
        steps.append(("expired", row["due_at"]))
    elif outcome == "rejected":
        t = at + dt.timedelta(hours=rng.uniform(0.3, 20))
        row["rejected_at"], row["reject_reason"] = t, rng.choice(["专科床位已满，建议转往他院", "资料不全，请补充检查结果",
                                                                  "不符合转诊标准"])
        steps.append(("rejected", t))
    else:
        hours = rng.lognormvariate(1.2, 0.9) if not urgent else rng.uniform(0.1, 1.5)
        t = at + dt.timedelta(hours=min(hours, sla - 0.5))
        row["accepted_at"], row["receiver_name"] = t, f"{target.name}医生"
        row["access_until"] = t + dt.timedelta(days=int(cfg["access_days"]))
        steps.append(("accepted", t))
        if outcome == "cancelled":
            t2 = t + dt.timedelta(hours=rng.uniform(1, 48))
            row["cancelled_at"], row["cancel_reason"] = t2, "患者改变就诊计划"
            steps.append(("cancelled", t2))
        else:
            if direction == "up" and rng.random() < 0.55:
                t = t + dt.timedelta(minutes=rng.randrange(1, 30))
                row["scheduled_at"], row["reserved_slot"] = t, rng.random() < 0.8
                steps.append(("scheduled", t))
            t = t + dt.timedelta(hours=rng.uniform(2, 72))
            row["arrived_at"] = t
            steps.append(("arrived", t))
            t = t + dt.timedelta(days=rng.uniform(0.1, 10))
            row["completed_at"] = t
            steps.append(("completed", t))
        follow_org = target.id if direction == "down" else (
            sender.id if dx.startswith(tuple(cfg["chronic_code_prefixes"])) and outcome == "completed" else None)
        if follow_org:
            base = row["accepted_at"] if direction == "down" else row["completed_at"]
            due = base.astimezone(LOCAL_TZ).date() + dt.timedelta(days=int(cfg["followup_days"]))
            done = rng.random() < 0.85
            followups.append({"id": _hexid(rng), "referral_id": rid, "person_id": person_id,
                              "organization_id": follow_org, "kind": "visit", "due_on": due,
                              "status": "done" if done else "open",
                              "done_at": base + dt.timedelta(days=rng.uniform(2, 13)) if done else None,
                              "done_by": "demo" if done else None, "created_at": base, "updated_at": base})
    row["updated_at"] = steps[-1][1]
    rows.append(row)
    for state, t in steps:
        if state not in _HISTORY_EVENTS:
            continue
        events.append({
            "event_id": _hexid(rng), "occurred_at": t, "event_type": f"referral.{state}",
            "aggregate_type": "ServiceRequest", "aggregate_id": rid, "person_id": person_id, "published_at": t,
            "payload": {"referral_id": rid, "direction": direction, "from_organization_id": sender.id,
                        "to_organization_id": target.id, "to_department_id": row["to_department_id"],
                        "submitted_at": at.isoformat(), "at": t.isoformat(),
                        "reserved_slot": bool(row["reserved_slot"]) if state in ("scheduled", "arrived", "completed")
                        else False}})


def _open_today(session: Session, rng: random.Random, lead: Organization, branches: list[Organization],
                people: dict[str, list[tuple[str, str]]], per_branch: int = 3) -> int:
    """A working day's open referrals through the real service: drafts, submitted (some past the escalation
    time, some with a reserved slot), accepted, scheduled, arrived."""
    from onetrip.scheduling.models import Resource, Slot

    lead_p = _principal(lead, f"{lead.name}基层科")
    now = utcnow()
    n = 0
    slots = list(session.execute(
        select(Slot.id, Resource.exam_codes).join(Resource, Resource.id == Slot.resource_id).where(
            Slot.organization_id == lead.id, Slot.reserved_purpose.is_not(None), Slot.reserved_booked < Slot.reserved,
            Slot.start > now + dt.timedelta(hours=30)).order_by(Slot.start).limit(40)))
    # People with a validated resident ID (real-name booking); the history may use anyone.
    plan = ["draft", "submitted", "submitted-late", "accepted", "scheduled", "arrived", "submitted-down"]
    for i in range(max(len(plan), per_branch * len(branches))):  # every open state, spread over the branches
        branch, what = branches[i % len(branches)], plan[i % len(plan)]
        pool = people.get(branch.id) or []
        if not pool:
            continue
        branch_p = _principal(branch, f"{branch.name}医生")
        person_id, _ = pool[rng.randrange(len(pool))]
        try:
            if what == "submitted-down":
                lead_pool = people.get(lead.id) or []
                if not lead_pool:
                    continue
                person_id, _ = lead_pool[rng.randrange(len(lead_pool))]
                code, reason, dx, discharge, rehab = rng.choice(DOWN_REASONS)
                r = service.draft_referral(session, lead_p, person_id=person_id, direction="down",
                                           to_organization_id=branch.id, reason=reason, criteria_codes=[code],
                                           source="demo", diagnoses=[{"code": dx}], discharge_summary=discharge,
                                           rehab_plan=rehab, medications=[{"name": "阿司匹林肠溶片", "dose": "100 mg qd"}])
                service.submit(session, lead_p, r.id)
                n += 1
                continue
            code, reason, dx = rng.choice(UP_REASONS)
            r = service.draft_referral(session, branch_p, person_id=person_id, direction="up",
                                       to_organization_id=lead.id, reason=reason, criteria_codes=[code],
                                       source="demo", diagnoses=[{"code": dx}], urgent=rng.random() < 0.15,
                                       history_summary="症状反复两周", treatment_summary="基层对症处理",
                                       medications=[{"name": m, "dose": d} for m, d in rng.sample(MEDS, 2)])
            n += 1
            if what == "draft":
                continue
            slot = None
            if what in ("scheduled", "arrived") and slots:
                slot = slots.pop(0)
            rec_ok = session.get(PatientRecord, r.patient_record_id) if r.patient_record_id else None
            if slot and rec_ok is not None and rec_ok.id_number:
                try:  # a refused booking writes nothing: the referral is then sent without a slot
                    service.submit(session, branch_p, r.id, slot_id=slot[0], exam_code=slot[1][0])
                except ApiError:
                    service.submit(session, branch_p, r.id)
            else:
                service.submit(session, branch_p, r.id)
            if what == "submitted-late":
                back = dt.timedelta(hours=rng.uniform(25, 40))
                r.submitted_at -= back
                r.due_at -= back
                r.escalate_at -= back
                r.created_at -= back
            if what in ("accepted", "scheduled", "arrived"):
                service.accept(session, lead_p, r.id)
            if what == "arrived":
                service.arrive(session, lead_p, r.id)
        except ApiError:
            continue
    session.flush()
    return n


def load_referrals(session: Session, seed: int, today: dt.date, *, scale: float = 1.0) -> dict[str, int]:
    """Load the demo referrals (idempotent: does nothing when demo referrals exist). ``scale`` multiplies
    the daily rates (tests use a fraction). Flushes; the caller commits."""
    if session.scalar(select(Referral.id).where(Referral.source == "demo").limit(1)):
        return {"referrals": 0}
    rng = random.Random(seed * 7919 + 6)
    cfg = service.settings(session)
    leads = list(session.scalars(select(Organization).where(Organization.org_type == "lead_hospital",
                                                            Organization.active.is_(True)).order_by(Organization.code)))
    total = opened = 0
    for lead in leads:
        branches = list(session.scalars(select(Organization).where(
            Organization.org_type == "branch_centre", Organization.active.is_(True),
            Organization.community_id == lead.community_id).order_by(Organization.code))) if lead.community_id else []
        if not branches:
            continue
        dept = session.scalar(select(Department.id).where(Department.organization_id == lead.id,
                                                          Department.code == cfg.get("receiving_department_code", "PCD")))
        people: dict[str, list[tuple[str, str]]] = defaultdict(list)
        org_ids = [lead.id] + [b.id for b in branches]
        for pid, rid, oid in session.execute(
                select(PatientRecord.person_id, PatientRecord.id, PatientRecord.organization_id).where(
                    PatientRecord.organization_id.in_(org_ids), PatientRecord.deleted_at.is_(None),
                    PatientRecord.id_number.is_not(None)).order_by(PatientRecord.id)):
            if len(people[oid]) < 3000:
                people[oid].append((pid, rid))
        rows: list[dict] = []
        followups: list[dict] = []
        events: list[dict] = []
        share = scale * (1.0 if lead.grade == "3A" else 0.2)  # the 三甲 lead hospital takes most
        year_ago = today - dt.timedelta(days=365)
        _history(rng, lead=lead, branches=branches, dept=dept, people=people,
                 start=year_ago - dt.timedelta(days=365), end=year_ago - dt.timedelta(days=1),
                 rate=share * (UP_PER_DAY + DOWN_PER_DAY) / GROWTH, rows=rows, followups=followups, events=events,
                 cfg=cfg)
        _history(rng, lead=lead, branches=branches, dept=dept, people=people, start=year_ago,
                 end=today - dt.timedelta(days=3), rate=share * (UP_PER_DAY + DOWN_PER_DAY), rows=rows,
                 followups=followups, events=events, cfg=cfg)
        keys = {k for row in rows for k in row}
        rows = [{k: row.get(k) for k in keys} for row in rows]  # one shape for executemany
        for i in range(0, len(rows), 5000):
            session.execute(insert(Referral.__table__), rows[i:i + 5000])
        for i in range(0, len(followups), 5000):
            session.execute(insert(ReferralFollowUp.__table__), followups[i:i + 5000])
        for i in range(0, len(events), 10000):
            session.execute(insert(OutboxEvent.__table__), events[i:i + 10000])
        total += len(rows)
        opened += _open_today(session, rng, lead, branches, people)
    session.flush()
    return {"referrals": total + opened, "open": opened}
