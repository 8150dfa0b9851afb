"""两癌 screening (issue 21 point 5) on SQLite and PostgreSQL: women 35–64 on the reference date (both ends
included, birthday on the day), men and women outside the range excluded, invitations through notifications once,
results move the 两癌筛查率, a positive undiagnosed past its deadline is on the overdue worklist (and not before),
another institution cannot read, audit and outbox rows, and the pages."""

from __future__ import annotations

import datetime as dt
import itertools

from sqlalchemy import select

from onetrip.audit.models import AuditEvent
from onetrip.identity import service as identity
from onetrip.identity.schemas import PatientInput
from onetrip.kit import clock
from onetrip.kit.principal import cli_principal
from onetrip.maternal_child import rules
from onetrip.maternal_child.models import Screening
from onetrip.outbox.models import OutboxEvent

API = "/api/maternal-child/screening"
UI = "/ui/maternal-child/screening"
_seq = itertools.count(1)


def today() -> dt.date:
    return clock.local_date(clock.utcnow())


def years_before(day: dt.date, years: int) -> dt.date:
    return rules.screening_years_reached(day, -years)


def person(db, org: str, birth: dt.date, *, sex: str = "2", phone: str | None = "", township: str | None = None,
           name: str = "王秀芳") -> str:
    """Register a resident at ``org`` and return the person id. Phone "" = a new number; None = none."""
    phone = f"139{next(_seq):08d}" if phone == "" else phone
    with db.session() as s:
        rec = identity.register(s, cli_principal(), PatientInput(
            organization_id=org, mrn=f"SC{next(_seq):07d}", name=name, sex=sex, birth_date=birth, phone=phone,
            street=township))
        s.commit()
        return rec.person_id


def campaign(client, hdr, **body) -> dict:
    n = next(_seq)
    base = {"code": f"LA{n}", "name": f"两癌筛查{n}", "start_date": (today() - dt.timedelta(days=60)).isoformat(),
            "end_date": (today() + dt.timedelta(days=60)).isoformat()}
    r = client.post(f"{API}/campaigns", headers=hdr, json={**base, **body})
    assert r.status_code == 201, r.text
    return r.json()


def eligible(client, hdr, cid: str) -> dict[str, dict]:
    r = client.get(f"{API}/campaigns/{cid}/eligible", headers=hdr)
    assert r.status_code == 200, r.text
    return {row["person_id"]: row for row in r.json()}


def figures(client, hdr, cid: str, day: dt.date | None = None) -> dict:
    r = client.get(f"{API}/campaigns/{cid}", headers=hdr, params={"date": day.isoformat()} if day else None)
    assert r.status_code == 200, r.text
    return r.json()["figures"]


def worklist(client, hdr, cid: str, which: str, day: dt.date) -> set[str]:
    r = client.get(f"{API}/campaigns/{cid}/worklist", headers=hdr, params={"list": which, "date": day.isoformat()})
    assert r.status_code == 200, r.text
    return {row["person_id"] for row in r.json()}


def outbox(db, event_type: str) -> list[OutboxEvent]:
    with db.session() as s:
        return list(s.scalars(select(OutboxEvent).where(OutboxEvent.event_type == event_type)))


def audited(db, what: str, subtype: str) -> set[str | None]:
    with db.session() as s:
        return set(s.scalars(select(AuditEvent.entity_person_id).where(AuditEvent.entity_what == what,
                                                                      AuditEvent.subtype == subtype)))


# --- pure rules ------------------------------------------------------------------------------------------------

def test_age_boundaries_pure():
    ref = dt.date(2026, 10, 1)
    assert rules.screening_eligible(dt.date(1991, 10, 1), "female", ref, 35, 64)  # 35 on the day
    assert not rules.screening_eligible(dt.date(1991, 10, 2), "female", ref, 35, 64)  # 35 tomorrow
    assert rules.screening_eligible(dt.date(1961, 10, 2), "female", ref, 35, 64)  # 64, 65 tomorrow
    assert not rules.screening_eligible(dt.date(1961, 10, 1), "female", ref, 35, 64)  # 65 on the day
    assert not rules.screening_eligible(dt.date(1980, 5, 5), "male", ref, 35, 64)  # a man of 46
    assert not rules.screening_eligible(None, "female", ref, 35, 64)
    # 29 February: 35 on 28 February of a common year
    assert rules.screening_eligible(dt.date(1988, 2, 29), "female", dt.date(2023, 2, 28), 35, 64)
    assert not rules.screening_eligible(dt.date(1988, 2, 29), "female", dt.date(2023, 2, 27), 35, 64)
    assert rules.screening_age(dt.date(1961, 10, 2), ref) == 64


