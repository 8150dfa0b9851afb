"""AEFI reports (issue 20 point 5) on SQLite and PostgreSQL: the deadlines of RULES R6.7 (48 h from discovery;
2 h for death, serious or cluster events) as a pure-function table; the API — create from a dose or from a
patient and vaccine, the validation errors as OperationOutcomes, the worklist (an overdue draft listed, an
on-time one not), reporting (late after the deadline), closing with a note, another clinic refused — and the
audit and outbox rows each change writes."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from sqlalchemy import select

from onetrip.audit.models import AuditEvent
from onetrip.auth import service as auth_service
from onetrip.immunization import aefi, rules
from onetrip.immunization.models import AefiReport
from onetrip.immunization.schemas import AefiIn
from onetrip.kit import clock
from onetrip.outbox.models import OutboxEvent
from tests.factories import auth, register_patient, token

API = "/api/immunization"
NO = {"fever": False, "allergy": False, "immune": False, "neuro": False, "reaction": False}
_codes = itertools.count(1)
T0 = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)


# --- the deadline rule (R6.7), pure functions ------------------------------------------------------------------

@pytest.mark.parametrize(("severity", "cluster", "values", "hours"), [
    ("general", False, None, 48),
    ("serious", False, None, 2),
    ("death", False, None, 2),
    ("general", True, None, 2),  # a cluster (群体性) event is urgent whatever its severity
    ("serious", True, None, 2),
    ("general", False, {"default": 48, "urgent": 2}, 48),  # the seeded rule value
    ("general", False, {"default": 24}, 24),  # an operator's value overrides the default
    ("death", False, {"urgent": 1}, 1),
])
def test_deadline_table(severity, cluster, values, hours):
    assert rules.aefi_deadline(T0, severity, cluster, values) == T0 + dt.timedelta(hours=hours)


def test_state_minutes_and_late():
    deadline = T0 + dt.timedelta(hours=2)
    assert rules.aefi_state("draft", deadline, T0) == "open"
    assert rules.aefi_state("draft", deadline, deadline) == "open"  # due at the deadline, not yet overdue
    assert rules.aefi_state("draft", deadline, deadline + dt.timedelta(seconds=1)) == "overdue"
    assert rules.aefi_state("reported", deadline, deadline + dt.timedelta(days=3)) == "reported"
    assert rules.aefi_state("closed", deadline, T0) == "closed"
    assert rules.aefi_minutes_left(deadline, T0) == 120
    assert rules.aefi_minutes_left(deadline, deadline + dt.timedelta(minutes=90, seconds=10)) == -91
    assert rules.aefi_late(deadline, deadline) is False
    assert rules.aefi_late(deadline, deadline + dt.timedelta(minutes=1)) is True


# --- the API ---------------------------------------------------------------------------------------------------

def now_local() -> dt.datetime:
    return clock.utcnow().astimezone(clock.LOCAL_TZ)


def iso(moment: dt.datetime) -> str:
    return moment.isoformat()


def born(days_ago: int) -> dt.date:
    return clock.local_date(clock.utcnow()) - dt.timedelta(days=days_ago)


def child(db, org: str, name: str = "赵小禾") -> str:
    return register_patient(db, org, name=name, sex="2", birth_date=born(70))


def given_dose(client, hdr, world, db) -> dict:
    """A child of clinic A vaccinated at the desk now (HepB dose 1): the vaccination record."""
    code = f"7{next(_codes):019d}"
    r = client.post(f"{API}/inbound", headers=hdr, json={
        "organization_id": world.org_a, "vaccine_code": "HepB", "product_name": "HepB 疫苗 10μg",
        "holder": "示例生物制品有限公司", "specification": "0.5 mL/支", "doses_per_package": 1,
        "lot_number": f"AE{next(_codes)}", "expiry": born(-365).isoformat(), "trace_codes": [code]})
    assert r.status_code == 201, r.text
    patient = child(db, world.org_a)
    r = client.post(f"{API}/desk/vaccinations", headers=hdr, json={
        "patient_id": patient, "trace_code": code, "answers": NO, "site": "right-deltoid", "route": "IM"})
    assert r.status_code == 201, r.text
    return r.json()


def create(client, hdr, **body):
    return client.post(f"{API}/aefi", headers=hdr, json=body)


def outcome_text(r) -> str:
    body = r.json()
    assert body["resourceType"] == "OperationOutcome", body
    return body["issue"][0]["details"]["text"]


def audits(db, report_id: str) -> list[str]:
    with db.session() as s:
        return list(s.scalars(select(AuditEvent.subtype).where(AuditEvent.entity_what == f"AdverseEvent/{report_id}")
                              .order_by(AuditEvent.seq)))


def events(db, report_id: str) -> list[OutboxEvent]:
    with db.session() as s:
        return list(s.scalars(select(OutboxEvent).where(OutboxEvent.aggregate_id == report_id)
                              .order_by(OutboxEvent.id)))


@pytest.fixture(scope="module")
def doc_b(client, world, schedule_seeded) -> dict[str, str]:
    """A clinician of the other institution (B)."""
    return auth(token(client, world.users["doc_b"]))


def test_create_from_a_dose_report_and_close(client, vac, world, db):
    dose = given_dose(client, vac, world, db)
    now = now_local()
    r = create(client, vac, vaccination_id=dose["id"], onset_at=iso(now), discovered_at=iso(now),
               severity="general", symptoms=["fever", "local-reaction", "fever"], description="体温 38.5 °C")
    assert r.status_code == 201, r.text
    got = r.json()
    assert got["patient_id"] == dose["patient_id"] and got["vaccine_code"] == "HepB"
    assert got["vaccination_id"] == dose["id"] and got["organization_id"] == world.org_a
    assert got["symptoms"] == ["fever", "local-reaction"] and got["status"] == "draft" and got["state"] == "open"
    assert got["name"] == "赵**"  # masked
    deadline = dt.datetime.fromisoformat(got["deadline_at"])
    assert deadline - dt.datetime.fromisoformat(got["discovered_at"]) == dt.timedelta(hours=48)
    assert 47 * 60 <= got["minutes_left"] <= 48 * 60

    r = client.post(f"{API}/aefi/{got['id']}/close", headers=vac, json={"note": "已痊愈"})
    assert r.status_code == 409 and "report it before closing" in outcome_text(r)
    r = client.post(f"{API}/aefi/{got['id']}/report", headers=vac)
    assert r.status_code == 200, r.text
    rep = r.json()
    assert rep["status"] == "reported" and rep["late"] is False and rep["reported_by"] and rep["minutes_left"] is None
    assert client.post(f"{API}/aefi/{got['id']}/report", headers=vac).status_code == 409
    r = client.post(f"{API}/aefi/{got['id']}/close", headers=vac, json={"note": "x"})
    assert r.status_code in (400, 422) and r.json()["resourceType"] == "OperationOutcome"
    r = client.post(f"{API}/aefi/{got['id']}/close", headers=vac, json={"note": "3 日后随访已痊愈"})
    assert r.status_code == 200 and r.json()["status"] == "closed" and r.json()["outcome"] == "3 日后随访已痊愈"
    assert client.get(f"{API}/aefi/{got['id']}", headers=vac).json()["state"] == "closed"

    assert audits(db, got["id"]) == ["create", "update", "update", "read"]  # create, report, close, read
    assert [e.event_type for e in events(db, got["id"])] == [
        "immunization.aefi_created", "immunization.aefi_reported", "immunization.aefi_closed"]
    created = events(db, got["id"])[0]
    assert created.payload["severity"] == "general" and created.person_id is not None
    assert events(db, got["id"])[1].payload["late"] is False


def test_validation_errors_are_clear_operation_outcomes(client, vac, world, db):
    dose = given_dose(client, vac, world, db)
    given = dt.datetime.fromisoformat(dose["occurred_at"])
    now = now_local()
    r = create(client, vac, vaccination_id="nosuchvaccination000000000000001", onset_at=iso(now),
               discovered_at=iso(now))
    assert r.status_code == 404 and "接种记录不存在" in outcome_text(r) and "no vaccination" in outcome_text(r)
    r = create(client, vac, vaccination_id=dose["id"], onset_at=iso(given - dt.timedelta(hours=3)),
               discovered_at=iso(now))
    assert r.status_code == 400 and "发生时间不能早于接种时间" in outcome_text(r)
    assert r.json()["issue"][0]["expression"] == ["onset_at"]
    r = create(client, vac, vaccination_id=dose["id"], onset_at=iso(now), discovered_at=iso(now - dt.timedelta(
        minutes=30)))
    assert r.status_code == 400 and "cannot be before the onset" in outcome_text(r)
    r = create(client, vac, vaccination_id=dose["id"], onset_at=iso(now + dt.timedelta(hours=2)),
               discovered_at=iso(now + dt.timedelta(hours=2)))
    assert r.status_code == 400 and "onset time cannot be in the future" in outcome_text(r)
    r = create(client, vac, vaccination_id=dose["id"], onset_at=iso(now), discovered_at=iso(now + dt.timedelta(
        hours=1)))
    assert r.status_code == 400 and "发现时间不能晚于现在" in outcome_text(r)
    r = create(client, vac, onset_at=iso(now), discovered_at=iso(now))
    assert r.status_code == 400 and "vaccination_id" in outcome_text(r)
    r = create(client, vac, vaccination_id=dose["id"], vaccine_code="MMR", onset_at=iso(now), discovered_at=iso(now))
    assert r.status_code == 400 and "does not match" in outcome_text(r)
    r = create(client, vac, vaccination_id=dose["id"], severity="mild", onset_at=iso(now), discovered_at=iso(now))
    assert r.status_code in (400, 422) and r.json()["resourceType"] == "OperationOutcome"
    r = create(client, vac, patient_id="nosuchpatient", vaccine_code="HepB", onset_at=iso(now),
               discovered_at=iso(now))
    assert r.status_code == 404 and "no patient" in outcome_text(r)
    with db.session() as s:  # nothing was stored by the refusals
        assert s.scalar(select(AefiReport).where(AefiReport.vaccination_id == dose["id"])) is None


def test_worklist_overdue_first_and_late_reporting(client, vac, doc, world, db):
    patient = child(db, world.org_a, "钱小川")
    now = now_local()
    # a general event discovered 50 h ago: past its 48 h — overdue; a serious one 3 h ago: past its 2 h
    old = create(client, doc, patient_id=patient, vaccine_code="MMR", onset_at=iso(now - dt.timedelta(hours=60)),
                 discovered_at=iso(now - dt.timedelta(hours=50)), severity="general", symptoms=["rash"])
    assert old.status_code == 201, old.text  # a clinician of the clinic reports too
    old = old.json()
    serious = create(client, vac, patient_id=patient, vaccine_code="MMR", onset_at=iso(now - dt.timedelta(hours=4)),
                     discovered_at=iso(now - dt.timedelta(hours=3)), severity="serious").json()
    fresh = create(client, vac, patient_id=patient, vaccine_code="MMR", onset_at=iso(now - dt.timedelta(hours=2)),
                   discovered_at=iso(now - dt.timedelta(hours=1)), severity="general").json()
    cluster = create(client, vac, patient_id=patient, vaccine_code="MMR", onset_at=iso(now - dt.timedelta(hours=1)),
                     discovered_at=iso(now - dt.timedelta(minutes=30)), severity="general", cluster=True).json()
    assert old["state"] == "overdue" and -121 <= old["minutes_left"] <= -119
    assert serious["state"] == "overdue" and fresh["state"] == "open" and cluster["state"] == "open"
    assert 89 <= cluster["minutes_left"] <= 90  # 2 h from discovery: a cluster event

    overdue = client.get(f"{API}/aefi?status=overdue", headers=vac).json()
    ids = [x["id"] for x in overdue]
    assert old["id"] in ids and serious["id"] in ids
    assert fresh["id"] not in ids and cluster["id"] not in ids
    assert ids.index(old["id"]) < ids.index(serious["id"])  # the earliest deadline first
    drafts = [x["id"] for x in client.get(f"{API}/aefi?status=open", headers=vac).json()]
    assert fresh["id"] in drafts and drafts.index(serious["id"]) < drafts.index(cluster["id"]) < \
        drafts.index(fresh["id"])
    with db.session() as s:
        assert s.scalar(select(AuditEvent).where(AuditEvent.entity_what == "AdverseEvent?status=overdue")) is not None

    late = client.post(f"{API}/aefi/{old['id']}/report", headers=vac).json()
    assert late["status"] == "reported" and late["late"] is True
    on_time = client.post(f"{API}/aefi/{fresh['id']}/report", headers=vac).json()
    assert on_time["late"] is False
    assert [e.payload["late"] for e in events(db, old["id"]) if e.event_type == "immunization.aefi_reported"] == [
        True]
    overdue = [x["id"] for x in client.get(f"{API}/aefi?status=overdue", headers=vac).json()]
    assert old["id"] not in overdue and serious["id"] in overdue
    reported = [x["id"] for x in client.get(f"{API}/aefi?status=reported", headers=vac).json()]
    assert set(reported) >= {old["id"], fresh["id"]} and serious["id"] not in reported


def test_deadline_and_late_with_an_explicit_now(client, vac, world, db):
    """The service with explicit times: a dose's report made 49 h after discovery is late and was overdue."""
    dose = given_dose(client, vac, world, db)
    with db.session() as s:
        principal = auth_service.principal_from_token(s, vac["Authorization"][7:])
        given = clock.as_utc(dt.datetime.fromisoformat(dose["occurred_at"]))
        discovered = given + dt.timedelta(hours=1)
        report = aefi.create(s, principal, AefiIn(vaccination_id=dose["id"], onset_at=given,
                                                  discovered_at=discovered), now=discovered)
        assert clock.as_utc(report.deadline_at) == discovered + dt.timedelta(hours=48)
        at = discovered + dt.timedelta(hours=49)
        rows = {r.report.id: r for r in aefi.worklist(s, principal, "overdue", now=at)}
        assert rows[report.id].state == "overdue" and rows[report.id].minutes_left == -60
        before = {r.report.id for r in aefi.worklist(s, principal, "overdue", now=discovered + dt.timedelta(hours=47))}
        assert report.id not in before
        assert aefi.submit(s, principal, report.id, now=at).late is True
        s.rollback()


