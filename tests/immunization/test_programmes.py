"""Programmes (issue 20 point 6) on SQLite and PostgreSQL: the free influenza campaign for elderly residents
(eligibility by age on the reference date, invitations through notifications once, the dose at the desk marks
the invitation vaccinated and moves the coverage), HPV2 for girls reaching 13 with the forecaster's status,
and the guardian reminders for due childhood doses (once per dose, not before due, no contact counted)."""

from __future__ import annotations

import datetime as dt
import itertools

from sqlalchemy import select

from onetrip.audit.models import AuditEvent
from onetrip.identity import service as identity
from onetrip.identity.schemas import PatientInput
from onetrip.immunization import rules, tasks
from onetrip.immunization.forecast import add_months
from onetrip.immunization.models import Invitation, Reminder
from onetrip.kit import clock
from onetrip.kit.principal import cli_principal
from onetrip.outbox.models import OutboxEvent
from onetrip.persons.models import PatientRecord

API = "/api/immunization"
NO = {"fever": False, "allergy": False, "immune": False, "neuro": False, "reaction": False}
_seq = itertools.count(1)


def today() -> dt.date:
    return clock.local_date(clock.utcnow())


def years_before(day: dt.date, years: int) -> dt.date:
    return add_months(day, -12 * years)


def person(db, org: str, birth: dt.date, *, sex: str = "2", phone: str | None = "",
           township: str | None = None, name: str = "张桂兰") -> tuple[str, str]:
    """Register a resident at ``org``: (Patient record id, person id). Phone "" = a new number; None = none."""
    phone = f"138{next(_seq):08d}" if phone == "" else phone
    with db.session() as s:
        rec = identity.register(s, cli_principal(), PatientInput(
            organization_id=org, mrn=f"PG{next(_seq):07d}", name=name, sex=sex, birth_date=birth, phone=phone,
            street=township))
        s.commit()
        return rec.id, rec.person_id


def programme(client, hdr, **body) -> dict:
    n = next(_seq)
    base = {"code": f"P{n}", "name_zh": f"项目{n}", "name_en": f"Programme {n}", "kind": "campaign",
            "start_date": (today() - dt.timedelta(days=1)).isoformat(),
            "end_date": (today() + dt.timedelta(days=60)).isoformat()}
    r = client.post(f"{API}/programmes", headers=hdr, json={**base, **body})
    assert r.status_code == 201, r.text
    return r.json()


def eligible(client, hdr, pid: str) -> dict[str, dict]:
    r = client.get(f"{API}/programmes/{pid}/eligible", headers=hdr)
    assert r.status_code == 200, r.text
    return {row["person_id"]: row for row in r.json()}


def coverage(client, hdr, pid: str) -> dict:
    r = client.get(f"{API}/programmes/{pid}", headers=hdr)
    assert r.status_code == 200, r.text
    return r.json()["coverage"]


def outbox(db, event_type: str, aggregate_ids: set[str] | None = None) -> list[OutboxEvent]:
    with db.session() as s:
        rows = list(s.scalars(select(OutboxEvent).where(OutboxEvent.event_type == event_type)))
    return [e for e in rows if aggregate_ids is None or e.aggregate_id in aggregate_ids]


def invitations(db, programme_id: str) -> dict[str, Invitation]:
    with db.session() as s:
        return {i.person_id: i for i in s.scalars(select(Invitation).where(Invitation.programme_id == programme_id))}


def inbound(client, hdr, world, code: str, n: int = 1) -> list[str]:
    codes = [f"7{next(_seq):019d}" for _ in range(n)]
    r = client.post(f"{API}/inbound", headers=hdr, json={
        "organization_id": world.org_a, "vaccine_code": code, "product_name": f"{code} 疫苗",
        "holder": "示例生物制品有限公司", "specification": "0.5 mL/支", "doses_per_package": 1,
        "lot_number": f"PL{next(_seq)}", "expiry": (today() + dt.timedelta(days=365)).isoformat(),
        "trace_codes": codes})
    assert r.status_code == 201, r.text
    return codes


def give(client, hdr, record_id: str, code: str):
    return client.post(f"{API}/desk/vaccinations", headers=hdr, json={
        "patient_id": record_id, "trace_code": code, "answers": NO, "site": "left-deltoid", "route": "IM"})


# --- pure rules ------------------------------------------------------------------------------------------------

