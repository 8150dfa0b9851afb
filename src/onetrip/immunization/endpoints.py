"""REST endpoints under /api/immunization — thin: check the scope, call one service function, shape.

Scopes: reading stock, the child and the observation board ``Immunization.r``; inbound, fridges, the desk's
check and record, entered-in-error ``Immunization.c`` (the desk's check is a step of recording a dose).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query

from onetrip.api.deps import DB, CurrentPrincipal, require_scope
from onetrip.immunization import rules, service
from onetrip.immunization.codes import VACCINES
from onetrip.immunization.models import Vaccination
from onetrip.immunization.schemas import (
    AlarmOut,
    CheckIn,
    ChildOut,
    DeskCheckOut,
    DueDose,
    ErrorIn,
    FridgeCreated,
    FridgeIn,
    InboundIn,
    InboundOut,
    ObservationRow,
    Question,
    ReadingIn,
    ReadingOut,
    RecordIn,
    ReleaseIn,
    StockRow,
    VaccinationOut,
    VerdictOut,
)
from onetrip.kit.masking import mask_name

router = APIRouter(prefix="/api/immunization", tags=["immunization"])
QUESTIONS = [Question(key=k, zh=zh, en=en) for k, zh, en in rules.CONTRAINDICATIONS]


def vaccination_out(v: Vaccination) -> VaccinationOut:
    return VaccinationOut(
        id=v.id, patient_id=v.patient_record_id, vaccine_code=v.vaccine_code, dose_number=v.dose_number,
        product_id=v.product_id, holder=v.holder, trace_code=v.trace_code, lot_number=v.lot_number, expiry=v.expiry,
        occurred_at=v.occurred_at.isoformat(), vaccinator_name=v.vaccinator_name, site=v.site, route=v.route,
        status=v.status)


def child_out(desk: service.DeskChild) -> ChildOut:
    due = [DueDose(series=f.series, vaccine_code=f.vaccine, vaccine_name=VACCINES.get(f.vaccine, (f.vaccine,))[0],
                   dose_number=f.dose, status=f.status, earliest=f.earliest, due=f.due, latest=f.latest)
           for f in desk.forecasts if f.dose is not None and f.status in ("due", "overdue")]
    return ChildOut(patient_id=desk.record.id, name=mask_name(desk.record.name or ""), birth_date=desk.child.birth,
                    sex=desk.child.sex, due=due, given_today=desk.given_today, questions=QUESTIONS)


def verdict_out(verdict: rules.Verdict, found) -> VerdictOut:
    return VerdictOut(ok=verdict.ok, dose_number=verdict.dose_number,
                      vaccine_code=found[2].vaccine_code if found else None,
                      checks=[DeskCheckOut(key=c.key, ok=c.ok, reason=c.reason) for c in verdict.checks])


@router.post("/fridges", response_model=FridgeCreated, status_code=201)
def create_fridge(body: FridgeIn, session: DB, principal: CurrentPrincipal,
                  organization_id: Annotated[str | None, Query(max_length=32)] = None) -> FridgeCreated:
    """Add a fridge (or freezer) to the clinic's cold chain; packages are received into it. The answer carries
    the sensor's key (header ``X-Device-Token`` of its readings) once."""
    require_scope(principal, "Immunization", "c")
    f, key = service.create_fridge(session, principal, organization_id, body.name, body.frozen)
    return FridgeCreated(id=f.id, organization_id=f.organization_id, name=f.name, frozen=f.frozen, sensor_key=key)


@router.post("/inbound", response_model=InboundOut, status_code=201)
def receive(body: InboundIn, session: DB, principal: CurrentPrincipal) -> InboundOut:
    """Inbound from the county CDC: one lot with the 20-character trace codes of its smallest packages (R6.6).
    All or nothing: a malformed or already received code refuses the delivery, naming the code."""
    require_scope(principal, "Immunization", "c")
    lot, product, n = service.receive_lot(session, principal, body)
    return InboundOut(lot_id=lot.id, product_id=product.id, packages=n, doses=n * product.doses_per_package)


@router.get("/stock", response_model=list[StockRow])
def stock(session: DB, principal: CurrentPrincipal,
          organization_id: Annotated[str | None, Query(max_length=32)] = None) -> list[StockRow]:
    """Doses left per fridge, product and lot of the clinic."""
    require_scope(principal, "Immunization", "r")
    return [StockRow(fridge_id=r.fridge_id, fridge_name=r.fridge_name, vaccine_code=r.vaccine_code,
                     product_name=r.name, holder=r.holder, lot_number=r.lot_number, expiry=r.expiry,
                     lot_status=r.status, packages=r.packages, doses_left=int(r.doses_left))
            for r in service.stock(session, principal, organization_id)]


