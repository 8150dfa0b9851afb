"""The pre-visit summary (诊前评估) and the clinic check-in: when a patient swipes their ID card at the
chronic-disease clinic, the doctor's screen shows their registries, recent follow-ups, self-check trends,
adherence, open alerts, the year's glucose tests (R3.2, laboratory results from the shared results store
included), the contract and the last long prescription."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from onetrip.family import repository as repo
from onetrip.family import rules
from onetrip.family.common import iso, params, read_person, resident, resident_id, today
from onetrip.kit.clock import local_date
from onetrip.kit.errors import ApiError, NotFound
from onetrip.kit.masking import mask_id_number, mask_phone
from onetrip.kit.principal import Principal
from onetrip.outbox.service import record_event
from onetrip.persons.models import Person
from onetrip.records import interface as records


def previsit_summary(session: Session, principal: Principal, person_id: str, on: dt.date | None = None,
                     *, audit_read: bool = True) -> dict[str, Any]:
    """What reaches the doctor's screen first when the patient checks in (诊前评估): registries with their
    latest classification and due dates, self-check trends (14 days against the 14 before), adherence,
    open alerts, the year's glucose tests (R3.2), the contract and the last long prescription."""
    person = read_person(session, principal, person_id, f"Patient/{person_id}") if audit_read else resident(session,
                                                                                                           person_id)
    day = on or today()
    p = params(session, day)
    regs = repo.registries_of(session, person.id)
    fus = repo.followups(session, person_id=person.id, limit=12)
    since = dt.datetime.combine(day - dt.timedelta(days=28), dt.time(), dt.UTC)
    reads = repo.readings(session, person.id, since)

    def series(attr: str) -> list[tuple[dt.date, float]]:
        return [(local_date(r.measured_at), getattr(r, attr)) for r in reads if getattr(r, attr) is not None]

    reading_days = {local_date(r.measured_at) for r in reads}
    year_start = day.replace(month=1, day=1)
    test_days = {f.visit_date for f in repo.followups(session, person_id=person.id, limit=100)
                 if f.visit_date >= year_start and f.fasting_glucose is not None}
    lab = lab_fasting_glucose(session, principal, person.id) if audit_read else []
    test_days |= {local_date(t.effective_at) for t in lab if local_date(t.effective_at) >= year_start}
    glucose_tests = len(test_days)
    alerts = repo.open_alerts(session, person_id=person.id)
    contract = repo.active_contract(session, person.id)
    rxs = repo.prescriptions_of(session, person.id, limit=1)
    return {
        "person": {"id": person.id, "name": person.name, "age": rules.age_on(person.birth_date, day),
                   "sex": person.sex, "id_number": mask_id_number(person.id_number), "phone": mask_phone(person.phone)},
        "registries": [{"id": r.id, "programme": r.programme, "status": r.status, "last_visit": iso(r.last_visit_date),
                        "next_due": iso(r.next_due_date), "classification": r.last_classification,
                        "controlled": r.controlled, "bucket": rules.worklist_bucket(r.next_due_date, day, p)
                        if r.status == "active" else None} for r in regs],
        "last_followups": [{"id": f.id, "date": f.visit_date.isoformat(), "programme": f.programme, "sbp": f.sbp,
                            "dbp": f.dbp, "fasting_glucose": f.fasting_glucose, "classification": f.classification,
                            "referral_id": f.referral_id} for f in fus[:3]],
        "trend": {"sbp": rules.trend(series("sbp"), day), "dbp": rules.trend(series("dbp"), day),
                  "glucose": rules.trend(series("glucose"), day)},
        "adherence": {"medication": fus[0].adherence if fus else None,
                      "self_check_days_28": len(reading_days), "self_check_share": round(len(reading_days) / 28, 2)},
        "glucose_tests_this_year": glucose_tests, "glucose_tests_expected": p.glucose_tests_per_year,
        "lab_fasting_glucose": {"value": lab[-1].value, "unit": lab[-1].unit,
                                "date": local_date(lab[-1].effective_at).isoformat(),
                                "organization": lab[-1].organization_name} if lab else None,
        "alerts": [{"id": a.id, "at": a.created_at.isoformat(), "summary": a.summary, "codes": a.codes} for a in alerts],
        "contract": {"id": contract.id, "team_id": contract.team_id, "end_date": iso(contract.end_date),
                     "package": contract.package, "key_groups": contract.key_groups} if contract else None,
        "last_long_prescription": {"id": rxs[0].id, "weeks": rxs[0].weeks, "status": rxs[0].status,
                                   "issued_at": rxs[0].issued_at.isoformat()} if rxs else None,
    }


LAB_FASTING_GLUCOSE = ("14771-0", "1558-6")  # LOINC fasting glucose, mmol/L and mg/dL


def lab_fasting_glucose(session: Session, principal: Principal, person_id: str) -> list:
    """Laboratory fasting glucose results from the shared results store (records.service.trend, through
    the access policy), oldest first — they count towards the R3.2 glucose tests."""
    out = []
    for code in LAB_FASTING_GLUCOSE:
        try:
            out.extend(records.trend(session, principal, person_id, code))
        except ApiError:
            return []
    return sorted(out, key=lambda t: t.effective_at)


def check_in(session: Session, principal: Principal, *, person_id: str | None = None,
             id_number: str | None = None) -> dict[str, Any]:
    """The patient swipes their ID card at the chronic-disease clinic: find them and return the pre-visit
    summary (audited as a read)."""
    if person_id is None:
        number = resident_id(id_number, "id_number")
        person = session.scalars(select(Person).where(Person.id_number == number)).first()
        if person is None:
            raise NotFound("未找到该居民 / no resident with this ID number", expression=["id_number"])
        person_id = person.id
    summary = previsit_summary(session, principal, person_id)
    record_event(session, "chronic.checked_in", "Patient", summary["person"]["id"],
                 {"organization_id": principal.organization_id}, person_id=summary["person"]["id"])
    return summary