def test_age_boundaries_pure():
    ref = dt.date(2026, 10, 1)
    assert rules.campaign_eligible(dt.date(1966, 10, 1), "female", ref, 60, None, None)  # 60 on the day
    assert not rules.campaign_eligible(dt.date(1966, 10, 2), "female", ref, 60, None, None)  # 59, 60 tomorrow
    assert not rules.campaign_eligible(dt.date(1950, 1, 1), "female", ref, 60, 75, None)  # 76
    assert rules.campaign_eligible(dt.date(1950, 10, 2), "male", ref, 60, 75, None)  # 75 until tomorrow
    # 29 February: 60 reached on 28 February of a common year, on the 29th of a leap year
    assert rules.campaign_eligible(dt.date(1964, 2, 29), "male", dt.date(2025, 2, 28), 61, None, None)
    assert not rules.campaign_eligible(dt.date(1964, 2, 29), "male", dt.date(2024, 2, 28), 60, None, None)
    assert rules.campaign_eligible(dt.date(1964, 2, 29), "male", dt.date(2024, 2, 29), 60, None, None)
    assert not rules.cohort_eligible(dt.date(2013, 6, 1), "male", dt.date(2026, 1, 1), dt.date(2026, 12, 31), 13,
                                     "female")
    assert rules.cohort_eligible(dt.date(2013, 12, 31), "female", dt.date(2026, 1, 1), dt.date(2026, 12, 31), 13,
                                 "female")
    assert not rules.cohort_eligible(dt.date(2014, 1, 1), "female", dt.date(2026, 1, 1), dt.date(2026, 12, 31), 13,
                                     "female")


# --- the influenza campaign ------------------------------------------------------------------------------------

def test_campaign_eligible_list_by_age_on_the_reference_day(client, vac, db, world):
    ref = dt.date(2026, 10, 1)
    town = f"城关镇{next(_seq)}"
    sixty = person(db, world.org_a, years_before(ref, 60), township=town, name="李建国")[1]
    fifty_nine = person(db, world.org_a, years_before(ref, 60) + dt.timedelta(days=1), township=town)[1]
    eighty = person(db, world.org_a, dt.date(1946, 3, 5), township=town, sex="1")[1]
    elsewhere = person(db, world.org_b, dt.date(1950, 3, 6), township=town, name="周玉珍")[1]  # another institution
    other_town = person(db, world.org_a, dt.date(1950, 3, 7), township=town + "外", name="吴秀英")[1]
    p = programme(client, vac, reference_date=ref.isoformat(), township=town)
    assert (p["vaccine_code"], p["min_age_years"], p["free"]) == ("IIV", 60, True)  # rule value influenza_campaign
    rows = eligible(client, vac, p["id"])
    assert set(rows) == {sixty, eighty}
    assert fifty_nine not in rows and elsewhere not in rows and other_town not in rows
    row = rows[sixty]
    assert row["age"] == 60 and row["invitation"] is None
    assert row["name"] != "李建国" and row["name"].startswith("李")  # masked in lists
    assert row["phone"].startswith("+86138****")  # E.164, masked
    assert rows[eighty]["age"] == 80
    with db.session() as s:  # the list read is audited with the people listed
        audited = set(s.scalars(select(AuditEvent.entity_person_id).where(
            AuditEvent.entity_what == f"Group/imm-programme-{p['id']}", AuditEvent.subtype == "search")))
    assert {sixty, eighty} <= audited
    bad = client.post(f"{API}/programmes", headers=vac, json={
        "code": p["code"], "name_zh": "x", "name_en": "x", "kind": "campaign", "start_date": "2026-10-01",
        "end_date": "2026-12-31"})
    assert bad.status_code == 409 and bad.json()["resourceType"] == "OperationOutcome"
    backwards = client.post(f"{API}/programmes", headers=vac, json={
        "code": f"X{next(_seq)}", "name_zh": "x", "name_en": "x", "kind": "campaign", "start_date": "2026-10-01",
        "end_date": "2026-09-01"})
    assert backwards.status_code == 400