def test_positive_and_followup_state_pure():
    assert not rules.screening_positive("negative", "negative", 3)
    assert rules.screening_positive("negative", None, 4)  # BI-RADS 4 → positive
    assert rules.screening_positive("positive", None, None)
    assert not rules.screening_positive("unsatisfactory", "negative", None)
    assert rules.screening_breast_result(None, 5) == "positive" and rules.screening_breast_result(None, 2) == "negative"
    day = dt.date(2026, 3, 1)
    diag, treat = rules.screening_deadlines(day, 30, 90)
    assert (diag, treat) == (dt.date(2026, 3, 31), dt.date(2026, 5, 30))

    def st(on, **kw):
        args = {"diagnosis_deadline": diag, "treatment_deadline": treat, "diagnosis_date": None,
                "diagnosis_result": None, "treatment_date": None, "lost": False, **kw}
        return rules.screening_followup_state(kw.pop("positive", True), on=on,
                                              **{k: v for k, v in args.items() if k != "positive"})

    assert st(diag) == "open"  # the deadline's own day is in time
    assert st(diag + dt.timedelta(days=1)) == "overdue"
    assert st(diag + dt.timedelta(days=5), diagnosis_date=diag, diagnosis_result="benign") == "diagnosed"
    assert st(treat + dt.timedelta(days=1), diagnosis_date=diag, diagnosis_result="benign") == "diagnosed"
    assert st(treat, diagnosis_date=diag, diagnosis_result="cancer") == "diagnosed"
    assert st(treat + dt.timedelta(days=1), diagnosis_date=diag, diagnosis_result="cancer") == "overdue"
    assert st(treat + dt.timedelta(days=9), diagnosis_date=diag, diagnosis_result="cancer", treatment_date=treat) \
        == "treated"
    assert st(diag + dt.timedelta(days=9), lost=True) == "lost"
    assert st(diag + dt.timedelta(days=9), positive=False) == "none"
    assert rules.screening_diagnosed_in_time(diag, diag) and not rules.screening_diagnosed_in_time(
        diag + dt.timedelta(days=1), diag)


# --- the campaign over the API -----------------------------------------------------------------------------------

def test_eligible_list_by_sex_and_age_on_the_reference_day(client, mch, db, world):
    ref = dt.date(2026, 10, 1)
    town = f"城关镇{next(_seq)}"
    at35 = person(db, world.org_a, years_before(ref, 35), township=town, name="李春梅")
    at34 = person(db, world.org_a, years_before(ref, 35) + dt.timedelta(days=1), township=town)
    at64 = person(db, world.org_a, years_before(ref, 65) + dt.timedelta(days=1), township=town)
    at65 = person(db, world.org_a, years_before(ref, 65), township=town)
    man = person(db, world.org_a, dt.date(1980, 5, 5), sex="1", township=town, name="张建国")
    elsewhere = person(db, world.org_b, dt.date(1980, 5, 6), township=town)
    other_town = person(db, world.org_a, dt.date(1980, 5, 7), township=town + "外")
    c = campaign(client, mch, reference_date=ref.isoformat(), township=town)
    assert (c["min_age"], c["max_age"], c["sex"]) == (35, 64, "female")  # rule value two_cancers_campaign
    rows = eligible(client, mch, c["id"])
    assert set(rows) == {at35, at64}
    assert not {at34, at65, man, elsewhere, other_town} & set(rows)
    assert rows[at35]["age"] == 35 and rows[at64]["age"] == 64 and rows[at35]["status"] is None
    assert rows[at35]["name"] != "李春梅" and rows[at35]["name"].startswith("李")  # masked
    assert "****" in rows[at35]["phone"] and "*" in rows[at35]["id_number"] + "*"
    assert audited(db, f"Group/mch-screening-campaign-{c['id']}", "search") == {at35, at64}
    assert figures(client, mch, c["id"])["eligible"] == 2
    assert outbox(db, "maternal_child.screening.campaign_created")


