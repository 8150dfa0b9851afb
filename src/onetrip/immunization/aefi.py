"""AEFI reports (疑似预防接种异常反应, issue 20 point 5): a clinic records a suspected adverse event following
immunization, reports it by its deadline (RULES R6.7: 48 h from discovery; 2 h for death, serious or cluster
events) and closes it with the outcome; the worklist shows the overdue drafts first.

Services flush, never commit (STYLE 2). The reporting clinic works with its own reports; reading another
clinic's report goes through the access policy (audited either way). Every change writes its audit event and
its outbox event (``immunization.aefi_created``, ``immunization.aefi_reported``, ``immunization.aefi_closed``)
in the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session

from onetrip.access import service as access
from onetrip.audit import service as audit
from onetrip.identity import service as identity
from onetrip.immunization import repository as repo
from onetrip.immunization import rules
from onetrip.immunization.models import AefiReport, Vaccination
from onetrip.immunization.schedule import RULE_SET
from onetrip.immunization.schemas import AefiIn
from onetrip.kit import clock
from onetrip.kit.errors import BadRequest, Conflict, Forbidden, Gone, NotFound
from onetrip.kit.masking import mask_name
from onetrip.kit.principal import Principal
from onetrip.outbox.service import record_event
from onetrip.persons.models import PatientRecord
from onetrip.rules.service import rule_values

WORKLIST_FILTERS = ("overdue", "open", "reported", "closed", "all")
_SKEW = dt.timedelta(minutes=1)  # a clock a little ahead of the server's is not "the future"


def aware(value: dt.datetime) -> dt.datetime:
    """A time as aware UTC; one without a zone is China Standard Time (what the report form sends)."""
    try:
        return value.replace(tzinfo=clock.LOCAL_TZ).astimezone(dt.UTC) if value.tzinfo is None \
            else value.astimezone(dt.UTC)
    except (OverflowError, ValueError):
        raise BadRequest("时间超出范围 / the time is out of range") from None


def report_hours(session: Session, day: dt.date) -> dict:
    """The rule value aefi_report_hours ({"default": 48, "urgent": 2}, R6.7) in force on ``day``."""
    value = rule_values(session, RULE_SET, on=day).get("aefi_report_hours")
    return value if isinstance(value, dict) else {}


def _clinic(principal: Principal) -> str:
    if not principal.organization_id:
        raise Forbidden("该账号不属于任何门诊，不能填报异常反应 / this account belongs to no clinic: an AEFI report is "
                        "made by a clinic's user")
    return principal.organization_id


def _own(principal: Principal, report: AefiReport) -> None:
    if not principal.is_operator and report.organization_id != principal.organization_id:
        raise Forbidden("只能处理本门诊填报的异常反应报告 / only the reporting clinic may change this AEFI report")


def _read(session: Session, principal: Principal, person_id: str, organization_id: str, what: str,
          subtype: str = "read") -> None:
    """Own clinic's data (or the operator): audited; another institution's: the access policy decides, audited."""
    if principal.is_operator or organization_id == principal.organization_id:
        audit.record(session, principal, subtype, person_ids=[person_id], what=[what])
    else:
        access.require_read(session, principal, person_id, what, subtype)


def _times(data: AefiIn, dose: Vaccination | None, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    onset, discovered = aware(data.onset_at), aware(data.discovered_at)
    if onset > now + _SKEW:
        raise BadRequest("发生时间不能晚于现在 / the onset time cannot be in the future", expression=["onset_at"])
    if discovered > now + _SKEW:
        raise BadRequest("发现时间不能晚于现在 / the discovery time cannot be in the future",
                         expression=["discovered_at"])
    # the form has minutes: a reaction in the dose's own minute is after it
    if dose is not None and onset < clock.as_utc(dose.occurred_at).replace(second=0, microsecond=0):
        given = clock.local_iso(clock.as_utc(dose.occurred_at))[:16].replace("T", " ")
        raise BadRequest(f"发生时间不能早于接种时间（{given}）/ the onset cannot be before the dose was given "
                         f"({given})", expression=["onset_at"])
    if discovered < onset:
        raise BadRequest("发现时间不能早于发生时间 / the discovery time cannot be before the onset",
                         expression=["discovered_at"])
    return onset, discovered


def create(session: Session, principal: Principal, data: AefiIn, now: dt.datetime | None = None) -> AefiReport:
    """A draft report of the principal's clinic, with its deadline (R6.7) computed from the discovery time.
    From a vaccination (person and vaccine from it; reading it is audited and access-checked) or from a
    patient record (the audited, access-checked read) and a vaccine code — then the person's latest dose of
    that vaccine before the onset, if recorded, is the suspected dose."""
    now = now or clock.utcnow()
    org = _clinic(principal)
    dose: Vaccination | None = None
    if data.vaccination_id:
        dose = session.get(Vaccination, data.vaccination_id)
        if dose is None:
            raise NotFound(f"接种记录不存在：{data.vaccination_id[:32]} / no vaccination {data.vaccination_id[:32]!r}: "
                           f"check the suspected dose", expression=["vaccination_id"])
        if dose.status != "completed":
            raise Conflict("该接种记录已标记为录入错误，不能作为可疑剂次 / this vaccination was marked entered-in-error: "
                           "it cannot be the suspected dose")
        if data.vaccine_code and data.vaccine_code != dose.vaccine_code:
            raise BadRequest(f"疫苗与接种记录不符（记录为 {dose.vaccine_code}）/ the vaccine does not match the "
                             f"vaccination ({dose.vaccine_code})", expression=["vaccine_code"])
        if data.patient_id and data.patient_id != dose.patient_record_id:
            raise BadRequest("患者与接种记录不符 / the patient does not match the vaccination",
                             expression=["patient_id"])
        _read(session, principal, dose.person_id, dose.organization_id, f"Immunization/{dose.id}")
        person_id, record_id, vaccine = dose.person_id, dose.patient_record_id, dose.vaccine_code
    else:
        if not data.patient_id or not data.vaccine_code:
            raise BadRequest("请给出可疑接种记录（vaccination_id），或患者与疫苗（patient_id 与 vaccine_code）/ give the "
                             "suspected vaccination (vaccination_id), or the patient and the vaccine (patient_id and "
                             "vaccine_code)", expression=["vaccination_id"])
        try:
            rec = identity.read(session, principal, data.patient_id)  # the audited, access-checked read
        except (NotFound, Gone):
            raise NotFound(f"未找到该患者（{data.patient_id[:32]}）/ no patient {data.patient_id[:32]!r}",
                           expression=["patient_id"]) from None
        person_id, record_id, vaccine = rec.person_id, rec.id, data.vaccine_code
        dose = repo.last_dose_before(session, person_id, vaccine, aware(data.onset_at))
    onset, discovered = _times(data, dose, now)
    deadline = rules.aefi_deadline(discovered, data.severity, data.cluster,
                                   report_hours(session, clock.local_date(discovered)))
    report = AefiReport(
        person_id=person_id, patient_record_id=record_id, organization_id=org,
        vaccination_id=dose.id if dose else None, vaccine_code=vaccine, onset_at=onset, discovered_at=discovered,
        severity=data.severity, cluster=data.cluster, symptoms=list(dict.fromkeys(data.symptoms)),
        description=(data.description or "").strip() or None, deadline_at=deadline, status="draft",
        created_by=principal.name, late=False)
    session.add(report)
    session.flush()
    audit.record(session, principal, "create", person_ids=[person_id], what=[f"AdverseEvent/{report.id}"],
                 detail={"severity": report.severity, "cluster": report.cluster})
    record_event(session, "immunization.aefi_created", "AdverseEvent", report.id, {
        "organization_id": org, "vaccine_code": vaccine, "vaccination_id": report.vaccination_id,
        "severity": report.severity, "cluster": report.cluster, "deadline_at": deadline.isoformat()},
        person_id=person_id)
    session.flush()
    return report


def get(session: Session, principal: Principal, report_id: str) -> AefiReport:
    """One report: the reporting clinic's own (audited), another clinic's through the access policy."""
    report = session.get(AefiReport, report_id)
    if report is None:
        raise NotFound("异常反应报告不存在 / AEFI report not found")
    _read(session, principal, report.person_id, report.organization_id, f"AdverseEvent/{report.id}")
    return report


@dataclass(frozen=True)
class Row:
    report: AefiReport
    name: str  # masked
    state: str  # overdue | open | reported | closed
    minutes_left: int | None  # to the deadline while a draft; negative: past it


def row(session: Session, report: AefiReport, now: dt.datetime | None = None) -> Row:
    """The report as the worklist shows it: masked name, state and minutes left at ``now``."""
    now = now or clock.utcnow()
    rec = session.get(PatientRecord, report.patient_record_id)
    deadline = clock.as_utc(report.deadline_at)
    return Row(report, mask_name(rec.name or "") if rec else "",
               rules.aefi_state(report.status, deadline, now),
               rules.aefi_minutes_left(deadline, now) if report.status == "draft" else None)


def worklist(session: Session, principal: Principal, status: str | None = None, now: dt.datetime | None = None
             ) -> list[Row]:
    """The clinic's reports (the operator without a clinic: every clinic's): ``overdue`` drafts past their
    deadline, ``open`` every draft, ``reported``, ``closed``, ``all``; default the drafts and the reported
    ones. Overdue first, then by deadline. Audited as one search of the people listed."""
    now = now or clock.utcnow()
    status = status or "active"
    if status not in (*WORKLIST_FILTERS, "active"):
        raise BadRequest(f"status 须为 {'、'.join(WORKLIST_FILTERS)} 之一 / status must be one of "
                         f"{', '.join(WORKLIST_FILTERS)}", expression=["status"])
    org = None if principal.is_operator and not principal.organization_id else _clinic(principal)
    statuses = {"overdue": ("draft",), "open": ("draft",), "reported": ("reported",), "closed": ("closed",),
                "all": rules.AEFI_STATUSES, "active": ("draft", "reported")}[status]
    reports = repo.aefi_reports(session, org, statuses, overdue_at=now if status == "overdue" else None)
    rows = [row(session, r, now) for r in reports]
    rows.sort(key=lambda x: (x.state != rules.AEFI_OVERDUE, x.report.status != "draft",
                             clock.as_utc(x.report.deadline_at)))
    if rows:
        people = sorted({x.report.person_id for x in rows})
        audit.record(session, principal, "search", person_ids=people, what=[f"AdverseEvent?status={status}"] * len(people))
    return rows


def submit(session: Session, principal: Principal, report_id: str, now: dt.datetime | None = None) -> AefiReport:
    """Report it (上报): reported_at now; ``late`` when after the deadline (R6.7)."""
    now = now or clock.utcnow()
    report = session.get(AefiReport, report_id)
    if report is None:
        raise NotFound("异常反应报告不存在 / AEFI report not found")
    _own(principal, report)
    if report.status != "draft":
        raise Conflict("该报告已上报 / the report has been made already")
    report.status, report.reported_at, report.reported_by = "reported", now, principal.name
    report.late = rules.aefi_late(clock.as_utc(report.deadline_at), now)
    session.flush()
    audit.record(session, principal, "update", person_ids=[report.person_id], what=[f"AdverseEvent/{report.id}"],
                 detail={"status": "reported", "late": report.late})
    record_event(session, "immunization.aefi_reported", "AdverseEvent", report.id, {
        "organization_id": report.organization_id, "severity": report.severity, "cluster": report.cluster,
        "reported_at": now.isoformat(), "late": report.late}, person_id=report.person_id)
    session.flush()
    return report


def close(session: Session, principal: Principal, report_id: str, note: str, now: dt.datetime | None = None
          ) -> AefiReport:
    """Close a reported case with its outcome (a note is required)."""
    now = now or clock.utcnow()
    report = session.get(AefiReport, report_id)
    if report is None:
        raise NotFound("异常反应报告不存在 / AEFI report not found")
    _own(principal, report)
    note = (note or "").strip()
    if report.status == "draft":
        raise Conflict("请先上报再结案 / report it before closing it")
    if report.status == "closed":
        raise Conflict("该报告已结案 / the report is closed already")
    if len(note) < 2:
        raise BadRequest("结案须填写转归说明 / closing needs a note on the outcome", expression=["note"])
    report.status, report.closed_at, report.closed_by, report.outcome = "closed", now, principal.name, note
    session.flush()
    audit.record(session, principal, "update", person_ids=[report.person_id], what=[f"AdverseEvent/{report.id}"],
                 detail={"status": "closed"})
    record_event(session, "immunization.aefi_closed", "AdverseEvent", report.id, {
        "organization_id": report.organization_id, "closed_at": now.isoformat()}, person_id=report.person_id)
    session.flush()
    return report