def test_invitations_are_sent_once_through_notifications(client, vac, db, world):
    town = f"河口镇{next(_seq)}"
    a = person(db, world.org_a, dt.date(1950, 5, 5), township=town)[1]
    b = person(db, world.org_a, dt.date(1955, 5, 5), township=town)[1]
    c = person(db, world.org_a, dt.date(1956, 5, 5), township=town, phone=None)[1]
    p = programme(client, vac, township=town)
    first = client.post(f"{API}/programmes/{p['id']}/invite", headers=vac)
    assert first.status_code == 200, first.text
    assert first.json() == {"sent": 2, "already": 0, "no_contact": 1, "ineligible": 0}
    inv = invitations(db, p["id"])
    assert set(inv) == {a, b, c} and {i.status for i in inv.values()} == {"invited"}
    assert inv[c].notification_ref is None and inv[c].contact == "none"
    sent = outbox(db, "immunization.invitation", {i.id for i in inv.values()})
    assert len(sent) == 2
    assert {e.event_id for e in sent} == {inv[a].notification_ref, inv[b].notification_ref}
    assert {e.person_id for e in sent} == {a, b} and all(e.payload["vaccine_code"] == "IIV" for e in sent)
    second = client.post(f"{API}/programmes/{p['id']}/invite", headers=vac)
    assert second.json() == {"sent": 0, "already": 2, "no_contact": 1, "ineligible": 0}
    assert len(outbox(db, "immunization.invitation", {i.id for i in inv.values()})) == 2  # nothing sent twice
    assert invitations(db, p["id"])[a].notification_ref == inv[a].notification_ref
    with db.session() as s:
        audited = set(s.scalars(select(AuditEvent.entity_what).where(AuditEvent.subtype == "create",
                                                                     AuditEvent.entity_person_id.in_([a, b, c]))))
    assert {f"CommunicationRequest/{inv[x].id}" for x in (a, b, c)} <= audited
    assert outbox(db, "immunization.programme.invited", {p["id"]})
    cov = coverage(client, vac, p["id"])
    assert (cov["eligible"], cov["invited"], cov["notified"], cov["no_contact"], cov["vaccinated"]) == (3, 3, 2, 1, 0)


def test_dose_at_the_desk_marks_the_invitation_and_moves_coverage(client, vac, db, world):
    town = f"新华镇{next(_seq)}"
    rec1, p1 = person(db, world.org_a, dt.date(1952, 1, 9), township=town)
    rec2, p2 = person(db, world.org_a, dt.date(1953, 1, 9), township=town)
    rec3, p3 = person(db, world.org_a, dt.date(1954, 1, 9), township=town)
    young_rec, _ = person(db, world.org_a, dt.date(1990, 1, 9), township=town)
    p = programme(client, vac, township=town)
    assert client.post(f"{API}/programmes/{p['id']}/invite", headers=vac).json()["sent"] == 3
    assert coverage(client, vac, p["id"])["percent"] == 0.0
    child = client.get(f"{API}/desk/child", params={"q": rec1}, headers=vac).json()
    assert any(d["vaccine_code"] == "IIV" and d["status"] == "due" for d in child["due"])
    codes = inbound(client, vac, world, "IIV", n=4)
    r = give(client, vac, rec1, codes[0])
    assert r.status_code == 201, r.text
    vaccination = r.json()["id"]
    inv = invitations(db, p["id"])
    assert inv[p1].status == "vaccinated" and inv[p1].vaccination_id == vaccination
    assert inv[p2].status == "invited"
    cov = coverage(client, vac, p["id"])
    assert (cov["eligible"], cov["vaccinated"], cov["percent"]) == (3, 1, 33.3)
    assert outbox(db, "immunization.invitation.vaccinated", {inv[p1].id})
    with db.session() as s:
        assert s.scalar(select(AuditEvent.seq).where(AuditEvent.entity_what == f"CommunicationRequest/{inv[p1].id}",
                                                     AuditEvent.subtype == "update"))
    # no second influenza dose from the same invitation; nobody without an invitation gets one
    again = give(client, vac, rec1, codes[1])
    assert again.status_code == 409 and "IIV" in again.text
    not_invited = give(client, vac, young_rec, codes[1])
    assert not_invited.status_code == 409
    # declined: no longer a due dose at the desk
    d = client.post(f"{API}/invitations/{inv[p3].id}/decline", headers=vac)
    assert d.status_code == 200 and d.json()["status"] == "declined"
    assert give(client, vac, rec3, codes[1]).status_code == 409
    assert give(client, vac, rec2, codes[2]).status_code == 201
    cov = coverage(client, vac, p["id"])
    assert (cov["vaccinated"], cov["declined"], cov["percent"]) == (2, 1, 66.7)


# --- HPV2 for girls at 13 --------------------------------------------------------------------------------------