def test_campaign_validation_is_a_4xx(client, mch):
    r = client.post(f"{API}/campaigns", headers=mch, json={
        "code": "BAD1", "name": "x", "start_date": "2026-05-01", "end_date": "2026-04-01"})
    assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome"
    r = client.post(f"{API}/campaigns", headers=mch, json={
        "code": "BAD2", "name": "x", "start_date": "2026-05-01", "end_date": "2026-06-01", "min_age": 50,
        "max_age": 40})
    assert r.status_code == 400
    c = campaign(client, mch, township=f"无人镇{next(_seq)}")
    r = client.post(f"{API}/campaigns", headers=mch, json={
        "code": c["code"], "name": "x", "start_date": "2026-05-01", "end_date": "2026-06-01"})
    assert r.status_code == 409


def test_invitation_once_and_no_contact_counted(client, mch, db, world):
    town = f"新城街道{next(_seq)}"
    a = person(db, world.org_a, dt.date(1975, 3, 3), township=town)
    b = person(db, world.org_a, dt.date(1970, 4, 4), township=town)
    silent = person(db, world.org_a, dt.date(1972, 6, 6), township=town, phone=None)
    c = campaign(client, mch, township=town)
    r = client.post(f"{API}/campaigns/{c['id']}/invite", headers=mch)
    assert r.status_code == 200, r.text
    assert r.json() == {"sent": 2, "already": 0, "no_contact": 1}
    with db.session() as s:
        rows = {x.person_id: x for x in s.scalars(select(Screening).where(Screening.campaign_id == c["id"]))}
    assert rows[a].status == "invited" and rows[a].notification_ref and rows[silent].status == "eligible"
    sent = [e for e in outbox(db, "maternal_child.screening.invitation") if e.aggregate_id in
            {rows[a].id, rows[b].id, rows[silent].id}]
    assert sorted(e.person_id for e in sent) == sorted([a, b])
    again = client.post(f"{API}/campaigns/{c['id']}/invite", headers=mch).json()
    assert again == {"sent": 0, "already": 2, "no_contact": 1}  # nothing sent twice
    assert len([e for e in outbox(db, "maternal_child.screening.invitation")
                if e.aggregate_id in {rows[a].id, rows[b].id}]) == 2
    assert audited(db, f"CommunicationRequest/{rows[a].id}", "create") == {a}
    assert len([e for e in outbox(db, "maternal_child.screening.invited") if e.aggregate_id == c["id"]]) == 2
    f = figures(client, mch, c["id"])
    assert (f["eligible"], f["invited"], f["no_contact"]) == (3, 2, 1)
    assert eligible(client, mch, c["id"])[a]["status"] == "invited"


