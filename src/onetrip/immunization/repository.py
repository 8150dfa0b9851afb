"""Queries of the immunisation domain's own tables."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import DateTime, bindparam, func, select, true, type_coerce, update
from sqlalchemy.orm import Session

from onetrip.immunization.coverage import ChildRow
from onetrip.immunization.forecast import Dose
from onetrip.immunization.models import (
    AefiReport,
    ColdChainAlarm,
    Fridge,
    Invitation,
    Programme,
    Reminder,
    ScheduleDose,
    TemperatureReading,
    Vaccination,
    VaccineLot,
    VaccinePackage,
    VaccineProduct,
)
from onetrip.kit.clock import LocalDates
from onetrip.persons.models import Person


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
    q = select(Vaccination).where(Vaccination.occurred_at >= since, Vaccination.status == "completed",
                                  Vaccination.source == "desk")  # doses given here, not history from elsewhere
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


# --- AEFI reports (issue 20 point 5) ---

def aefi_reports(session: Session, organization_id: str | None, statuses: tuple[str, ...],
                 overdue_at: dt.datetime | None = None, limit: int = 500) -> list[AefiReport]:
    """A clinic's AEFI reports (None: every clinic) in the given statuses, the earliest deadline first;
    ``overdue_at``: only drafts whose deadline passed before it."""
    q = select(AefiReport).where(AefiReport.status.in_(statuses))
    if organization_id is not None:
        q = q.where(AefiReport.organization_id == organization_id)
    if overdue_at is not None:
        q = q.where(AefiReport.status == "draft", AefiReport.deadline_at < overdue_at)
    return list(session.scalars(q.order_by(AefiReport.deadline_at, AefiReport.id).limit(limit)))


def last_dose_before(session: Session, person_id: str, vaccine_code: str, before: dt.datetime) -> Vaccination | None:
    """The person's latest recorded dose of the vaccine given before ``before`` (the suspected dose)."""
    return session.scalar(select(Vaccination).where(
        Vaccination.person_id == person_id, Vaccination.vaccine_code == vaccine_code,
        Vaccination.status == "completed", Vaccination.occurred_at <= before)
        .order_by(Vaccination.occurred_at.desc()).limit(1))


# --- vaccinations recorded elsewhere: FHIR create, HL7 v2 VXU (issue 20 point 7) ---

def vaccination_by_external_id(session: Session, source: str, external_id: str) -> Vaccination | None:
    """The dose a sender identified so (unique per source)."""
    return session.scalar(select(Vaccination).where(Vaccination.source == source,
                                                    Vaccination.external_id == external_id))


def vaccination_by_any_external_id(session: Session, external_id: str) -> Vaccination | None:
    """The first dose stored under this identifier whatever its source (FHIR If-None-Exist)."""
    return session.scalar(select(Vaccination).where(Vaccination.external_id == external_id)
                          .order_by(Vaccination.created_at, Vaccination.id).limit(1))


def completed_times(session: Session, person_id: str, vaccine_codes: list[str]) -> list[dt.datetime]:
    """When the person's completed doses of these vaccines were given (a dose number's position)."""
    return list(session.scalars(select(Vaccination.occurred_at).where(
        Vaccination.person_id == person_id, Vaccination.status == "completed",
        Vaccination.vaccine_code.in_(vaccine_codes))))


# --- programmes and coverage (issue 20 point 6) ---

def programme_by_code(session: Session, code: str) -> Programme | None:
    return session.scalar(select(Programme).where(Programme.code == code))


def programmes(session: Session, organization_id: str | None) -> list[Programme]:
    q = select(Programme).order_by(Programme.start_date.desc(), Programme.code)
    if organization_id is not None:
        q = q.where(Programme.organization_id == organization_id)
    return list(session.scalars(q))


def invitations(session: Session, programme_id: str) -> dict[str, Invitation]:
    """The programme's invitations by person."""
    return {i.person_id: i for i in session.scalars(select(Invitation).where(Invitation.programme_id == programme_id))}


def invitation_counts(session: Session, programme_id: str) -> dict[str, int]:
    """Invitations per status, and how many notifications went out."""
    rows = session.execute(select(Invitation.status, func.count(), func.count(Invitation.notification_ref))
                           .where(Invitation.programme_id == programme_id).group_by(Invitation.status)).all()
    out = {status: n for status, n, _ in rows}
    out["notified"] = sum(sent for _, _, sent in rows)
    return out


def open_invitations(session: Session, person_id: str) -> list[tuple[str, str, dt.date, dt.date]]:
    """(programme code, vaccine, start, end) of the person's invitations still open in active programmes."""
    rows = session.execute(select(Programme.code, Programme.vaccine_code, Programme.start_date, Programme.end_date)
                           .join(Invitation, Invitation.programme_id == Programme.id)
                           .where(Invitation.person_id == person_id, Invitation.status == "invited",
                                  Programme.status == "active").order_by(Programme.start_date, Programme.code))
    return [tuple(r) for r in rows]