def test_another_clinic_cannot_read_or_change_a_report(client, vac, doc_b, world, db):
    patient = child(db, world.org_a, "孙小林")
    now = now_local()
    got = create(client, vac, patient_id=patient, vaccine_code="BCG", onset_at=iso(now - dt.timedelta(hours=1)),
                 discovered_at=iso(now), severity="death").json()
    assert got["state"] == "open" and 119 <= got["minutes_left"] <= 120  # death: 2 h
    r = client.get(f"{API}/aefi/{got['id']}", headers=doc_b)
    assert r.status_code == 403 and r.json()["resourceType"] == "OperationOutcome"
    with db.session() as s:  # the denial is audited (and kept)
        denied = s.scalar(select(AuditEvent).where(AuditEvent.entity_what == f"AdverseEvent/{got['id']}",
                                                   AuditEvent.outcome == "4"))
        assert denied is not None
    assert got["id"] not in [x["id"] for x in client.get(f"{API}/aefi?status=all", headers=doc_b).json()]
    assert client.post(f"{API}/aefi/{got['id']}/report", headers=doc_b).status_code == 403
    # nor create one about clinic A's patient without the access rules allowing it
    r = create(client, doc_b, patient_id=patient, vaccine_code="BCG", onset_at=iso(now), discovered_at=iso(now))
    assert r.status_code == 403
    with db.session() as s:
        assert s.get(AefiReport, got["id"]).status == "draft"