def test_results_move_the_screening_rate(client, mch, db, world):
    town = f"东街{next(_seq)}"
    women = [person(db, world.org_a, dt.date(1970 + i, 1, 10), township=town) for i in range(4)]
    too_young = person(db, world.org_a, today() - dt.timedelta(days=365 * 20), township=town)
    c = campaign(client, mch, township=town)
    assert figures(client, mch, c["id"])["rate"] == 0.0
    r = client.post(f"{API}/campaigns/{c['id']}/results", headers=mch, json={
        "person_id": women[0], "cervical_method": "HPV", "cervical_result": "negative", "breast_method": "ultrasound",
        "breast_birads": 2})
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["positive"], r.json()["breast_result"]) == ("screened", False, "negative")
    assert r.json()["name"] == "王**"  # masked
    f = figures(client, mch, c["id"])
    assert (f["eligible"], f["screened"], f["rate"]) == (4, 1, 25.0)
    client.post(f"{API}/campaigns/{c['id']}/results", headers=mch,
                json={"person_id": women[1], "cervical_result": "negative"}).raise_for_status()
    assert figures(client, mch, c["id"])["rate"] == 50.0
    rid = r.json()["id"]
    assert audited(db, f"Observation/mch-screening-{rid}", "create") == {women[0]}
    assert any(e.aggregate_id == rid and e.person_id == women[0]
               for e in outbox(db, "maternal_child.screening.result_recorded"))
    # errors: no result, a future date, a negative BI-RADS 5, someone outside the campaign, a bad value
    bad = [({"person_id": women[2]}, 400), ({"person_id": women[2], "cervical_result": "negative",
                                             "cervical_date": (today() + dt.timedelta(days=1)).isoformat()}, 400),
           ({"person_id": women[2], "breast_result": "negative", "breast_birads": 5}, 400),
           ({"person_id": women[2], "cervical_result": "negative",
             "cervical_date": (today() - dt.timedelta(days=61)).isoformat()}, 400),  # before the campaign
           ({"person_id": too_young, "cervical_result": "negative"}, 409),
           ({"person_id": women[2], "cervical_result": "maybe"}, 400)]
    for body, status in bad:
        r = client.post(f"{API}/campaigns/{c['id']}/results", headers=mch, json=body)
        assert r.status_code == status, (body, r.text)
        assert r.json()["resourceType"] == "OperationOutcome"
    assert figures(client, mch, c["id"])["screened"] == 2
    # a decline before results
    client.post(f"{API}/campaigns/{c['id']}/invite", headers=mch).raise_for_status()
    with db.session() as s:
        sid = s.scalar(select(Screening.id).where(Screening.campaign_id == c["id"], Screening.person_id == women[3]))
    r = client.post(f"{API}/records/{sid}/decline", headers=mch)
    assert r.status_code == 200 and r.json()["status"] == "declined"
    assert figures(client, mch, c["id"])["declined"] == 1
    assert client.post(f"{API}/records/{sid}/decline", headers=mch).status_code == 409


def test_positive_overdue_worklist_and_followed_in_time(client, mch, db, world):
    town = f"西街{next(_seq)}"
    late, early, neg = (person(db, world.org_a, dt.date(1968, 2, 2 + i), township=town) for i in range(3))
    c = campaign(client, mch, township=town)
    cid = c["id"]
    result_day = today() - dt.timedelta(days=40)
    r = client.post(f"{API}/campaigns/{cid}/results", headers=mch, json={
        "person_id": late, "breast_method": "ultrasound", "breast_birads": 4, "breast_date": result_day.isoformat(),
        "cervical_result": "negative", "cervical_date": result_day.isoformat()})
    assert r.status_code == 200, r.text
    late_row = r.json()
    deadline = result_day + dt.timedelta(days=30)  # rule value positive_followup_days
    assert late_row["positive"] and late_row["diagnosis_deadline"] == deadline.isoformat()
    assert late_row["treatment_deadline"] == (result_day + dt.timedelta(days=90)).isoformat()
    r = client.post(f"{API}/campaigns/{cid}/results", headers=mch, json={
        "person_id": early, "cervical_result": "positive", "cervical_date": result_day.isoformat()})
    early_row = r.json()
    client.post(f"{API}/campaigns/{cid}/results", headers=mch, json={
        "person_id": neg, "cervical_result": "negative", "breast_birads": 3}).raise_for_status()
    # not overdue on the deadline's day, overdue from the next day
    assert worklist(client, mch, cid, "positives-overdue", deadline) == set()
    assert worklist(client, mch, cid, "positives-open", deadline) == {late, early}
    assert worklist(client, mch, cid, "positives-overdue", deadline + dt.timedelta(days=1)) == {late, early}
    # early is diagnosed within the deadline (precancerous: still to treat); late only after it
    r = client.post(f"{API}/records/{early_row['id']}/followup", headers=mch, json={
        "diagnosis_date": (deadline - dt.timedelta(days=2)).isoformat(), "diagnosis_result": "precancerous"})
    assert r.status_code == 200, r.text
    assert r.json()["followup_status"] == "diagnosed"
    assert worklist(client, mch, cid, "positives-overdue", today()) == {late}
    assert worklist(client, mch, cid, "positives-open", today()) == {late, early}
    f = figures(client, mch, cid)
    assert (f["positives"], f["followed_in_time"], f["overdue"], f["followed_percent"]) == (2, 1, 1, 50.0)
    assert audited(db, f"Observation/mch-screening-{early_row['id']}", "update") == {early}
    assert any(e.aggregate_id == early_row["id"] for e in outbox(db, "maternal_child.screening.followup_updated"))
    r = client.post(f"{API}/records/{late_row['id']}/followup", headers=mch, json={
        "diagnosis_date": (today() - dt.timedelta(days=1)).isoformat(), "diagnosis_result": "benign"})
    assert r.status_code == 200 and r.json()["followup_status"] == "diagnosed"
    assert worklist(client, mch, cid, "positives-overdue", today()) == set()
    assert worklist(client, mch, cid, "positives-open", today()) == {early}  # benign closes the follow-up
    assert figures(client, mch, cid)["followed_in_time"] == 1  # late's diagnosis came after the deadline
    r = client.post(f"{API}/records/{early_row['id']}/followup", headers=mch,
                    json={"treatment_date": today().isoformat()})
    assert r.json()["followup_status"] == "treated"
    assert worklist(client, mch, cid, "positives-open", today()) == set()
    # follow-up errors
    assert client.post(f"{API}/records/{late_row['id']}/followup", headers=mch,
                       json={"diagnosis_date": today().isoformat()}).status_code == 400  # without the result
    assert client.post(f"{API}/records/{late_row['id']}/followup", headers=mch,
                       json={"treatment_date": today().isoformat()}).status_code == 409  # benign
    assert client.get(f"{API}/campaigns/{cid}/worklist", headers=mch,
                      params={"list": "everyone"}).status_code == 400


