"""The demo district gets resources, templates and two weeks of slots, partly booked."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from onetrip.demo.loader import load_district
from onetrip.demo.scheduling import load_scheduling
from onetrip.kit.clock import local_date, utcnow
from onetrip.registry.models import Organization
from onetrip.scheduling.models import Appointment, Resource, Slot


def test_demo_scheduling(db):
    today = local_date(utcnow()) + dt.timedelta(days=1)
    with db.session() as s:
        load_district(s, residents=600, seed=11, batch_size=300, batch_commit=s.commit)
        summary = load_scheduling(s, seed=11, today=today, max_bookings=200)
        s.commit()
    assert summary["resources"] > 0 and summary["slots"] > 1000 and 0 < summary["appointments"] <= 200
    with db.session() as s:
        with_resources = set(s.scalars(select(Resource.organization_id).distinct()))
        hospitals = set(s.scalars(select(Organization.id).where(
            Organization.org_type.in_(["lead_hospital", "district_hospital", "branch_centre"]))))
        assert with_resources == hospitals
        assert s.scalar(select(func.count()).select_from(Appointment)) == summary["appointments"]
        assert s.scalar(select(func.count()).select_from(Slot).where(Slot.booked > 0)) > 0
        assert s.scalar(select(func.count()).select_from(Slot).where(Slot.booked == 0)) > 0
        again = load_scheduling(s, seed=11, today=today, max_bookings=0)
        assert again["resources"] == 0 and again["slots"] == 0  # idempotent