@router.get("/desk/child", response_model=ChildOut)
def desk_child(session: DB, principal: CurrentPrincipal, q: Annotated[str, Query(min_length=1, max_length=200)]
               ) -> ChildOut:
    """Identify the child (the certificate QR as scanned, or the Patient id): today's due doses from the
    forecaster over the recorded doses, and the contraindication questions. An audited patient read."""
    require_scope(principal, "Immunization", "r")
    return child_out(service.desk_child(session, principal, q))


@router.post("/desk/check", response_model=VerdictOut)
def desk_check(body: CheckIn, session: DB, principal: CurrentPrincipal) -> VerdictOut:
    """三查七对一验证 (R6.5) for a scanned trace code: each check (code, package, lot, expiry, patient, vaccine,
    interval, contraindications) ticked or failed with its reason. Records nothing but the audit of the read."""
    require_scope(principal, "Immunization", "c")
    verdict, _, found = service.check(session, principal, body)
    return verdict_out(verdict, found)


@router.post("/desk/vaccinations", response_model=VaccinationOut, status_code=201)
def desk_record(body: RecordIn, session: DB, principal: CurrentPrincipal) -> VaccinationOut:
    """Record the dose: every check again, one dose taken from the package (never beyond its doses), the R6.6
    record written. 409 with the failed checks' reasons otherwise."""
    require_scope(principal, "Immunization", "c")
    return vaccination_out(service.record_vaccination(session, principal, body))


@router.post("/vaccinations/{vaccination_id}/entered-in-error", response_model=VaccinationOut)
def entered_in_error(vaccination_id: str, body: ErrorIn, session: DB, principal: CurrentPrincipal
                     ) -> VaccinationOut:
    """Mark a record entered-in-error with the reason (records are never deleted)."""
    require_scope(principal, "Immunization", "c")
    return vaccination_out(service.enter_in_error(session, principal, vaccination_id, body.reason))


@router.get("/desk/observation", response_model=list[ObservationRow])
def observation(session: DB, principal: CurrentPrincipal) -> list[ObservationRow]:
    """The 30-minute observation board (R6.5): today's doses at the clinic with the minutes left."""
    require_scope(principal, "Immunization", "r")
    return [ObservationRow(vaccination_id=v.id, patient_id=v.patient_record_id, name=name,
                           vaccine_code=v.vaccine_code, dose_number=v.dose_number,
                           occurred_at=v.occurred_at.isoformat(), minutes_left=left)
            for v, name, left in service.observation_board(session, principal)]


# --- Cold chain (R6.7) ----------------------------------------------------------------------------------------

def reading_out(reading, alarm) -> ReadingOut:
    return ReadingOut(id=reading.id, fridge_id=reading.fridge_id, celsius=reading.celsius,
                      measured_at=reading.measured_at.isoformat(), source=reading.source,
                      excursion=reading.excursion, alarm_id=alarm.id if alarm else None)


def alarm_out(a) -> AlarmOut:
    return AlarmOut(id=a.id, fridge_id=a.fridge_id, celsius=a.celsius, status=a.status, lot_ids=list(a.lot_ids),
                    created_at=a.created_at.isoformat(), released_at=a.released_at.isoformat() if a.released_at
                    else None, released_by=a.released_by, release_note=a.release_note)


@router.post("/cold-chain/sensor-readings", response_model=ReadingOut, status_code=201)
def sensor_reading(body: ReadingIn, session: DB,
                   x_device_token: Annotated[str | None, Header(max_length=200)] = None) -> ReadingOut:
    """A fridge sensor posts its temperature with the fridge's key (header ``X-Device-Token``; no user token).
    Outside 2–8 °C (freezers: above −20 °C) an alarm quarantines the fridge's lots (R6.7)."""
    return reading_out(*service.sensor_reading(session, x_device_token, body.fridge_id, body.celsius,
                                               body.measured_at))


@router.post("/cold-chain/readings", response_model=ReadingOut, status_code=201)
def manual_reading(body: ReadingIn, session: DB, principal: CurrentPrincipal) -> ReadingOut:
    """The manual morning / afternoon temperature record (R6.7); an excursion raises the alarm as a sensor's."""
    require_scope(principal, "Immunization", "c")
    return reading_out(*service.manual_reading(session, principal, body.fridge_id, body.celsius, body.measured_at))


@router.get("/cold-chain/alarms", response_model=list[AlarmOut])
def alarms(session: DB, principal: CurrentPrincipal,
           status: Annotated[str | None, Query(pattern="^(open|released)$")] = None) -> list[AlarmOut]:
    """The clinic's cold-chain alarms (open: lots in quarantine)."""
    require_scope(principal, "Immunization", "r")
    return [alarm_out(a) for a in service.cold_chain_alarms(session, principal, status)]


@router.post("/cold-chain/alarms/{alarm_id}/release", response_model=AlarmOut)
def release(alarm_id: str, body: ReleaseIn, session: DB, principal: CurrentPrincipal) -> AlarmOut:
    """Release the alarm's quarantined lots with a note (required); audited."""
    require_scope(principal, "Immunization", "c")
    return alarm_out(service.release_alarm(session, principal, alarm_id, body.note))