def test_another_institution_cannot_read(client, mch, mch_b, db, world):
    town = f"南街{next(_seq)}"
    woman = person(db, world.org_a, dt.date(1979, 9, 9), township=town)
    c = campaign(client, mch, township=town)
    r = client.post(f"{API}/campaigns/{c['id']}/results", headers=mch,
                    json={"person_id": woman, "cervical_result": "positive"})
    sid = r.json()["id"]
    for method, url, body in [("get", f"{API}/campaigns/{c['id']}", None),
                              ("get", f"{API}/campaigns/{c['id']}/eligible", None),
                              ("get", f"{API}/campaigns/{c['id']}/worklist", None),
                              ("post", f"{API}/campaigns/{c['id']}/invite", None),
                              ("post", f"{API}/campaigns/{c['id']}/results",
                               {"person_id": woman, "cervical_result": "negative"}),
                              ("post", f"{API}/records/{sid}/followup",
                               {"diagnosis_date": today().isoformat(), "diagnosis_result": "benign"})]:
        r = getattr(client, method)(url, headers=mch_b, **({"json": body} if body else {}))
        assert r.status_code == 403, (url, r.text)
    assert c["id"] not in {x["id"] for x in client.get(f"{API}/campaigns", headers=mch_b).json()}
    assert c["id"] in {x["id"] for x in client.get(f"{API}/campaigns", headers=mch).json()}
    # a clinician (no CarePlan scope) can neither create nor read campaigns
    from tests.factories import auth, token

    doc = auth(token(client, world.users["doc_a"]))
    r = client.post(f"{API}/campaigns", headers=doc, json={"code": f"NOPE{next(_seq)}", "name": "x",
                                                          "start_date": "2026-05-01", "end_date": "2026-06-01"})
    assert r.status_code == 403, r.text
    assert client.get(f"{API}/campaigns/{c['id']}", headers=doc).status_code == 403


# --- pages ---------------------------------------------------------------------------------------------------------

