"""Demo immunisation (issue 20): one vaccination clinic (the first branch centre) with a fridge, vaccine products,
lots and packages with trace codes received through the service, a vaccinator account, two weeks of temperature
readings, and realistic — mostly complete, sometimes late, sometimes stopped — vaccination histories for every
child under seven in the district, so the desk, the forecast and the coverage panel show something.

Deterministic for a seed (dates relative to ``today``); seconds for the default district. The histories are
records kept by the clinic before today (the R6.6 record: product, holder, trace code, lot, expiry, vaccinator),
written in bulk; today's doses go through the desk as usual.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from onetrip.auth.service import create_user
from onetrip.immunization import service
from onetrip.immunization.forecast import add_age
from onetrip.immunization.models import Fridge, TemperatureReading, Vaccination, VaccinePackage
from onetrip.immunization.schemas import InboundIn
from onetrip.kit.clock import local_datetime, utcnow
from onetrip.kit.principal import cli_principal
from onetrip.persons.models import PatientRecord, Person
from onetrip.registry.models import Organization

# vaccine code → (product name, holder, specification, route, site); fictional holders
PRODUCTS = {
    "HepB": ("乙型肝炎疫苗（重组酵母）10μg", "沧澜生物制品有限公司", "0.5 mL/支", "IM", "right-deltoid"),
    "BCG": ("皮内注射用卡介苗", "沧澜生物制品有限公司", "0.1 mL/支", "ID", "left-deltoid"),
    "IPV": ("脊髓灰质炎灭活疫苗", "青溪疫苗股份有限公司", "0.5 mL/支", "IM", "left-thigh"),
    "bOPV": ("二价脊髓灰质炎减毒活疫苗（滴剂）", "青溪疫苗股份有限公司", "1 mL/支", "PO", "oral"),
    "DTaP": ("吸附无细胞百白破联合疫苗", "沧澜生物制品有限公司", "0.5 mL/支", "IM", "right-deltoid"),
    "DT": ("吸附白喉破伤风联合疫苗", "沧澜生物制品有限公司", "0.5 mL/支", "IM", "left-deltoid"),
    "MMR": ("麻腮风联合减毒活疫苗", "青溪疫苗股份有限公司", "0.5 mL/支", "SC", "right-deltoid"),
    "MPSV-A": ("A群脑膜炎球菌多糖疫苗", "沧澜生物制品有限公司", "0.5 mL/支", "SC", "left-deltoid"),
    "JE-L": ("乙型脑炎减毒活疫苗", "青溪疫苗股份有限公司", "0.5 mL/支", "SC", "left-deltoid"),
    "HepA-L": ("甲型肝炎减毒活疫苗", "青溪疫苗股份有限公司", "0.5 mL/支", "SC", "right-deltoid"),
    "MPSV-AC": ("A群C群脑膜炎球菌多糖疫苗", "沧澜生物制品有限公司", "0.5 mL/支", "SC", "left-deltoid"),
}
PACKAGES_PER_LOT = 30
YEARS = 7  # children under seven get a history
KINDS = (  # share of children, chance each due dose is given, the largest delay after the due age (days)
    (0.70, 0.985, 20), (0.25, 0.92, 60), (0.05, 0.6, 150))


def _code(rng: random.Random) -> str:
    return "8" + "".join(rng.choice("0123456789") for _ in range(19))


def load_immunization(session: Session, *, seed: int, today: dt.date, password: str | None = None,
                      max_children: int = 20_000) -> dict[str, Any]:
    """Load the clinic, its stock, readings and the children's histories. Flushes; the caller commits. Does
    nothing when the clinic already has a fridge (loaded before)."""
    rng = random.Random(f"onetrip-demo:{seed}:immunization")
    op = cli_principal("demo")
    service.seed_schedule(session)
    clinic = session.scalars(select(Organization).where(Organization.org_type == "branch_centre")
                             .order_by(Organization.code)).first()
    if clinic is None:
        return {"clinic": None}
    if session.scalar(select(Fridge.id).where(Fridge.organization_id == clinic.id).limit(1)) is not None:
        return {"clinic": clinic.code, "loaded_before": True}
    fridge, _key = service.create_fridge(session, op, clinic.id, "冷藏柜1", False)
    if password:
        create_user(session, f"vaccinator.{clinic.code.lower()}", password, ["vaccinator"], f"{clinic.name}接种员",
                    clinic.id)
    # Stock: one lot per vaccine, received through the service (trace codes checked, audited).
    stock: dict[str, tuple[str, str, str, str, dt.date]] = {}  # code → product id, package id, trace code, lot, expiry
    for i, (code, (name, holder, spec, _route, _site)) in enumerate(PRODUCTS.items()):
        expiry = today + dt.timedelta(days=200 + 30 * i)
        lot, product, _n = service.receive_lot(session, op, InboundIn(
            organization_id=clinic.id, fridge_id=fridge.id, vaccine_code=code, product_name=name, holder=holder,
            specification=spec, doses_per_package=1, lot_number=f"{today.year}{i + 1:02d}{rng.randint(100, 999)}",
            expiry=expiry, trace_codes=[_code(rng) for _ in range(PACKAGES_PER_LOT)],
            inbound_ref=f"CDC-{today:%Y%m}-{i + 1:03d}"))
        # The histories below name the lot's first package, used up (a demo simplification: one recorded
        # package per vaccine); the others are in the fridge for the desk.
        pkg = session.execute(select(VaccinePackage.id, VaccinePackage.trace_code)
                              .where(VaccinePackage.lot_id == lot.id).order_by(VaccinePackage.trace_code)).first()
        session.execute(update(VaccinePackage).where(VaccinePackage.id == pkg.id).values(doses_left=0))
        stock[code] = (product.id, pkg.id, pkg.trace_code, lot.lot_number, expiry)
    readings = _temperatures(session, fridge.id, today, rng)
    doses, children = _histories(session, rng, clinic.id, today, stock, max_children)
    session.flush()
    return {"clinic": clinic.code, "fridge": fridge.id, "children": children, "doses": doses,
            "readings": readings, "vaccines": len(stock)}


def _temperatures(session: Session, fridge_id: str, today: dt.date, rng: random.Random) -> int:
    """Two weeks of the manual morning and afternoon record (R6.7: ≥ 6 h apart) and hourly sensor readings of
    the last two days, all within 2–8 °C."""
    now = utcnow()
    rows = []
    for back in range(14, 0, -1):
        day = today - dt.timedelta(days=back)
        for hhmm in ("08:30", "16:30"):
            rows.append({"fridge_id": fridge_id, "measured_at": local_datetime(day, hhmm),
                         "celsius": round(rng.uniform(3.5, 6.5), 1), "source": "manual", "recorded_by": "demo"})
    for hours in range(48, 0, -1):
        rows.append({"fridge_id": fridge_id, "measured_at": now - dt.timedelta(hours=hours),
                     "celsius": round(rng.uniform(3.8, 6.2), 1), "source": "sensor", "recorded_by": None})
    session.add_all([TemperatureReading(excursion=False, **r) for r in rows])
    return len(rows)


def _histories(session: Session, rng: random.Random, clinic_id: str, today: dt.date,
               stock: dict[str, tuple[str, str, str, str, dt.date]], max_children: int) -> tuple[int, int]:
    sched = service.schedule(session).rows
    editions = {e: [r for r in sched if r.edition == e and r.alt_rank == 1 and r.sex is None]
                for e in {r.edition for r in sched}}
    first = min(editions, key=lambda e: min(r.effective_from for r in editions[e]))
    latest = max(editions, key=lambda e: min(r.effective_from for r in editions[e]))
    latest_from = min(r.effective_from for r in editions[latest])
    born_from = dt.date(today.year - YEARS, today.month, 1)
    id_rng = random.Random(rng.random())

    def new_id() -> str:
        return uuid.UUID(int=id_rng.getrandbits(128), version=4).hex

    kids = _registered_children(session, clinic_id, born_from, today, max_children, new_id)
    rows: list[dict[str, Any]] = []
    children = len(kids)
    for person_id, birth, record_id in kids:
        roll, (share_sum, kind) = rng.random(), (0.0, KINDS[-1])
        for k in KINDS:
            share_sum += k[0]
            if roll < share_sum:
                kind = k
                break
        _share, p_given, max_delay = kind
        rows_for = editions[latest] if birth >= latest_from else editions[first]
        visit_delay: dict[str, int] = {}
        given: dict[str, list[dt.date]] = {}
        stopped: set[str] = set()
        for row in sorted(rows_for, key=lambda r: (add_age(birth, r.min_age), r.series, r.dose_number)):
            if row.series in stopped:
                continue
            delay = visit_delay.setdefault(row.min_age, rng.randint(0, max_delay) if row.min_age != "0d" else
                                           (0 if rng.random() < 0.96 else rng.randint(1, 4)))  # birth doses: 24 h
            day = add_age(birth, row.min_age) + dt.timedelta(days=delay)
            for iv in row.intervals:  # R6.2: never before the interval after an earlier dose
                earlier = given.get(row.series, [])
                if len(earlier) >= iv.from_dose:
                    day = max(day, add_age(earlier[iv.from_dose - 1], iv.min))
            if day >= today:
                continue
            if rng.random() > p_given:
                stopped.add(row.series)  # missed: the series stays incomplete (the forecast shows it overdue)
                continue
            code = "DTaP" if row.vaccine_code == "DT" and day >= latest_from else row.vaccine_code
            if code not in stock:
                continue
            given.setdefault(row.series, []).append(day)
            product_id, package_id, trace, lot, expiry = stock[code]
            _name, holder, _spec, route, site = PRODUCTS[code]
            rows.append({
                "id": new_id(), "person_id": person_id,
                "patient_record_id": record_id, "organization_id": clinic_id, "vaccine_code": code,
                "dose_number": row.dose_number, "product_id": product_id, "holder": holder,
                "package_id": package_id, "trace_code": trace, "lot_number": lot, "expiry": expiry,
                "occurred_at": local_datetime(day, "09:30"), "vaccinator_id": "demo",
                "vaccinator_name": "示范接种员", "site": site, "route": route, "status": "completed",
                "created_at": utcnow(), "updated_at": utcnow()})
    for start in range(0, len(rows), 5000):
        session.execute(insert(Vaccination.__table__), rows[start:start + 5000])
    return len(rows), children


def _registered_children(session: Session, clinic_id: str, born_from: dt.date, today: dt.date, limit: int,
                         new_id: Any) -> list[tuple[str, dt.date, str]]:
    """(person, birth date, the clinic's record) of every child under seven; a child not yet registered at the
    clinic is registered there (a vaccination clinic registers every child it vaccinates)."""
    persons = session.execute(
        select(Person).where(Person.birth_date >= born_from, Person.birth_date < today,
                             Person.merged_into_id.is_(None), Person.deceased.is_(False))
        .order_by(Person.id).limit(limit)).scalars().all()
    have = dict(session.execute(select(PatientRecord.person_id, PatientRecord.id).where(
        PatientRecord.organization_id == clinic_id, PatientRecord.person_id.in_(
            select(Person.id).where(Person.birth_date >= born_from, Person.birth_date < today)))).all())
    now = utcnow()
    new = []
    for n, p in enumerate(persons, 1):
        if p.id in have:
            continue
        have[p.id] = rid = new_id()
        new.append({"id": rid, "person_id": p.id, "organization_id": clinic_id, "mrn": f"IMM{n:06d}",
                    "id_number": p.id_number, "name": p.name, "name_pinyin": p.name_pinyin, "sex": p.sex,
                    "birth_date": p.birth_date, "phone": p.phone, "active": True,
                    "link_method": "id_number" if p.id_number else "manual", "province": p.province,
                    "city": p.city, "district": p.district, "street": p.street, "address_line": p.address_line,
                    "created_at": now, "updated_at": now, "version_id": 1})
    if new:
        session.execute(insert(PatientRecord.__table__), new)
    return [(p.id, p.birth_date, have[p.id]) for p in persons]
