"""REST endpoints under /api/family and the device endpoint /api/devices/readings — thin: check the
scope, call one service function, shape the answer.

Scopes (SMART resource names): CareTeam (teams), Contract (contracts), CarePlan (registries, follow-ups,
worklists, pre-visit summary), MedicationRequest (long prescriptions, collection, delivery), Device,
Observation (readings), MeasureReport (figures)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.responses import Response

from onetrip.api.deps import DB, SERVICE_DATE, CurrentPrincipal, require_scope
from onetrip.family import contracts, export, prescriptions, readings, teams
from onetrip.family import repository as repo
from onetrip.family.figures import service as family_figures
from onetrip.family.followups import previsit as previsits
from onetrip.family.followups import service as followups
from onetrip.family.models import Followup, LongPrescription
from onetrip.family.schemas import (
    CheckInIn,
    CollectIn,
    ContractIn,
    ContractOut,
    DeliveryIn,
    DeliveryStepIn,
    DeviceIn,
    DeviceReadingIn,
    EnrolIn,
    FollowupIn,
    FollowupOut,
    LongRxIn,
    RegistryOut,
    RenewIn,
    SwitchIn,
    TeamIn,
    TeamOut,
)
from onetrip.family.worklist import service as worklists
from onetrip.kit.errors import BadRequest
from onetrip.kit.masking import mask_id_number

router = APIRouter(prefix="/api/family", tags=["family doctors"])
devices_router = APIRouter(prefix="/api/devices", tags=["self-check devices"])


def rx_out(rx: LongPrescription) -> dict:
    """A long prescription with ID numbers masked (R4.4 records them; display masks them)."""
    return {"id": rx.id, "person_id": rx.person_id, "organization_id": rx.organization_id, "items": rx.items,
            "weeks": rx.weeks, "assessment": rx.assessment, "patient_confirmed": rx.patient_confirmed,
            "status": rx.status, "issued_at": rx.issued_at.isoformat(), "collected_by_proxy": rx.collected_by_proxy,
            "collector_name": rx.collector_name, "collector_id_number": mask_id_number(rx.collector_id_number),
            "patient_id_number": mask_id_number(rx.patient_id_number)}


# --- teams and contracts ----------------------------------------------------------------------------

@router.get("/teams", response_model=list[TeamOut])
def list_teams(session: DB, principal: CurrentPrincipal, organization: str | None = None):
    """Family-doctor teams (of an institution)."""
    require_scope(principal, "CareTeam", "s")
    return repo.teams(session, organization)


@router.post("/teams", response_model=TeamOut, status_code=201)
def create_team(body: TeamIn, session: DB, principal: CurrentPrincipal):
    """A team: doctor, nurse, public-health physician (and an optional specialist) from the registry."""
    require_scope(principal, "CareTeam", "c")
    return teams.create_team(session, principal, **body.model_dump())


@router.post("/contracts", response_model=ContractOut, status_code=201)
def sign(body: ContractIn, session: DB, principal: CurrentPrincipal):
    """Sign a contract at the clinic or through the app (R5). 409 when the resident already has an active
    family doctor: renew or switch that contract instead."""
    require_scope(principal, "Contract", "c")
    return contracts.sign_contract(session, principal, **body.model_dump())


@router.get("/contracts/{contract_id}", response_model=ContractOut)
def read_contract(contract_id: str, session: DB, principal: CurrentPrincipal):
    require_scope(principal, "Contract", "r")
    return contracts.get_contract(session, principal, contract_id)


@router.post("/contracts/{contract_id}/renew", response_model=ContractOut, status_code=201)
def renew(contract_id: str, body: RenewIn, session: DB, principal: CurrentPrincipal):
    """Renew with the same team (R5.1): the new term follows the old one."""
    require_scope(principal, "Contract", "u")
    return contracts.renew_contract(session, principal, contract_id, **body.model_dump())


@router.post("/contracts/{contract_id}/switch", response_model=ContractOut, status_code=201)
def switch(contract_id: str, body: SwitchIn, session: DB, principal: CurrentPrincipal):
    """Switch to another team (R5.1): the old contract ends yesterday, the new one starts today."""
    require_scope(principal, "Contract", "u")
    return contracts.switch_contract(session, principal, contract_id, **body.model_dump())


# --- registries and follow-ups ----------------------------------------------------------------------

@router.post("/registries", response_model=RegistryOut, status_code=201)
def enrol(body: EnrolIn, session: DB, principal: CurrentPrincipal):
    """Enrol in the hypertension or type 2 diabetes registry (RULES §3)."""
    require_scope(principal, "CarePlan", "c")
    return followups.enrol(session, principal, **body.model_dump())


@router.get("/registries/{registry_id}", response_model=RegistryOut)
def read_registry(registry_id: str, session: DB, principal: CurrentPrincipal):
    require_scope(principal, "CarePlan", "r")
    return followups.get_registry(session, principal, registry_id)


@router.post("/registries/{registry_id}/followups", response_model=FollowupOut, status_code=201)
def record_followup(registry_id: str, body: FollowupIn, session: DB, principal: CurrentPrincipal) -> Followup:
    """Record a follow-up: classified (R3.3, R3.5), next due date set; R3.3/R3.4 referrals are drafted
    (``referral_id``; the draft is at /ui/referrals/{id})."""
    require_scope(principal, "CarePlan", "u")
    return followups.record_followup(session, principal, registry_id, **body.model_dump())


@router.get("/registries/{registry_id}/followups", response_model=list[FollowupOut])
def list_followups(registry_id: str, session: DB, principal: CurrentPrincipal):
    require_scope(principal, "CarePlan", "r")
    reg = followups.get_registry(session, principal, registry_id)
    return repo.followups(session, registry_id=reg.id, limit=200)


@router.get("/persons/{person_id}/previsit")
def previsit(person_id: str, session: DB, principal: CurrentPrincipal) -> dict:
    """The pre-visit assessment (诊前评估): registries, trends of self-check readings, adherence, alerts."""
    require_scope(principal, "CarePlan", "r")
    return previsits.previsit_summary(session, principal, person_id)


@router.post("/checkin")
def check_in(body: CheckInIn, session: DB, principal: CurrentPrincipal) -> dict:
    """The patient checks in at the chronic-disease clinic (ID card or person id): the pre-visit summary."""
    require_scope(principal, "CarePlan", "r")
    return previsits.check_in(session, principal, person_id=body.person_id, id_number=body.id_number)


# --- worklists --------------------------------------------------------------------------------------

@router.get("/worklist")
def worklist(session: DB, principal: CurrentPrincipal, team: str | None = None, doctor: str | None = None,
             organization: str | None = None, only: str | None = None,
             date: Annotated[dt.date | None, SERVICE_DATE] = None,
             limit: int = Query(default=100, ge=1, le=500), offset: int = Query(default=0, ge=0, le=1_000_000)) -> dict:
    """Due (within the rule table's window), overdue and lost-to-follow-up patients, most overdue first.
    ``only``: due | overdue | lost. Names, IDs and phones are masked."""
    require_scope(principal, "CarePlan", "s")
    return worklists.build(session, principal, team_id=team, doctor_id=doctor, organization_id=organization,
                           only=only, on=date, limit=limit, offset=offset)


@router.get("/worklist.{fmt}")
def worklist_export(fmt: str, session: DB, principal: CurrentPrincipal, team: str | None = None,
                    doctor: str | None = None, organization: str | None = None, only: str | None = None) -> Response:
    """The worklist as CSV or Excel (xlsx); identifiers and phones masked (RULES §10)."""
    require_scope(principal, "CarePlan", "s")
    if fmt not in ("csv", "xlsx"):
        raise BadRequest("格式须为 csv 或 xlsx / format must be csv or xlsx")
    data = worklists.build(session, principal, team_id=team, doctor_id=doctor, organization_id=organization,
                           only=only, limit=5000)
    return export.response(data["items"], fmt, "worklist")


@router.get("/alerts")
def alerts(session: DB, principal: CurrentPrincipal, team: str | None = None, organization: str | None = None) -> list:
    """Open alerts from out-of-range self-check readings."""
    require_scope(principal, "CarePlan", "s")
    return worklists.alert_list(session, principal, team_id=team, organization_id=organization)


@router.post("/alerts/{alert_id}/acknowledge")
def acknowledge(alert_id: str, session: DB, principal: CurrentPrincipal) -> dict:
    require_scope(principal, "CarePlan", "u")
    a = worklists.acknowledge_alert(session, principal, alert_id)
    return {"id": a.id, "acknowledged_at": a.acknowledged_at.isoformat() if a.acknowledged_at else None}


# --- long prescriptions -----------------------------------------------------------------------------

@router.post("/prescriptions", status_code=201)
def issue(body: LongRxIn, session: DB, principal: CurrentPrincipal) -> dict:
    """Issue a long prescription (RULES §4): 422 naming every rule it breaks."""
    require_scope(principal, "MedicationRequest", "c")
    data = body.model_dump()
    return rx_out(prescriptions.issue_long_prescription(session, principal, **data))


@router.post("/prescriptions/{rx_id}/collect")
def collect(rx_id: str, body: CollectIn, session: DB, principal: CurrentPrincipal) -> dict:
    """Pickup by the patient, or by a proxy with both ID numbers recorded (R4.4; shown masked)."""
    require_scope(principal, "MedicationRequest", "u")
    return rx_out(prescriptions.collect(session, principal, rx_id, **body.model_dump()))


@router.post("/prescriptions/{rx_id}/delivery", status_code=201)
def deliver(rx_id: str, body: DeliveryIn, session: DB, principal: CurrentPrincipal) -> dict:
    """Home delivery: the order starts as packed."""
    require_scope(principal, "MedicationRequest", "u")
    d = prescriptions.create_delivery(session, principal, rx_id, **body.model_dump())
    return {"id": d.id, "status": d.status, "prescription_id": d.prescription_id}


@router.post("/deliveries/{delivery_id}/status")
def delivery_step(delivery_id: str, body: DeliveryStepIn, session: DB, principal: CurrentPrincipal) -> dict:
    """packed → sent → delivered."""
    require_scope(principal, "MedicationRequest", "u")
    d = prescriptions.advance_delivery(session, principal, delivery_id, body.status, body.tracking_no)
    return {"id": d.id, "status": d.status, "tracking_no": d.tracking_no}


# --- devices and figures ----------------------------------------------------------------------------

@router.post("/devices", status_code=201)
def register_device(body: DeviceIn, session: DB, principal: CurrentPrincipal) -> dict:
    """Register a home BP monitor / glucometer (for a resident) or a clinic kiosk (for an institution).
    The token is returned once; only its hash is stored."""
    require_scope(principal, "Device", "c")
    d, token = readings.register_device(session, principal, **body.model_dump())
    return {"id": d.id, "token": token, "kind": d.kind, "serial": d.serial}


@router.get("/figures")
def figures(session: DB, principal: CurrentPrincipal, year: int | None = Query(default=None, ge=2000, le=2200),
            level: str = "institution", organization: str | None = None) -> dict:
    """签约率 (overall, per key group), 管理率, 规范管理率, 控制率 (R3.6, R5.3) per institution, team or doctor."""
    require_scope(principal, "MeasureReport", "r")
    return family_figures.compute_figures(session, principal, year=year, level=level, organization_id=organization)


@devices_router.post("/readings", status_code=201)
def device_reading(body: DeviceReadingIn, session: DB,
                   x_device_token: Annotated[str | None, Header()] = None) -> dict:
    """A reading from a registered device (header ``X-Device-Token``). Home devices read for their owner;
    kiosks give the patient's ``id_number``. Out-of-range values alert the family-doctor team."""
    r, created = readings.device_reading(session, x_device_token, body.model_dump())
    return {"id": r.id, "created": created, "alerts": r.alerts}