def test_hpv2_cohort_lists_girls_reaching_13_with_their_forecast(client, vac, db, world):
    t = today()
    start, end = t - dt.timedelta(days=10), t + dt.timedelta(days=90)
    town = f"石桥镇{next(_seq)}"
    soon_rec, soon = person(db, world.org_a, years_before(t + dt.timedelta(days=30), 13), township=town)
    now_rec, now = person(db, world.org_a, years_before(t - dt.timedelta(days=5), 13), township=town)
    first_day = person(db, world.org_a, years_before(start, 13), township=town)[1]
    boy = person(db, world.org_a, years_before(t + dt.timedelta(days=30), 13), sex="1", township=town)[1]
    twelve = person(db, world.org_a, years_before(end + dt.timedelta(days=1), 13), township=town)[1]
    before = person(db, world.org_a, years_before(start - dt.timedelta(days=1), 13), township=town)[1]
    p = programme(client, vac, kind="cohort", township=town, start_date=start.isoformat(),
                  end_date=end.isoformat())
    assert (p["vaccine_code"], p["min_age_years"], p["sex"]) == ("HPV2", 13, "female")  # rule value hpv2_cohort
    rows = eligible(client, vac, p["id"])
    assert set(rows) == {soon, now, first_day}
    assert boy not in rows and twelve not in rows and before not in rows
    assert (rows[soon]["forecast_dose"], rows[soon]["forecast_status"]) == (1, "notdue")
    assert rows[soon]["forecast_earliest"] == (t + dt.timedelta(days=30)).isoformat()
    assert (rows[now]["forecast_dose"], rows[now]["forecast_status"]) == (1, "due")
    # invitations to guardians the same way (a girl's registered phone is her guardian's)
    assert client.post(f"{API}/programmes/{p['id']}/invite", headers=vac).json()["sent"] == 3
    inv = invitations(db, p["id"])
    assert inv[now].contact == "guardian"
    # dose 1 at the desk: the invitation is vaccinated, dose 2 comes 6 months later (the forecaster)
    code = inbound(client, vac, world, "HPV2")[0]
    r = give(client, vac, now_rec, code)
    assert r.status_code == 201, r.text
    assert r.json()["dose_number"] == 1
    rows = eligible(client, vac, p["id"])
    assert rows[now]["invitation"] == "vaccinated"
    assert (rows[now]["forecast_dose"], rows[now]["forecast_status"]) == (2, "notdue")
    assert rows[now]["forecast_earliest"] == add_months(t, 6).isoformat()
    assert give(client, vac, soon_rec, inbound(client, vac, world, "HPV2")[0]).status_code == 409  # not 13 yet


# --- reminders to guardians ------------------------------------------------------------------------------------

def _reminders(db, person_id: str) -> dict[tuple[str, int], Reminder]:
    with db.session() as s:
        return {(r.series, r.dose_number): r for r in s.scalars(select(Reminder).where(Reminder.person_id == person_id))}


def test_reminders_once_per_due_dose_and_not_before(db, world, schedule_seeded):
    t = today()
    # Polio-1 (IPV at 2 months) is due in 8 days: outside reminder_days_ahead (7) today, inside tomorrow
    birth = add_months(t + dt.timedelta(days=8), -2)
    rec, child = person(db, world.org_a, birth, sex="1", phone="13900139000", name="王小宝")
    _, silent = person(db, world.org_a, add_months(t, -1), sex="2", phone=None, name="赵小妹")
    with db.session() as s:
        first = tasks.remind_due(s, t)
        s.commit()
    got = _reminders(db, child)
    assert set(got) == {("HepB", 1), ("BCG", 1)}  # due at birth (no dose recorded): already due
    assert ("Polio", 1) not in got and ("DTaP", 1) not in got and ("MPSV-A", 1) not in got  # not within 7 days
    assert got[("HepB", 1)].due_date == birth and got[("HepB", 1)].vaccine_code == "HepB"
    assert _reminders(db, silent) == {} and first["no_contact"] >= 1
    events = outbox(db, "immunization.reminder", {r.id for r in got.values()})
    assert len(events) == len(got) and {e.event_id for e in events} == {r.notification_ref for r in got.values()}
    assert all(e.person_id == child and e.payload["contact"] == "guardian" for e in events)
    with db.session() as s:
        audited = set(s.scalars(select(AuditEvent.entity_what).where(AuditEvent.entity_person_id == child,
                                                                     AuditEvent.subtype == "create")))
    assert {f"CommunicationRequest/imm-reminder-{r.id}" for r in got.values()} <= audited
    with db.session() as s:  # the same day again: nothing twice
        second = tasks.remind_due(s, t)
        s.commit()
    assert second["sent"] == 0 and second["already"] >= len(got)
    assert _reminders(db, child).keys() == got.keys()
    with db.session() as s:  # tomorrow: Polio-1 is now within 7 days, and only it is new
        third = tasks.remind_due(s, t + dt.timedelta(days=1))
        s.commit()
    assert set(_reminders(db, child)) - set(got) == {("Polio", 1), ("DTaP", 1)}  # both at 2 months (2025 edition)
    assert _reminders(db, child)[("Polio", 1)].due_date == add_months(birth, 2) == t + dt.timedelta(days=8)
    assert third["sent"] >= 2
    assert len(outbox(db, "immunization.reminder", {r.id for r in _reminders(db, child).values()})) == \
        len(_reminders(db, child))
    with db.session() as s:
        assert s.get(PatientRecord, rec).person_id == child