def test_pages_create_invite_record_and_worklist(client, mch, mch_b, db, world):
    town = f"北岭乡{next(_seq)}"
    first = person(db, world.org_a, dt.date(1969, 8, 8), township=town, name="钱秀兰")
    person(db, world.org_a, dt.date(1972, 8, 8), township=town, name="孙丽华", phone=None)
    code = f"LAUI{next(_seq)}"
    form = {"code": code, "name": "两癌免费筛查", "township": town,
            "start_date": (today() - dt.timedelta(days=60)).isoformat(), "end_date": "bad-date"}
    r = client.post(UI, headers=mch, data=form, follow_redirects=False)
    assert r.status_code == 400
    assert 'id="campaign-error"' in r.text and 'data-field="end_date"' in r.text
    assert f'value="{code}"' in r.text and 'value="两癌免费筛查"' in r.text  # what was typed is kept
    form["end_date"] = (today() + dt.timedelta(days=30)).isoformat()
    r = client.post(UI, headers=mch, data=form, follow_redirects=False)
    assert r.status_code == 303, r.text
    url = r.headers["location"]
    page = client.get(url, headers=mch)
    assert page.status_code == 200 and 'class="fig-eligible">2<' in page.text
    assert "钱秀兰" not in page.text and page.text.count('class="eligible-row"') == 2  # masked names
    r = client.post(f"{url}/invite", headers=mch, follow_redirects=False)
    assert r.status_code == 303
    page = client.get(r.headers["location"], headers=mch)
    assert 'id="invite-result"' in page.text and 'class="fig-invited">1<' in page.text
    assert 'class="fig-no-contact">1<' in page.text and 'class="fig-rate">0.0 %<' in page.text
    # a result with an error: shown inline, what was typed kept
    bad = {"person_id": first, "cervical_result": "positive", "cervical_date": (today() + dt.timedelta(days=2))
           .isoformat(), "breast_birads": "2"}
    r = client.post(f"{url}/results", headers=mch, data=bad, follow_redirects=False)
    assert r.status_code == 400 and 'id="result-error"' in r.text and 'data-field="cervical_date"' in r.text
    assert f'value="{bad["cervical_date"]}"' in r.text and 'value="2"' in r.text
    assert f'<option value="{first}" selected' in r.text
    day = today() - dt.timedelta(days=45)
    r = client.post(f"{url}/results", headers=mch, follow_redirects=False,
                    data={**bad, "cervical_date": day.isoformat(), "breast_date": day.isoformat()})
    assert r.status_code == 303, r.text
    page = client.get(url, headers=mch)
    assert 'class="fig-screened">1<' in page.text and 'class="fig-rate">50.0 %<' in page.text
    assert 'class="fig-overdue">1<' in page.text
    wl = client.get(f"{url}/worklist?list=positives-overdue", headers=mch)
    assert wl.status_code == 200 and wl.text.count('class="worklist-row overdue"') == 1
    assert "OVERDUE" in wl.text or "逾期" in wl.text  # in words, not colour only
    sid = r.headers["location"].split("saved=")[1]
    # a follow-up error on the row keeps what was typed
    r = client.post(f"{url}/worklist/{sid}", headers=mch, follow_redirects=False,
                    data={"list": "positives-overdue", "diagnosis_date": today().isoformat()})
    assert r.status_code == 400 and 'id="followup-error"' in r.text
    assert f'value="{today().isoformat()}"' in r.text
    r = client.post(f"{url}/worklist/{sid}", headers=mch, follow_redirects=False,
                    data={"list": "positives-overdue", "diagnosis_date": today().isoformat(),
                          "diagnosis_result": "cancer"})
    assert r.status_code == 303, r.text
    wl = client.get(r.headers["location"], headers=mch)
    assert 'id="worklist-empty"' in wl.text  # diagnosed, treatment not yet due: not overdue
    assert client.get(url, headers=mch_b).status_code == 403
    assert f'data-code="{code}"' in client.get(UI, headers=mch).text
    assert f'data-code="{code}"' not in client.get(UI, headers=mch_b).text


