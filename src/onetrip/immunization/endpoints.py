"""REST endpoints under /api/immunization — thin: check the scope, call one service function, shape.

Scopes: reading stock, the child and the observation board ``Immunization.r``; inbound, fridges, the desk's
check and record, entered-in-error ``Immunization.c`` (the desk's check is a step of recording a dose).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Header, Query

from onetrip.api.deps import DB, SERVICE_DATE, CurrentPrincipal, require_scope
from onetrip.immunization import aefi, cold_chain, programmes, rules, service
from onetrip.immunization.codes import VACCINES
from onetrip.immunization.models import Vaccination
from onetrip.immunization.schemas import (
    AefiCloseIn,
    AefiIn,
    AefiOut,
    AlarmOut,
    CheckIn,
    ChildOut,
    CoverageOut,
    DeskCheckOut,
    DueDose,
    EligibleOut,
    ErrorIn,
    FridgeCreated,
    FridgeIn,
    InboundIn,
    InboundOut,
    InviteOut,
    ManualCheckOut,
    ObservationRow,
    ProgrammeIn,
    ProgrammeOut,
    Question,
    ReadingIn,
    ReadingOut,
    RecordIn,
    ReleaseIn,
    StockRow,
    VaccinationOut,
    VerdictOut,
)
from onetrip.kit import clock
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
                   dose_number=f.dose, status=f.status, earliest=f.earliest, due=f.due, latest=f.latest,
                   alternatives=[r.split(":", 1)[1] for r in f.reasons if r.startswith("alternative-available:")])
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


# --- AEFI reports (issue 20 point 5) ---
# Reading reports: Immunization.r (vaccinators and clinicians). Writing one (create, report, close) is writing on
# the patient's care record: Immunization.r and Patient.u — both roles hold them; a read-only token does not.

def aefi_out(r: aefi.Row) -> AefiOut:
    a = r.report
    return AefiOut(
        id=a.id, patient_id=a.patient_record_id, name=r.name, organization_id=a.organization_id,
        vaccination_id=a.vaccination_id, vaccine_code=a.vaccine_code, onset_at=a.onset_at.isoformat(),
        discovered_at=a.discovered_at.isoformat(), severity=a.severity, cluster=a.cluster, symptoms=list(a.symptoms),
        description=a.description, deadline_at=a.deadline_at.isoformat(), status=a.status, state=r.state,
        minutes_left=r.minutes_left, reported_at=a.reported_at.isoformat() if a.reported_at else None,
        reported_by=a.reported_by, late=a.late, closed_at=a.closed_at.isoformat() if a.closed_at else None,
        outcome=a.outcome)


def require_aefi_write(principal) -> None:
    """Recording, reporting and closing an AEFI report: FHIR AdverseEvent create and update."""
    require_scope(principal, "AdverseEvent", "c")
    require_scope(principal, "AdverseEvent", "u")


@router.post("/aefi", response_model=AefiOut, status_code=201)
def aefi_create(body: AefiIn, session: DB, principal: CurrentPrincipal) -> AefiOut:
    """Record a suspected adverse event following immunization (疑似预防接种异常反应) as a draft of the caller's
    clinic: from the suspected dose (``vaccination_id``) or a patient and vaccine. Its deadline counts from
    ``discovered_at``: 48 h, 2 h for death, serious or cluster events (RULES R6.7)."""
    require_aefi_write(principal)
    report = aefi.create(session, principal, body)
    return aefi_out(aefi.row(session, report))


@router.get("/aefi", response_model=list[AefiOut])
def aefi_worklist(session: DB, principal: CurrentPrincipal,
                  status: Annotated[str | None, Query(pattern="^(overdue|open|reported|closed|all)$")] = None
                  ) -> list[AefiOut]:
    """The clinic's AEFI worklist, overdue drafts first, with the minutes left (negative: past the deadline).
    ``status``: overdue, open (every draft), reported, closed, all; default drafts and reported."""
    require_scope(principal, "AdverseEvent", "r")
    return [aefi_out(r) for r in aefi.worklist(session, principal, status)]


@router.get("/aefi/{report_id}", response_model=AefiOut)
def aefi_get(report_id: str, session: DB, principal: CurrentPrincipal) -> AefiOut:
    """One report (another clinic's only as the access policy allows; audited)."""
    require_scope(principal, "AdverseEvent", "r")
    report = aefi.get(session, principal, report_id)
    return aefi_out(aefi.row(session, report))


@router.post("/aefi/{report_id}/report", response_model=AefiOut)
def aefi_submit(report_id: str, session: DB, principal: CurrentPrincipal) -> AefiOut:
    """Report it (上报): ``late`` is true when made after the deadline."""
    require_aefi_write(principal)
    report = aefi.submit(session, principal, report_id)
    return aefi_out(aefi.row(session, report))


@router.post("/aefi/{report_id}/close", response_model=AefiOut)
def aefi_close(report_id: str, body: AefiCloseIn, session: DB, principal: CurrentPrincipal) -> AefiOut:
    """Close a reported case with the outcome (note required)."""
    require_aefi_write(principal)
    report = aefi.close(session, principal, report_id, body.note)
    return aefi_out(aefi.row(session, report))


# --- programmes and coverage (issue 20 point 6) ---

def programme_out(p, coverage: dict | None = None) -> ProgrammeOut:
    return ProgrammeOut(
        id=p.id, code=p.code, name_zh=p.name_zh, name_en=p.name_en, kind=p.kind, vaccine_code=p.vaccine_code,
        min_age_years=p.min_age_years, max_age_years=p.max_age_years, reference_date=p.reference_date, sex=p.sex,
        organization_id=p.organization_id, township=p.township, start_date=p.start_date, end_date=p.end_date,
        free=p.free, status=p.status, coverage=CoverageOut(**coverage) if coverage is not None else None)


@router.get("/programmes", response_model=list[ProgrammeOut])
def list_programmes(session: DB, principal: CurrentPrincipal) -> list[ProgrammeOut]:
    """The institution's programmes (the operator: every institution's)."""
    require_scope(principal, "Immunization", "r")
    return [programme_out(p) for p in programmes.listing(session, principal)]


@router.post("/programmes", response_model=ProgrammeOut, status_code=201)
def create_programme(body: ProgrammeIn, session: DB, principal: CurrentPrincipal) -> ProgrammeOut:
    """A campaign (the free influenza vaccination of elderly residents) or a cohort (HPV2 for girls reaching
    13); what is not given comes from the rule values influenza_campaign / hpv2_cohort."""
    require_scope(principal, "Immunization", "c")
    return programme_out(programmes.create(session, principal, body))


@router.get("/programmes/{programme_id}", response_model=ProgrammeOut)
def read_programme(programme_id: str, session: DB, principal: CurrentPrincipal) -> ProgrammeOut:
    """The programme with its coverage: eligible, invited, notified, vaccinated, percent."""
    require_scope(principal, "Immunization", "r")
    p = programmes.get(session, principal, programme_id)
    return programme_out(p, programmes.coverage(session, p))


@router.get("/programmes/{programme_id}/eligible", response_model=list[EligibleOut])
def programme_eligible(programme_id: str, session: DB, principal: CurrentPrincipal) -> list[EligibleOut]:
    """The eligible residents (masked), their invitation and — for a cohort of a scheduled vaccine (HPV2) — the
    forecaster's next dose and status. Audited."""
    require_scope(principal, "Immunization", "r")
    _, rows = programmes.eligible_list(session, principal, programme_id)
    return [EligibleOut(**r.out()) for r in rows]


@router.post("/programmes/{programme_id}/invite", response_model=InviteOut)
def programme_invite(programme_id: str, session: DB, principal: CurrentPrincipal) -> InviteOut:
    """Invite the eligible residents not invited yet through notifications (running it again sends nothing
    twice)."""
    require_scope(principal, "Immunization", "c")
    return InviteOut(**programmes.invite(session, principal, programme_id))


@router.post("/invitations/{invitation_id}/decline")
def decline_invitation(invitation_id: str, session: DB, principal: CurrentPrincipal) -> dict[str, str]:
    """The resident or guardian declines: no longer a due dose at the desk."""
    require_scope(principal, "Immunization", "c")
    inv = programmes.decline(session, principal, invitation_id)
    return {"id": inv.id, "status": inv.status}


# --- cold chain pages and the manual-record check; desk lookup by ID; alternatives (issue 20 point 4) ---

@router.get("/cold-chain/manual-check", response_model=list[ManualCheckOut])
def manual_check(session: DB, principal: CurrentPrincipal,
                 date: Annotated[dt.date | None, SERVICE_DATE] = None) -> list[ManualCheckOut]:
    """The worklist of R6.7's manual temperature record: the clinic's fridges whose record of ``date`` (a local
    day; default today) is incomplete — a morning or afternoon record missing, or the two less than 6 h apart
    (rule value ``manual_record``)."""
    require_scope(principal, "Immunization", "r")
    day = date or clock.local_date(clock.utcnow())
    return [ManualCheckOut(fridge_id=f.id, fridge_name=f.name, organization_id=f.organization_id, date=day,
                           status=c.status, morning=c.morning.strftime("%H:%M") if c.morning else None,
                           afternoon=c.afternoon.strftime("%H:%M") if c.afternoon else None, records=c.count)
            for f, c in cold_chain.manual_worklist(session, principal, day)]
