"""Demo district visits (就诊) for the cockpit: two years up to ``today`` across the county's hospitals,
branch centres and stations, plus visits outside the county, so year-on-year figures exist. The primary
share rises from about 62 % to 68 % (the seeds publish 基层就诊率 67.95 %, 区域就诊率 94.2 %).
Also the catchment denominators of the primary institutions. Deterministic for a seed; bulk inserts
(COPY on PostgreSQL) without outbox events — call ``onetrip.analytics.facts.rebuild`` afterwards."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections import defaultdict
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from onetrip.analytics.models import AnalyticsCatchment, Encounter
from onetrip.db.bulk import bulk_insert
from onetrip.kit.clock import utcnow
from onetrip.persons.models import Person
from onetrip.registry.models import Department, Organization
from onetrip.rules.service import rule_values

VISITS_PER_RESIDENT_YEAR = 1.5  # demo volume, kept small for a fast demo (real districts: ~5 visits per resident a year)
COUNTY_TYPES = ("lead_hospital", "district_hospital", "branch_centre", "station")
OUTSIDE = ("浙大一院", "省人民医院", "市第一医院", "上海瑞金医院")


def _share(start: float, end: float, t: float) -> float:
    return start + (end - start) * t


def load_encounters(session: Session, seed: int, today: dt.date, *, days: int = 730,
                    per_resident_year: float = VISITS_PER_RESIDENT_YEAR) -> dict[str, Any]:
    """Insert the visits of ``days`` days up to ``today`` (flushes; the caller commits)."""
    if session.scalar(select(func.count()).select_from(Encounter)):
        return {"encounters": 0}
    rng = random.Random(seed * 7919 + 8)
    orgs = list(session.scalars(select(Organization).where(Organization.org_type.in_(COUNTY_TYPES))
                                .order_by(Organization.code)))
    if not orgs:
        return {"encounters": 0}
    primary_types = set(rule_values(session, "analytics").get("primary_org_types") or [])
    primary = [o for o in orgs if o.org_type in primary_types]
    county = [o for o in orgs if o.org_type not in primary_types]
    depts: dict[str, list[str]] = defaultdict(list)
    for d_id, org_id in session.execute(select(Department.id, Department.organization_id).order_by(Department.id)):
        depts[org_id].append(d_id)
    persons = list(session.scalars(select(Person.id).where(Person.merged_into_id.is_(None)).order_by(Person.id)
                                   .limit(5000)))
    if not persons:
        return {"encounters": 0}
    communities = sorted({o.community_id for o in orgs if o.community_id})
    n_residents = session.scalar(select(func.count()).select_from(Person)) or len(persons)
    per_day = n_residents * per_resident_year / 365
    # weights: bigger hospitals and centres see more patients than stations
    weight = {"lead_hospital": 6.0, "district_hospital": 3.0, "branch_centre": 3.0, "station": 0.6}
    p_w = [weight[o.org_type] for o in primary]
    c_w = [weight[o.org_type] for o in county]
    now = utcnow()
    cols = ("id", "person_id", "patient_record_id", "organization_id", "department_id", "community_id",
            "organization_level", "in_county", "encounter_class", "visit_date", "status", "outside_institution",
            "source", "created_at", "updated_at")
    rows: list[tuple] = []
    start = today - dt.timedelta(days=days - 1)
    for i in range(days):
        day = start + dt.timedelta(days=i)
        t = i / max(days - 1, 1)
        factor = 0.55 if day.weekday() >= 5 else 1.0
        n = int(per_day * factor * rng.uniform(0.85, 1.15))
        p_primary, p_in = _share(0.62, 0.68, t), _share(0.925, 0.945, t)
        for _ in range(n):
            cls = "IMP" if rng.random() < 0.03 else ("EMER" if rng.random() < 0.08 else "AMB")
            person = rng.choice(persons)
            if rng.random() >= (p_in if cls != "IMP" else 0.86):
                rows.append((uuid.uuid4().hex, person, None, None, None, rng.choice(communities) if communities
                             else None, "outside", False, cls, day, "finished", rng.choice(OUTSIDE), "demo", now,
                             now))
                continue
            if cls != "IMP" and primary and rng.random() < p_primary:
                org = rng.choices(primary, p_w)[0]
                level = "primary"
            else:
                org = rng.choices(county, c_w)[0] if county else rng.choice(primary)
                level = "county" if org.org_type not in primary_types else "primary"
            dept = rng.choice(depts[org.id]) if depts.get(org.id) else None
            rows.append((uuid.uuid4().hex, person, None, org.id, dept, org.community_id, level, True, cls, day,
                         "finished", None, "demo", now, now))
    bulk_insert(session, Encounter.__table__, rows, columns=cols)
    total_persons = n_residents
    share = total_persons / max(len(primary), 1)
    for o in primary:
        if session.get(AnalyticsCatchment, o.id) is None:
            residents = int(share * (1.6 if o.org_type == "branch_centre" else 0.4))
            session.add(AnalyticsCatchment(organization_id=o.id, residents=residents,
                                           hypertension_estimated=int(residents * 0.2),
                                           diabetes_estimated=int(residents * 0.075)))
    session.flush()
    return {"encounters": len(rows)}
