"""Demo district scheduling: resources, weekly templates and the next two weeks of slots, partly
booked, for every hospital and branch centre the demo loaded. Deterministic for a seed."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from onetrip.kit.clock import utcnow
from onetrip.kit.errors import Conflict, Unprocessable
from onetrip.kit.principal import cli_principal
from onetrip.persons.models import PatientRecord
from onetrip.registry.models import Organization
from onetrip.scheduling import repository as repo
from onetrip.scheduling import service, tasks
from onetrip.scheduling.models import Channel

# (code, name, kind, modality, exams, slot minutes, saturday morning?) per institution type
_CT = ("CT", "CT室", "device", "CT", ["CT_HEAD", "CT_CHEST", "CT_ABD_C", "CTA_COR"], 20)
_MR = ("MR", "磁共振室", "device", "MR", ["MR_HEAD", "MR_LSPINE"], 30)
_DR = ("DR", "DR摄片室", "device", "DX", ["DR_CHEST"], 10)
_US = ("US", "超声诊室", "device", "US", ["US_ABD", "US_THY", "US_PELVIS"], 15)
_ES = ("ES", "内镜室", "room", "ES", ["ES_GASTRO", "ES_COLON"], 30)
_RF = ("RF", "胃肠造影室", "device", "RF", ["RF_BARIUM"], 20)
_IM = ("IM", "内科门诊", "clinic_session", "CLINIC", ["CLINIC_IM"], 10)
LAYOUT = {
    "lead_hospital": [(_CT, 2), (_MR, 1), (_DR, 2), (_US, 3), (_ES, 1), (_RF, 1), (_IM, 2)],
    "district_hospital": [(_CT, 1), (_DR, 1), (_US, 2), (_ES, 1), (_IM, 1)],
    "branch_centre": [(_DR, 1), (_US, 1), (_IM, 1)],
}
BLOCKS = (("08:00", "11:30"), ("13:30", "17:00"))
CHANNELS = [c.value for c in Channel]


def load_scheduling(session: Session, *, seed: int, today: dt.date, days: int = 14,
                    max_bookings: int = 1500) -> dict[str, Any]:
    """Create the resources, templates and slots for ``days`` days from ``today`` and book a share of the
    first week (busier the sooner) through the booking service, for patients registered at the
    institution with a valid resident ID. Flushes; the caller commits."""
    rng = random.Random(seed)
    op = cli_principal("demo")
    service.seed_catalogue(session)
    orgs = list(session.scalars(select(Organization).where(Organization.org_type.in_(list(LAYOUT)))
                                .order_by(Organization.code)))
    resources = 0
    for org in orgs:
        if repo.resources(session, organization_id=org.id, active_only=False):
            continue  # loaded already
        for (code, name, kind, modality, exams, minutes), count in LAYOUT[org.org_type]:
            for i in range(1, count + 1):
                r = service.create_resource(session, op, organization_id=org.id, code=f"{code}{i}",
                                            name=f"{name}{i if count > 1 else ''}", kind=kind, modality=modality,
                                            exam_codes=exams)
                share = 0.0 if org.org_type == "branch_centre" else None  # None: the rule table's 20% (R2.4)
                for wd in range(5):
                    for start, end in BLOCKS:
                        service.add_template(session, op, r.id, weekday=wd, start_time=start, end_time=end,
                                             slot_minutes=minutes, reserved_share=share)
                if org.org_type == "lead_hospital" and modality in ("CT", "DX", "US"):
                    service.add_template(session, op, r.id, weekday=5, start_time="08:00", end_time="11:30",
                                         slot_minutes=minutes, reserved_share=share)
                resources += 1
    slots = tasks.generate_slots(session, start=today, days=days)
    booked = 0
    now = utcnow()
    for org in orgs:
        patients = list(session.scalars(select(PatientRecord.id).where(
            PatientRecord.organization_id == org.id, PatientRecord.id_number.is_not(None),
            PatientRecord.deleted_at.is_(None)).order_by(PatientRecord.id).limit(400)))
        if not patients:
            continue
        res = {r.id: r for r in repo.resources(session, organization_id=org.id)}
        for s in repo.slots(session, resource_ids=list(res), start=now, end=now + dt.timedelta(days=7),
                            only_free=True):
            if booked >= max_bookings:
                break
            days_ahead = (s.start - now).days
            if rng.random() > 0.6 - 0.08 * days_ahead:
                continue
            try:
                with session.begin_nested():
                    service.book(session, op, slot_id=s.id, patient_record_id=rng.choice(patients),
                                 exam_code=rng.choice(res[s.resource_id].exam_codes), channel=rng.choice(CHANNELS))
                booked += 1
            except (Conflict, Unprocessable):
                continue
    session.flush()
    return {"resources": resources, "slots": slots, "appointments": booked}