def test_cockpit_totals_through_the_interface(client, mch, db, world):
    from onetrip.maternal_child import interface

    with db.session() as s:
        before = interface.screening_totals(s, world.org_a)
        other = interface.screening_totals(s, world.org_b)
    town = f"中街{next(_seq)}"
    a, b, _c = (person(db, world.org_a, dt.date(1971, 7, 1 + i), township=town) for i in range(3))
    c = campaign(client, mch, township=town)
    day = today() - dt.timedelta(days=10)
    for pid, body in ((a, {"cervical_result": "positive"}), (b, {"cervical_result": "negative"})):
        client.post(f"{API}/campaigns/{c['id']}/results", headers=mch,
                    json={"person_id": pid, "cervical_date": day.isoformat(), **body}).raise_for_status()
    rid = client.get(f"{API}/campaigns/{c['id']}/worklist", headers=mch,
                     params={"list": "positives-open"}).json()[0]["id"]
    client.post(f"{API}/records/{rid}/followup", headers=mch, json={
        "diagnosis_date": today().isoformat(), "diagnosis_result": "benign"}).raise_for_status()
    with db.session() as s:
        after = interface.screening_totals(s, world.org_a)
        assert interface.screening_totals(s, world.org_b) == other  # another institution's figures do not move
        district = interface.screening_totals(s)
    diff = {k: after[k] - before[k] for k in ("campaigns", "eligible", "screened", "positives", "followed_in_time")}
    assert diff == {"campaigns": 1, "eligible": 3, "screened": 2, "positives": 1, "followed_in_time": 1}
    assert after["rate"] == round(100 * after["screened"] / after["eligible"], 1)
    assert district["campaigns"] >= after["campaigns"] and district["eligible"] >= after["eligible"]


def test_eligible_list_pages(client, mch, db, world, monkeypatch):
    from onetrip.maternal_child import web

    town = f"长街{next(_seq)}"
    older, younger = (person(db, world.org_a, dt.date(1966 + 10 * i, 3, 3), township=town) for i in range(2))
    c = campaign(client, mch, township=town)
    r = client.get(f"{API}/campaigns/{c['id']}/eligible", headers=mch, params={"limit": 1})
    assert [x["person_id"] for x in r.json()] == [older]  # by birth date
    r = client.get(f"{API}/campaigns/{c['id']}/eligible", headers=mch, params={"offset": 1, "limit": 1})
    assert [x["person_id"] for x in r.json()] == [younger]
    assert client.get(f"{API}/campaigns/{c['id']}/eligible", headers=mch, params={"limit": 0}).status_code == 400
    monkeypatch.setattr(web, "SCREENING_PAGE_SIZE", 1)
    page2 = client.get(f"{UI}/{c['id']}?page_no=2", headers=mch).text
    assert 'id="eligible-pages"' in page2 and page2.count('class="eligible-row"') == 1
    assert f'data-person="{younger}"' in page2 and f'data-person="{older}"' not in page2
    assert 'class="fig-eligible">2<' in page2  # the figures count every woman


def test_rescreening_interval(client, mch, db, world):
    assert rules.screening_due_again(None, dt.date(2026, 1, 1), 3)
    assert not rules.screening_due_again(dt.date(2023, 1, 2), dt.date(2026, 1, 1), 3)
    assert rules.screening_due_again(dt.date(2023, 1, 1), dt.date(2026, 1, 1), 3)  # the anniversary is due
    assert rules.screening_due_again(dt.date(2025, 6, 1), dt.date(2026, 1, 1), 0)
    town = f"旧城{next(_seq)}"
    screened, fresh = (person(db, world.org_a, dt.date(1975, 5, 5 + i), township=town) for i in range(2))
    first = campaign(client, mch, township=town)
    assert first["interval_years"] == 3  # rule value two_cancers_campaign
    day = today() - dt.timedelta(days=30)
    client.post(f"{API}/campaigns/{first['id']}/results", headers=mch, json={
        "person_id": screened, "cervical_result": "negative", "cervical_date": day.isoformat()}).raise_for_status()
    soon = campaign(client, mch, township=town, reference_date=(day + dt.timedelta(days=365)).isoformat())
    assert set(eligible(client, mch, soon["id"])) == {fresh}  # screened a year before: not due again
    later = campaign(client, mch, township=town,
                     reference_date=rules.screening_years_reached(day, 3).isoformat())
    assert set(eligible(client, mch, later["id"])) == {screened, fresh}
    none = campaign(client, mch, township=town, interval_years=0, reference_date=soon["reference_date"])
    assert set(eligible(client, mch, none["id"])) == {screened, fresh}
    assert set(eligible(client, mch, first["id"])) == {screened, fresh}  # her own campaign still lists her
    r = client.post(f"{API}/campaigns/{soon['id']}/results", headers=mch,
                    json={"person_id": screened, "cervical_result": "negative"})
    assert r.status_code == 409