def test_a_read_only_token_cannot_write(client, world, vac):
    ro = auth(token(client, world.users["doc_a"], scope="user/AdverseEvent.r"))
    now = now_local()
    r = create(client, ro, patient_id="x", vaccine_code="BCG", onset_at=iso(now), discovered_at=iso(now))
    assert r.status_code == 403 and "AdverseEvent" in outcome_text(r)
    assert client.get(f"{API}/aefi", headers=ro).status_code == 200
    imm_only = auth(token(client, world.users["doc_a"], scope="user/Immunization.rs"))
    assert client.get(f"{API}/aefi", headers=imm_only).status_code == 403


def test_a_bureau_manager_neither_reads_nor_writes_reports(client, world):
    hdr = auth(token(client, world.users["mgr"]))
    assert client.get(f"{API}/aefi", headers=hdr).status_code == 403


# --- the pages (server-rendered; the browser test drives them in Chromium) -------------------------------------

def local_field(moment: dt.datetime) -> str:
    return moment.astimezone(clock.LOCAL_TZ).strftime("%Y-%m-%dT%H:%M")


def test_pages_form_errors_keep_the_input_then_worklist_and_detail(client, vac, world, db):
    dose = given_dose(client, vac, world, db)
    r = client.get("/ui/immunization/aefi/new?vaccination=nosuchdose", headers=vac)
    assert r.status_code == 404 and 'data-field="vaccination_id"' in r.text and 'value="nosuchdose"' in r.text
    r = client.get(f"/ui/immunization/aefi/new?vaccination={dose['id']}", headers=vac)
    assert r.status_code == 200 and 'id="aefi-dose"' in r.text and 'value="HepB" selected' in r.text
    given = dt.datetime.fromisoformat(dose["occurred_at"])
    form = {"vaccination_id": dose["id"], "vaccine_code": "HepB", "severity": "serious",
            "onset_at": local_field(given - dt.timedelta(hours=2)), "discovered_at": local_field(clock.utcnow()),
            "symptoms": ["fever", "convulsion"], "description": "高热惊厥一次"}
    r = client.post("/ui/immunization/aefi/new", headers=vac, data=form, follow_redirects=False)
    assert r.status_code == 400 and 'id="aefi-error"' in r.text and "发生时间不能早于接种时间" in r.text
    assert 'data-field="onset_at"' in r.text and "高热惊厥一次" in r.text  # what was typed is kept
    assert 'value="convulsion" checked' in r.text and 'value="serious" selected' in r.text
    form["onset_at"] = local_field(clock.utcnow())
    r = client.post("/ui/immunization/aefi/new", headers=vac, data=form, follow_redirects=False)
    assert r.status_code == 303, r.text
    url = r.headers["location"]
    report_id = url.rsplit("/", 1)[1]
    page = client.get(url, headers=vac)
    assert 'data-state="open"' in page.text and 'id="aefi-submit"' in page.text
    listed = client.get("/ui/immunization/aefi?status=open", headers=vac)
    assert f'data-id="{report_id}" data-state="open"' in listed.text

    patient = child(db, world.org_a, "李小溪")
    r = client.post("/ui/immunization/aefi/new", headers=vac, follow_redirects=False, data={
        "patient_id": patient, "vaccine_code": "MMR", "severity": "general",
        "onset_at": local_field(clock.utcnow() - dt.timedelta(hours=80)),
        "discovered_at": local_field(clock.utcnow() - dt.timedelta(hours=72))})
    assert r.status_code == 303, r.text
    overdue_id = r.headers["location"].rsplit("/", 1)[1]
    listed = client.get("/ui/immunization/aefi", headers=vac).text
    assert f'data-id="{overdue_id}" data-state="overdue"' in listed
    assert listed.index(overdue_id) < listed.index(report_id)  # overdue first
    assert "逾期 24 小时" in listed  # 72 h since discovery, 48 h allowed

    r = client.post(f"/ui/immunization/aefi/{report_id}/report", headers=vac, follow_redirects=False)
    assert r.status_code == 303
    page = client.get(url, headers=vac)
    assert 'data-state="reported"' in page.text and 'data-late="no"' in page.text
    r = client.post(f"/ui/immunization/aefi/{report_id}/close", headers=vac, data={"note": " "})
    assert r.status_code == 200 and 'id="aefi-error"' in r.text and "结案须填写转归说明" in r.text
    r = client.post(f"/ui/immunization/aefi/{report_id}/close", headers=vac, data={"note": "已痊愈"},
                    follow_redirects=False)
    assert r.status_code == 303
    page = client.get(url, headers=vac)
    assert 'data-state="closed"' in page.text and "已痊愈" in page.text