def test_remind_cli_prints_the_summary(cli_env, db, world, schedule_seeded):
    from onetrip.cli.main import app

    _, child = person(db, world.org_a, add_months(today(), -1), sex="1", name="孙小龙")
    r = cli_env.invoke(app, ["immunization", "remind"])
    assert r.exit_code == 0, r.output
    assert "reminders sent" in r.output
    assert ("HepB", 1) in _reminders(db, child)
    r = cli_env.invoke(app, ["immunization", "remind", "--date", "not-a-date"])
    assert r.exit_code == 2


# --- pages -----------------------------------------------------------------------------------------------------

def test_programme_pages_create_invite_and_show_coverage(client, vac, db, world):
    town = f"东岭乡{next(_seq)}"
    person(db, world.org_a, dt.date(1951, 8, 8), township=town, name="钱秀兰")
    person(db, world.org_a, dt.date(1952, 8, 8), township=town, name="孙德胜", phone=None)
    code = f"FLU{next(_seq)}"
    form = {"code": code, "name_zh": "老年人流感免费接种", "name_en": "Free influenza vaccination", "kind": "campaign",
            "township": town, "start_date": (today() - dt.timedelta(days=1)).isoformat(), "end_date": "bad-date"}
    r = client.post("/ui/immunization/programmes", headers=vac, data=form, follow_redirects=False)
    assert r.status_code == 400
    assert 'id="programme-error"' in r.text and 'data-field="end_date"' in r.text
    assert f'value="{code}"' in r.text and 'value="老年人流感免费接种"' in r.text  # what was typed is kept
    form["end_date"] = (today() + dt.timedelta(days=30)).isoformat()
    r = client.post("/ui/immunization/programmes", headers=vac, data=form, follow_redirects=False)
    assert r.status_code == 303, r.text
    url = r.headers["location"]
    page = client.get(url, headers=vac)
    assert page.status_code == 200 and 'class="cov-eligible">2<' in page.text
    assert "钱秀兰" not in page.text and page.text.count('class="eligible-row"') == 2  # masked names
    r = client.post(f"{url}/invite", headers=vac, follow_redirects=False)
    assert r.status_code == 303
    page = client.get(r.headers["location"], headers=vac)
    assert 'id="invite-result"' in page.text and 'class="cov-notified">1<' in page.text
    assert 'class="cov-no-contact">1<' in page.text and 'class="cov-percent">0.0 %<' in page.text
    listing = client.get("/ui/immunization/programmes", headers=vac)
    assert f'data-code="{code}"' in listing.text


def test_reminder_follows_the_recorded_doses(client, vac, db, world):
    t = today()
    rec, child = person(db, world.org_a, t - dt.timedelta(days=40), sex="1", name="李小川")
    r = give(client, vac, rec, inbound(client, vac, world, "HepB")[0])
    assert r.status_code == 201, r.text
    with db.session() as s:
        tasks.remind_due(s, t)
        s.commit()
    got = _reminders(db, child)
    assert ("BCG", 1) in got  # still due
    assert ("HepB", 1) not in got  # recorded today: nothing to remind
    assert ("HepB", 2) not in got  # its interval after today's dose 1 (R6.2: 28 days) puts it 4 weeks ahead
    with db.session() as s:
        tasks.remind_due(s, t + dt.timedelta(days=21))
        s.commit()
    got = _reminders(db, child)
    assert ("HepB", 2) in got and got[("HepB", 2)].due_date == t + dt.timedelta(days=28)
