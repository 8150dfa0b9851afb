"""The immunisation domain's scheduled job: reminders to guardians for due childhood doses (issue 20 point 6).

Run daily (cron or a systemd timer): ``onetrip immunization remind``. The job flushes, never commits; the CLI's
unit of work commits it in one transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from onetrip.audit import service as audit
from onetrip.immunization import repository as repo
from onetrip.immunization import rules, service
from onetrip.immunization.forecast import LIVE_SPACING_DAYS, Dose, SeriesForecast, add_months, forecast
from onetrip.immunization.models import Reminder, Vaccination
from onetrip.immunization.schedule import RULE_SET, transition_from_rule
from onetrip.kit import clock
from onetrip.kit.identifiers import SEX_TO_FHIR
from onetrip.kit.principal import Principal, cli_principal
from onetrip.notify import interface as notify
from onetrip.persons.models import PatientRecord, Person
from onetrip.rules.service import rule_values

DAYS_AHEAD = 7  # the rule value reminder_days_ahead overrides it [U]
MAX_AGE_YEARS = 14  # the rule value reminder_max_age_years overrides it [U]


def _children(session: Session, today: dt.date, max_age: int) -> list[tuple[str, str | None, str | None, dt.date,
                                                                              str, str | None]]:
    """Registered children (an active record somewhere) younger than ``max_age``: person, first record, phone,
    birth date, sex, the record's phone."""
    born_after = add_months(today, -12 * max_age)
    q = (select(Person.id, PatientRecord.id, Person.phone, Person.birth_date, Person.sex, PatientRecord.phone)
         .join(PatientRecord, PatientRecord.person_id == Person.id)
         .where(Person.birth_date > born_after, Person.birth_date <= today, Person.deceased.is_(False),
                Person.merged_into_id.is_(None), PatientRecord.active.is_(True), PatientRecord.deleted_at.is_(None))
         .order_by(Person.id, PatientRecord.created_at, PatientRecord.id))
    seen: dict[str, tuple] = {}
    for pid, rec_id, phone, birth, sex, rec_phone in session.execute(q):
        if pid not in seen:
            seen[pid] = (pid, rec_id, phone or rec_phone, birth, sex, rec_phone)
    return list(seen.values())


def _forecaster(session: Session, today: dt.date, values: dict[str, Any]
                ) -> Callable[[service.Child, list[Dose]], list[SeriesForecast]]:
    """The forecast with the schedule table and rule values read once for the whole run (as
    service.forecast_child reads them per child)."""
    sched = service.schedule(session)
    try:
        transitions = [transition_from_rule(values["dtap_transition"])] if "dtap_transition" in values else []
        spacing = int(values.get("live_injectable_spacing_days", LIVE_SPACING_DAYS))
    except (KeyError, TypeError, ValueError):
        raise service.ScheduleUnavailable("规则值 immunization.dtap_transition 或 live_injectable_spacing_days 格式错误 / "
                                          "the rule value immunization.dtap_transition or "
                                          "live_injectable_spacing_days is malformed: fix it with `onetrip rules "
                                          "set immunization ...`") from None

    def run(child: service.Child, history: list[Dose]) -> list[SeriesForecast]:
        return forecast(child.birth, child.sex, today, history, sched, transitions=transitions,
                        live_spacing_days=spacing)
    return run


def _histories(session: Session, person_ids: list[str], chunk: int = 500) -> dict[str, list[Dose]]:
    """The recorded doses (entered-in-error ones excluded) of many people, read in batches."""
    out: dict[str, list[Dose]] = {}
    for i in range(0, len(person_ids), chunk):
        rows = session.execute(select(Vaccination.person_id, Vaccination.vaccine_code, Vaccination.occurred_at)
                               .where(Vaccination.person_id.in_(person_ids[i:i + chunk]),
                                      Vaccination.status == "completed").order_by(Vaccination.occurred_at))
        for pid, code, at in rows:
            out.setdefault(pid, []).append(Dose(code, clock.local_date(at)))
    return out


def remind_due(session: Session, today: dt.date | None = None, *,
               on_progress: Callable[[int, int], None] | None = None, principal: Principal | None = None
               ) -> dict[str, Any]:
    """One notification per registered child and due dose: every dose of the forecaster (over the doses
    recorded here) due within ``reminder_days_ahead`` days, or already due, that was never reminded. The
    message goes to the child's registered phone — a child's phone is its guardian's (the person index holds
    no separate guardian link); a child without one is skipped and counted under ``no_contact`` (reminded
    when a later run finds a phone). Each reminder is recorded (never twice for the same dose), audited, and
    its notification is an outbox event (notify's interface)."""
    today = today or clock.local_date(clock.utcnow())
    principal = principal or cli_principal("immunization-remind")
    values = rule_values(session, RULE_SET, on=today)
    days = int(values.get("reminder_days_ahead", DAYS_AHEAD))
    max_age = int(values.get("reminder_max_age_years", MAX_AGE_YEARS))
    children = _children(session, today, max_age)
    done = repo.reminded(session, [c[0] for c in children])
    forecast_of = _forecaster(session, today, values)
    doses = _histories(session, [c[0] for c in children])
    now = clock.utcnow()
    out = {"children": len(children), "sent": 0, "already": 0, "no_contact": 0}
    sent: list[Reminder] = []
    for i, (pid, rec_id, phone, birth, sex, _) in enumerate(children, 1):
        child = service.Child(birth, SEX_TO_FHIR.get(sex, "unknown"))
        due = [f for f in forecast_of(child, doses.get(pid, [])) if rules.reminder_due(f, today, days)]
        new = [f for f in due if (pid, f.series, f.dose) not in done]
        out["already"] += len(due) - len(new)
        if new and not phone:
            out["no_contact"] += 1
        elif new:
            for f in new:
                r = Reminder(person_id=pid, patient_record_id=rec_id, series=f.series, vaccine_code=f.vaccine,
                             dose_number=f.dose, due_date=f.due, sent_at=now, contact="guardian",
                             notification_ref="")
                session.add(r)
                session.flush()
                r.notification_ref = notify.message_resident(
                    session, "immunization.reminder", "ImmunizationRecommendation", r.id,
                    {"series": f.series, "vaccine_code": f.vaccine, "dose_number": f.dose,
                     "due_date": f.due.isoformat(), "status": f.status, "contact": "guardian"}, person_id=pid)
                sent.append(r)
        if on_progress is not None:
            on_progress(i, len(children))
    session.flush()
    if sent:
        audit.record(session, principal, "create", person_ids=[r.person_id for r in sent],
                     what=[f"CommunicationRequest/imm-reminder-{r.id}" for r in sent],
                     detail={"job": "immunization.remind"})
    out["sent"] = len(sent)
    return out
