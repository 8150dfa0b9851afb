"""The immunisation demo (issue 20 point 6, `onetrip demo`) on SQLite and PostgreSQL: one clinic with a fridge,
stock with trace codes, temperature readings, a vaccinator, and incomplete but realistic histories for every child
under seven — so the desk, the forecast and the coverage panel show something."""

from __future__ import annotations

import datetime as dt
import time

from sqlalchemy import func, select

from onetrip.demo.immunization import load_immunization
from onetrip.demo.loader import load_district
from onetrip.immunization import interface, service
from onetrip.immunization.models import Fridge, TemperatureReading, Vaccination, VaccinePackage
from onetrip.kit.clock import local_date, utcnow
from onetrip.persons.models import PatientRecord, Person
from onetrip.registry.models import Organization, User

TODAY = local_date(utcnow())


def test_demo_clinic_stock_readings_and_histories(db):
    with db.session() as s:
        load_district(s, residents=1500, seed=11)
        s.commit()
        started = time.perf_counter()
        summary = load_immunization(s, seed=11, today=TODAY, password="Lantern-Harbour-26!")
        s.commit()
        took = time.perf_counter() - started
        assert load_immunization(s, seed=11, today=TODAY)["loaded_before"] is True  # a second run adds nothing
    assert took < 20, took  # seconds, not minutes
    assert summary["vaccines"] == 11 and summary["readings"] == 14 * 2 + 48
    assert summary["children"] > 20 and summary["doses"] > 10 * summary["children"]
    with db.session() as s:
        clinic = s.scalars(select(Organization).where(Organization.code == summary["clinic"])).one()
        assert s.scalar(select(func.count()).select_from(Fridge).where(Fridge.organization_id == clinic.id)) == 1
        assert s.scalar(select(func.count()).select_from(VaccinePackage).where(VaccinePackage.doses_left > 0)) > 200
        assert all(len(c) == 20 for c in s.scalars(select(VaccinePackage.trace_code)))
        temps = list(s.scalars(select(TemperatureReading.celsius)))
        assert temps and all(2 <= t <= 8 for t in temps)
        assert s.scalar(select(User).where(User.username == f"vaccinator.{clinic.code.lower()}")) is not None
        # every child under seven is registered at the clinic (the desk finds them)
        born_from = dt.date(TODAY.year - 7, TODAY.month, 1)
        kids = set(s.scalars(select(Person.id).where(Person.birth_date >= born_from, Person.birth_date < TODAY,
                                                     Person.merged_into_id.is_(None))))
        at_clinic = set(s.scalars(select(PatientRecord.person_id).where(PatientRecord.organization_id == clinic.id)))
        assert kids <= at_clinic
        # histories are realistic: mostly complete, some series stopped → overdue doses for the forecast
        statuses = []
        for person_id in sorted(kids)[:80]:
            birth = s.get(Person, person_id).birth_date
            statuses += [f.status for f in service.forecast_child(
                s, service.Child(birth, "female"), TODAY, service.history(s, person_id))]
        assert statuses.count("complete") > statuses.count("overdue") > 0
        assert s.scalar(select(func.max(Vaccination.occurred_at))).date() < TODAY + dt.timedelta(days=1)
        # the coverage panel has figures, below 100 % somewhere
        res = interface.coverage(s, assessed=TODAY)
        totals = interface.coverage_totals(res.cells)
        assert res.townships and totals
        rates = [c.cumulative_rate for c in totals if c.cumulative_rate is not None]
        assert min(rates) < 1.0 and sum(rates) / len(rates) > 0.75
