"""Queries of the immunisation domain's own tables."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from onetrip.immunization.models import (
    ColdChainAlarm,
    Fridge,
    ScheduleDose,
    Vaccination,
    VaccineLot,
    VaccinePackage,
    VaccineProduct,
)


def schedule_doses(session: Session) -> list[ScheduleDose]:
    """Every row of every edition (a few dozen per edition), in a stable order."""
    return list(session.scalars(select(ScheduleDose).order_by(ScheduleDose.effective_from, ScheduleDose.edition,
                                                              ScheduleDose.id)))


def schedule_keys(session: Session) -> set[tuple[str, str, int]]:
    rows = session.execute(select(ScheduleDose.edition, ScheduleDose.series, ScheduleDose.dose_number))
    return {(e, s, n) for e, s, n in rows}


# --- vaccines, packages, vaccinations (issue 20 point 2) ----------------------------------------------------

_PKG = VaccinePackage.__table__
# Built once: one dose taken from a package only while one is left (R6.6: never beyond its doses). The WHERE is
# decided on the row as the UPDATE gets it — PostgreSQL re-checks it after a concurrent writer's lock, SQLite
# runs writers one at a time — so of two scans of the last dose exactly one takes it (as the booking's slot).
_TAKE_DOSE = (update(_PKG)
              .where(_PKG.c.id == bindparam("package_id"), _PKG.c.doses_left > 0)
              .values(doses_left=_PKG.c.doses_left - 1, updated_at=bindparam("now")))


def take_dose(session: Session, package_id: str, now: dt.datetime) -> bool:
    """Take one dose of the package atomically; False when none is left."""
    return session.connection().execute(_TAKE_DOSE, {"package_id": package_id, "now": now}).rowcount == 1


def product(session: Session, vaccine_code: str, name: str, holder: str, specification: str) -> VaccineProduct | None:
    return session.scalar(select(VaccineProduct).where(
        VaccineProduct.vaccine_code == vaccine_code, VaccineProduct.name == name, VaccineProduct.holder == holder,
        VaccineProduct.specification == specification))


def lot(session: Session, product_id: str, lot_number: str) -> VaccineLot | None:
    return session.scalar(select(VaccineLot).where(VaccineLot.product_id == product_id,
                                                   VaccineLot.lot_number == lot_number))


def existing_codes(session: Session, codes: list[str]) -> list[str]:
    return list(session.scalars(select(VaccinePackage.trace_code).where(VaccinePackage.trace_code.in_(codes))))


def package_by_code(session: Session, code: str) -> tuple[VaccinePackage, VaccineLot, VaccineProduct] | None:
    row = session.execute(
        select(VaccinePackage, VaccineLot, VaccineProduct)
        .join(VaccineLot, VaccineLot.id == VaccinePackage.lot_id)
        .join(VaccineProduct, VaccineProduct.id == VaccineLot.product_id)
        .where(VaccinePackage.trace_code == code)).first()
    return (row[0], row[1], row[2]) if row else None


def stock(session: Session, organization_id: str | None) -> list[Any]:
    """Doses left per fridge, product and lot of one clinic (packages with a dose left)."""
    return list(session.execute(
        select(VaccinePackage.fridge_id, Fridge.name.label("fridge_name"), VaccineProduct.vaccine_code,
               VaccineProduct.name, VaccineProduct.holder, VaccineLot.lot_number, VaccineLot.expiry,
               VaccineLot.status, func.count(VaccinePackage.id).label("packages"),
               func.sum(VaccinePackage.doses_left).label("doses_left"))
        .join(VaccineLot, VaccineLot.id == VaccinePackage.lot_id)
        .join(VaccineProduct, VaccineProduct.id == VaccineLot.product_id)
        .outerjoin(Fridge, Fridge.id == VaccinePackage.fridge_id)
        .where(VaccinePackage.doses_left > 0,
               *([VaccinePackage.organization_id == organization_id] if organization_id else []))
        .group_by(VaccinePackage.fridge_id, Fridge.name, VaccineProduct.vaccine_code, VaccineProduct.name,
                  VaccineProduct.holder, VaccineLot.lot_number, VaccineLot.expiry, VaccineLot.status)
        .order_by(Fridge.name, VaccineProduct.vaccine_code, VaccineLot.expiry)))


def doses_given(session: Session, person_id: str) -> list[Vaccination]:
    """The person's recorded doses (entered-in-error ones excluded), oldest first: the forecaster's history."""
    return list(session.scalars(select(Vaccination).where(Vaccination.person_id == person_id,
                                                          Vaccination.status == "completed")
                                .order_by(Vaccination.occurred_at)))


def vaccinations_since(session: Session, organization_id: str | None, since: dt.datetime) -> list[Vaccination]:
    """Doses since ``since`` at one clinic (None: every clinic — the operator's view)."""
    q = select(Vaccination).where(Vaccination.occurred_at >= since, Vaccination.status == "completed")
    if organization_id:
        q = q.where(Vaccination.organization_id == organization_id)
    return list(session.scalars(q.order_by(Vaccination.occurred_at.desc())))


def fridge_by_name(session: Session, organization_id: str, name: str) -> Fridge | None:
    return session.scalar(select(Fridge).where(Fridge.organization_id == organization_id, Fridge.name == name))


def vaccination_search(session: Session, *, person_id: str | None, organization_id: str | None,
                       vaccine_codes: list[str] | None, when: Any, count: int, offset: int) -> list[Vaccination]:
    """FHIR Immunization search: by person (every clinic) or a clinic, vaccine code, date (a DateSearch)."""
    q = select(Vaccination)
    if person_id is not None:
        q = q.where(Vaccination.person_id == person_id)
    if organization_id is not None:
        q = q.where(Vaccination.organization_id == organization_id)
    if vaccine_codes:
        q = q.where(Vaccination.vaccine_code.in_(vaccine_codes))
    if when is not None:
        q = q.where(when.condition(Vaccination.occurred_at))
    return list(session.scalars(q.order_by(Vaccination.occurred_at.desc(), Vaccination.id)
                                .offset(offset).limit(count + 1)))


def fridge_lots_in_stock(session: Session, fridge_id: str) -> list[VaccineLot]:
    """The lots with a dose left in the fridge (what an excursion puts in quarantine)."""
    ids = select(VaccinePackage.lot_id).where(VaccinePackage.fridge_id == fridge_id, VaccinePackage.doses_left > 0)
    return list(session.scalars(select(VaccineLot).where(VaccineLot.id.in_(ids)).order_by(VaccineLot.id)))


def open_alarms(session: Session, *, fridge_id: str | None = None, organization_id: str | None = None
                ) -> list[ColdChainAlarm]:
    q = select(ColdChainAlarm).where(ColdChainAlarm.status == "open")
    if fridge_id is not None:
        q = q.where(ColdChainAlarm.fridge_id == fridge_id)
    if organization_id is not None:
        q = q.where(ColdChainAlarm.organization_id == organization_id)
    return list(session.scalars(q.order_by(ColdChainAlarm.created_at)))


def alarms(session: Session, organization_id: str | None, status: str | None, limit: int = 200
           ) -> list[ColdChainAlarm]:
    q = select(ColdChainAlarm)
    if organization_id is not None:
        q = q.where(ColdChainAlarm.organization_id == organization_id)
    if status:
        q = q.where(ColdChainAlarm.status == status)
    return list(session.scalars(q.order_by(ColdChainAlarm.created_at.desc()).limit(limit)))
