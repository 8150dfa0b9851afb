"""Vaccinations recorded elsewhere (issue 20 point 7): a dose another clinic gave, reported by FHIR
``POST Immunization`` or an HL7 v2 VXU^V04, stored so that it counts in the forecast (R6.4: every recorded dose
counts, nothing restarts) and stays traceable to where it came from (``source``, ``external_id``,
``recorded_at_name``).

Idempotent on the sender's identifier: the same (source, external id) stored again returns the stored dose
(unique constraint; a concurrent copy finds the winner's row). The patient is read through identity's audited,
access-checked read; each new dose writes its audit event and the outbox event ``immunization.recorded`` in the
same transaction. The service flushes, never commits.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from onetrip.audit import service as audit
from onetrip.identity import service as identity
from onetrip.immunization import repository as repo
from onetrip.immunization import service
from onetrip.immunization.codes import VACCINES
from onetrip.immunization.models import Vaccination
from onetrip.kit import clock
from onetrip.kit.errors import BadRequest, Conflict
from onetrip.kit.principal import Principal
from onetrip.outbox.service import record_event

SOURCES = ("fhir", "hl7v2")
STATUSES = ("completed", "not-done")
ROUTES = ("IM", "SC", "ID", "PO")
EVENT = "immunization.recorded"


@dataclass(frozen=True)
class HistoryDose:
    """A dose given elsewhere, as the FHIR and HL7 v2 front ends read it (each names its own fields in
    errors: ``where`` maps our field names to theirs, e.g. {"occurred_at": "RXA-3"})."""

    patient_record_id: str
    vaccine_code: str
    occurred_at: dt.datetime  # aware
    source: str  # fhir | hl7v2
    external_id: str | None = None  # "system|value" as the sender identifies the dose
    status: str = "completed"  # completed | not-done
    primary_source: bool = True
    recorded_at_name: str | None = None  # where it was given (free text when not ours)
    lot_number: str | None = None
    expiry: dt.date | None = None
    manufacturer: str | None = None
    performer_name: str | None = None
    site: str | None = None
    route: str | None = None  # IM | SC | ID | PO
    where: tuple[tuple[str, str], ...] = ()


def _bad(dose: HistoryDose, field: str, zh: str, en: str) -> BadRequest:
    name = dict(dose.where).get(field, field)
    return BadRequest(f"{name}: {zh} / {name}: {en}", expression=[name])


def validate(dose: HistoryDose, birth: dt.date | None, now: dt.datetime | None = None) -> None:
    """The checks that do not depend on what is stored already (400 naming the sender's element)."""
    now = now or clock.utcnow()
    if dose.source not in SOURCES:
        raise _bad(dose, "source", "来源无效", f"source must be one of {', '.join(SOURCES)}")
    if dose.vaccine_code not in VACCINES:
        raise _bad(dose, "vaccine_code", f"须为国家免疫规划疫苗代码（{'、'.join(VACCINES)}）",
                   f"must be a code of the nip-vaccine CodeSystem ({', '.join(VACCINES)})")
    if dose.status not in STATUSES:
        raise _bad(dose, "status", "须为 completed 或 not-done", "must be completed or not-done")
    if dose.occurred_at.tzinfo is None:
        raise _bad(dose, "occurred_at", "须带时区", "must carry a time zone")
    if dose.occurred_at > now + dt.timedelta(minutes=5):  # a few minutes of clock skew between systems
        raise _bad(dose, "occurred_at", "接种时间不能晚于当前时间", "the vaccination cannot be in the future")
    if birth is not None and clock.local_date(dose.occurred_at) < birth:
        raise _bad(dose, "occurred_at", "接种日期早于出生日期", "the vaccination date is before the birth date")
    if dose.route is not None and dose.route not in ROUTES:
        raise _bad(dose, "route", f"须为 {'、'.join(ROUTES)} 之一", f"must be one of {', '.join(ROUTES)}")
    if dose.external_id is not None and not 0 < len(dose.external_id) <= 200:
        raise _bad(dose, "external_id", "标识过长", "the identifier is empty or longer than 200 characters")
    for field, limit in (("lot_number", 64), ("manufacturer", 128), ("performer_name", 128), ("site", 32),
                         ("recorded_at_name", 200)):
        value = getattr(dose, field)
        if value is not None and len(value) > limit:
            raise _bad(dose, field, f"超过 {limit} 个字符", f"longer than {limit} characters")


def find_external(session: Session, external_id: str) -> Vaccination | None:
    """A dose by the sender's identifier whatever its source (FHIR If-None-Exist: identifier=system|value)."""
    return repo.vaccination_by_any_external_id(session, external_id)


def dose_number(session: Session, person_id: str, vaccine_code: str, day: dt.date) -> int:
    """The dose's position in its series as the forecaster counts (polio: IPV and bOPV one series): the
    person's completed doses of the series on or before that day, plus one (R6.4)."""
    series_of = service.schedule(session).series_of
    series = series_of.get(vaccine_code, vaccine_code)
    codes = [c for c, s in series_of.items() if s == series] or [vaccine_code]
    return 1 + sum(1 for t in repo.completed_times(session, person_id, codes) if clock.local_date(t) <= day)


def record(session: Session, principal: Principal, dose: HistoryDose, now: dt.datetime | None = None
           ) -> tuple[Vaccination, bool]:
    """Store a dose given elsewhere: (the row, True) when new, (the stored row, False) when the sender's
    identifier is known already (nothing written but the audited read). The patient is read through the
    access policy (audited); 400 naming the element when the dose is invalid."""
    rec = identity.read(session, principal, dose.patient_record_id)  # 404 / 410 / 403, audited
    if dose.external_id is not None:
        existing = repo.vaccination_by_external_id(session, dose.source, dose.external_id)
        if existing is not None:
            return _same(dose, existing), False
    validate(dose, rec.birth_date, now)
    organization_id = principal.organization_id or rec.organization_id
    number = dose_number(session, rec.person_id, dose.vaccine_code, clock.local_date(dose.occurred_at))
    v = Vaccination(person_id=rec.person_id, patient_record_id=rec.id, organization_id=organization_id,
                    vaccine_code=dose.vaccine_code, dose_number=number, occurred_at=dose.occurred_at,
                    status=dose.status, source=dose.source, external_id=dose.external_id,
                    recorded_at_name=dose.recorded_at_name, primary_source=dose.primary_source,
                    lot_number=dose.lot_number, expiry=dose.expiry, holder=dose.manufacturer,
                    vaccinator_name=dose.performer_name, site=dose.site, route=dose.route)
    try:
        with session.begin_nested():
            session.add(v)
    except IntegrityError:  # a concurrent copy of the same dose stored first
        existing = repo.vaccination_by_external_id(session, dose.source, dose.external_id) if dose.external_id else None
        if existing is None:
            raise
        return _same(dose, existing), False
    audit.record(session, principal, "create", person_ids=[v.person_id], what=[f"Immunization/{v.id}"],
                 detail={"source": v.source, "external_id": v.external_id})
    record_event(session, EVENT, "Immunization", v.id,
                 {"source": v.source, "vaccine_code": v.vaccine_code, "dose_number": v.dose_number,
                  "status": v.status, "organization_id": v.organization_id,
                  "occurred_on": clock.local_date(v.occurred_at).isoformat()}, person_id=v.person_id)
    session.flush()
    return v, True


def _same(dose: HistoryDose, existing: Vaccination) -> Vaccination:
    """The stored dose for a resent identifier: the same patient, or a conflict (an identifier reused)."""
    if existing.patient_record_id != dose.patient_record_id:
        raise Conflict("该标识已用于另一位患者的接种记录 / this identifier was already used for another patient's "
                       "vaccination record")
    return existing