def invitations_for_dose(session: Session, person_id: str, vaccine_code: str, day: dt.date) -> list[Invitation]:
    """The person's open invitations an administered dose of ``vaccine_code`` on ``day`` fulfils."""
    return list(session.scalars(
        select(Invitation).join(Programme, Programme.id == Invitation.programme_id)
        .where(Invitation.person_id == person_id, Invitation.status == "invited", Programme.status == "active",
               Programme.vaccine_code == vaccine_code, Programme.start_date <= day, Programme.end_date >= day)))


def reminded(session: Session, person_ids: list[str]) -> set[tuple[str, str, int]]:
    """(person, series, dose) already reminded."""
    if not person_ids:
        return set()
    rows = session.execute(select(Reminder.person_id, Reminder.series, Reminder.dose_number)
                           .where(Reminder.person_id.in_(person_ids)))
    return {tuple(r) for r in rows}

# coverage (helper 4)
def coverage_version(session: Session) -> tuple[Any, ...]:
    """What the coverage figures' inputs look like now: count and latest change of the vaccination records and
    of the persons (a dose recorded or marked entered-in-error, an address or a merge moves it). Two aggregate
    reads; the figures are cached under it."""
    doses = session.execute(select(func.count(), func.max(Vaccination.updated_at))).one()
    people = session.execute(select(func.count(), func.max(Person.updated_at))).one()
    return (*doses, *people)


def coverage_children(session: Session, born_from: dt.date, born_to: dt.date,
                      codes: list[str] | None = None) -> list[ChildRow]:
    """Children born in [born_from, born_to] (not merged away, alive) with their township (the person index's
    街道/乡镇) and their recorded doses (entered-in-error excluded; only ``codes`` when given): ONE query, an
    outer join, grouped here. Millions of rows for a county: read as plain rows (no ORM entities, the UTC
    column without its per-row type conversion) and dated with one ``LocalDates``."""
    occurred = type_coerce(Vaccination.occurred_at, DateTime(timezone=True))
    stmt = (select(Person.id, Person.birth_date, Person.street, Vaccination.vaccine_code, occurred)
            .outerjoin(Vaccination, (Vaccination.person_id == Person.id) & (Vaccination.status == "completed")
                       & (Vaccination.vaccine_code.in_(codes) if codes else true()))
            .where(Person.birth_date >= born_from, Person.birth_date <= born_to, Person.merged_into_id.is_(None),
                   Person.deceased.is_(False))
            .order_by(Person.id))
    local_day = LocalDates()
    out: list[ChildRow] = []
    current, birth, town, doses = None, None, None, []
    for part in session.connection().execute(stmt).partitions(20_000):  # fetchmany: no per-row fetch call
        for pid, b, street, code, when in part:
            if pid != current:
                if current is not None:
                    out.append(ChildRow(birth, town, tuple(doses)))
                current, birth, town, doses = pid, b, street, []
            if code is not None:
                doses.append(Dose(code, local_day(when)))
    if current is not None:
        out.append(ChildRow(birth, town, tuple(doses)))
    return out


# --- cold chain pages and the manual-record check; desk lookup by ID; alternatives (issue 20 point 4) ---

def clinic_fridges(session: Session, organization_id: str | None) -> list[Fridge]:
    """The clinic's fridges by name (None: every clinic's — the operator's view)."""
    q = select(Fridge)
    if organization_id is not None:
        q = q.where(Fridge.organization_id == organization_id)
    return list(session.scalars(q.order_by(Fridge.organization_id, Fridge.name)))


def fridge_readings(session: Session, fridge_ids: list[str], since: dt.datetime, until: dt.datetime,
                    source: str | None = None) -> list[TemperatureReading]:
    """Readings of these fridges in [since, until), oldest first (a few per hour per sensor)."""
    if not fridge_ids:
        return []
    q = select(TemperatureReading).where(TemperatureReading.fridge_id.in_(fridge_ids),
                                         TemperatureReading.measured_at >= since,
                                         TemperatureReading.measured_at < until)
    if source is not None:
        q = q.where(TemperatureReading.source == source)
    return list(session.scalars(q.order_by(TemperatureReading.measured_at, TemperatureReading.id)))


def last_reading(session: Session, fridge_id: str) -> TemperatureReading | None:
    return session.scalar(select(TemperatureReading).where(TemperatureReading.fridge_id == fridge_id)
                          .order_by(TemperatureReading.measured_at.desc(), TemperatureReading.id.desc()).limit(1))


def lots_with_products(session: Session, lot_ids: list[str]) -> list[tuple[VaccineLot, VaccineProduct]]:
    if not lot_ids:
        return []
    rows = session.execute(select(VaccineLot, VaccineProduct).join(VaccineProduct, VaccineProduct.id ==
                                                                   VaccineLot.product_id)
                           .where(VaccineLot.id.in_(lot_ids)).order_by(VaccineProduct.vaccine_code,
                                                                        VaccineLot.lot_number))
    return [(lot, product) for lot, product in rows]
