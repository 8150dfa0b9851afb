"""Issue 17 — one trip means one place: trips are distinct (day, site) pairs; one site by default, the
lead hospital when it offers everything; the fewest sites with the travel shown when none does; a
scheduler restricted to their institution never gets another site; "no feasible itinerary" names the
blocking rule or the missing capacity, and offers the nearest alternative."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from onetrip.kit.clock import local_date, local_datetime
from onetrip.kit.principal import cli_principal
from onetrip.registry import service as registry
from onetrip.scheduling import itinerary, rules, service, tasks
from onetrip.scheduling.itinerary import Candidate, plan
from onetrip.scheduling.models import Slot
from onetrip.scheduling.rules import Exam, Placed, RuleParams, SiteInfo
from tests.factories import uscc_for
from tests.scheduling.conftest import next_working_day, patient, system_headers

D0 = dt.date(2026, 12, 1)
ON = RuleParams()


def at(site: str, day: int, hhmm: str, minutes: int = 20) -> Candidate:
    start = local_datetime(D0 + dt.timedelta(days=day), hhmm)
    return Candidate(f"{site}-{day}-{hhmm}-{minutes}", start, start + dt.timedelta(minutes=minutes), f"r-{site}",
                     site.split(":")[0], 1, site)


def exam(key: str, *tags: str, minutes: int = 20) -> Exam:
    return Exam(key, key, minutes, frozenset(tags))


FOUR = [exam("US_ABD", "fasting", "abdominal_us", minutes=15), exam("CT_ABD_C", "fasting", "abdominal_ct",
                                                                    "iodinated_contrast"),
        exam("ES_GASTRO", "fasting", "gi_endoscopy"), exam("DR_CHEST", minutes=5)]
MORNING = ["08:00", "08:30", "09:00", "09:30", "10:00", "10:30", "11:00"]


def day_of(cands: dict[str, list[Candidate]], site: str, day: int) -> dict[str, list[Candidate]]:
    return {e.key: cands.get(e.key, []) + [at(site, day, t, e.duration_minutes) for t in MORNING] for e in FOUR}


# --- pure: the solver ------------------------------------------------------------------------------------

def test_all_four_at_the_lead_hospital_is_one_trip_there():
    # the branch centre has the ultrasound and the X-ray a day earlier; the lead hospital has all four
    cands = {"US_ABD": [at("branch", 0, "08:00", 15)], "DR_CHEST": [at("branch", 0, "08:30", 5)]}
    cands = day_of(cands, "lead", 1)
    out = plan(FOUR, cands, ON, time_limit_ms=2000, preferred=frozenset({"branch", "lead"}))
    assert out.trips == 1 and {c.site_key for c in out.placements.values()} == {"lead"}
    assert out.trip_list == [(D0 + dt.timedelta(days=1), "lead")]
    # the old count (distinct days) would have been happy with branch + lead on one day; S1 forbids it
    assert out.explanation[0]["rule"] == "trips" and "1 trip" in out.explanation[0]["en"]


def test_one_exam_only_elsewhere_two_trips_on_two_days_by_default():
    cands = day_of({}, "lead", 0)
    cands["ES_GASTRO"] = [at("other", d, t) for d in (0, 1) for t in MORNING]  # only elsewhere
    out = plan(FOUR, cands, ON, time_limit_ms=2000, preferred=frozenset({"lead"}))
    assert out.trips == 2
    days = {c.site_key: local_date(c.start) for c in out.placements.values()}
    assert days["lead"] != days["other"]  # S1: one site per day
    assert out.placements["ES_GASTRO"].site_key == "other"
    assert {c.site_key for k, c in out.placements.items() if k != "ES_GASTRO"} == {"lead"}


def test_two_sites_on_one_day_when_allowed_with_the_travel_shown():
    cands = day_of({}, "lead", 0)
    cands["ES_GASTRO"] = [at("other", 0, t) for t in MORNING]
    sites = {"lead": SiteInfo("lead", "lead", "县人民医院"), "other": SiteInfo("other", "other", "区人民医院")}
    p = RuleParams(max_sites_per_day=2)
    out = plan(FOUR, cands, p, time_limit_ms=2000, sites=sites, preferred=frozenset({"lead"}))
    assert out.trips == 2 and len({local_date(c.start) for c in out.placements.values()}) == 1
    travel = [e for e in out.explanation if e["rule"] == "S2"]
    assert travel and "60" in travel[0]["en"] and "区人民医院" in travel[0]["zh"]
    ordered = sorted(out.placements.values(), key=lambda c: c.start)
    for a, b in zip(ordered, ordered[1:], strict=False):
        if a.site_key != b.site_key:
            assert b.start - a.end >= dt.timedelta(minutes=p.travel_minutes)  # S2
    # and the trips line names both sites
    assert "县人民医院" in out.explanation[0]["zh"] and "区人民医院" in out.explanation[0]["zh"]


def test_travel_from_coordinates_and_between_campuses():
    a = SiteInfo("h1", "h1", "A", 29.87, 121.55)
    b = SiteInfo("h2", "h2", "B", 29.97, 121.55)  # ≈ 11 km north
    assert 25 <= rules.travel_minutes(a, b, ON) <= 35  # 11 km × 1.3 at 30 km/h ≈ 29 min
    assert rules.travel_minutes(SiteInfo("h1", "h1"), SiteInfo("h1:east", "h1"), ON) == ON.campus_travel_minutes
    assert rules.travel_minutes(SiteInfo("h1", "h1"), SiteInfo("h3", "h3"), ON) == ON.travel_minutes
    assert rules.travel_minutes(a, a, ON) == 0


def test_violations_name_s1_and_s2():
    t = local_datetime(D0, "08:00")
    two = [Placed("a", frozenset(), t, t + dt.timedelta(minutes=20), "x"),
           Placed("b", frozenset(), t + dt.timedelta(minutes=40), t + dt.timedelta(minutes=60), "y")]
    assert [v.rule for v in rules.violations(two, ON)] == ["S1"]
    assert [v.rule for v in rules.violations(two, RuleParams(max_sites_per_day=2))] == ["S2"]  # 20 min < 60


# --- pure: why nothing is feasible -----------------------------------------------------------------------

def test_a_full_calendar_is_named():
    cands = day_of({}, "lead", 0)
    cands["CT_ABD_C"] = []
    out = plan(FOUR, cands, ON, horizon_days=14, scope="区人民医院")
    assert out.status == "infeasible" and not out.placements
    r = out.reasons[0]
    assert r["rule"] == "capacity" and r["exam"] == "CT_ABD_C"
    assert r["en"] == "CT_ABD_C: no place within 14 days at 区人民医院" and "区人民医院" in r["zh"]


def test_a_blocking_rule_against_a_booked_exam_is_named_with_the_earliest_date():
    booked = Placed("booked:1", frozenset({"iodinated_contrast"}), local_datetime(D0, "08:00"),
                    local_datetime(D0, "08:20"), "lead")
    cta = exam("CTA_COR", "iodinated_contrast")
    out = plan([cta], {"CTA_COR": [at("lead", d, "09:00") for d in (1, 2, 3)]}, ON, [booked], horizon_days=14)
    assert out.status == "infeasible"
    assert out.reasons[0]["rule"] == "I5" and out.reasons[0]["earliest"] == (D0 + dt.timedelta(days=7)).isoformat()


def test_a_blocking_rule_between_the_exams_is_named():
    two = [exam("c1", "iodinated_contrast"), exam("c2", "iodinated_contrast")]
    out = plan(two, {k: [at("lead", d, "08:00") for d in (0, 1)] for k in ("c1", "c2")}, ON)
    assert out.status == "infeasible" and out.reasons[0]["rule"] == "I5"
    assert any(e["rule"] == "I5" for e in out.explanation)


# --- property: sites per day and the trip count ----------------------------------------------------------

SITES = ["a", "b", "c", "a:east"]
TIMES = ["08:00", "08:30", "09:00", "10:00", "11:00", "14:00", "15:00"]
TAGS = [(), ("fasting",), ("fasting", "abdominal_us"), ("gi_endoscopy",), ("iodinated_contrast",)]


@st.composite
def problems(draw):
    n = draw(st.integers(1, 4))
    exams = [Exam(f"e{i}", f"X{i}", 20, frozenset(draw(st.sampled_from(TAGS)))) for i in range(n)]
    shared = [at(s, d, t) for s in SITES for d in range(6) for t in TIMES]
    cands = {e.key: draw(st.lists(st.sampled_from(shared), min_size=1, max_size=20, unique=True)) for e in exams}
    per_day = draw(st.sampled_from([1, 1, 2]))
    return exams, cands, RuleParams(max_sites_per_day=per_day), frozenset(draw(st.sets(st.sampled_from(SITES))))


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(), st.booleans())
def test_no_two_sites_on_one_day_unless_allowed_and_trips_are_day_site_pairs(problem, cp_sat):
    exams, cands, p, preferred = problem
    out = plan(exams, cands, p, time_limit_ms=300, use_cp_sat=cp_sat, preferred=preferred)
    if not out.placements:
        assert out.reasons  # never "no feasible itinerary" without a reason
        return
    per_day: dict[dt.date, set[str]] = {}
    for c in out.placements.values():
        per_day.setdefault(local_date(c.start), set()).add(c.site_key)
    assert all(len(s) <= p.max_sites_per_day for s in per_day.values())
    pairs = {(local_date(c.start), c.site_key) for c in out.placements.values()}
    assert out.trips == len(pairs) == len(out.trip_list)
    assert rules.violations([Placed(e.key, e.tags, out.placements[e.key].start, out.placements[e.key].end,
                                    out.placements[e.key].site_key) for e in exams], p) == []


def test_greedy_prefers_one_site():
    cands = {"US_ABD": [at("branch", 0, "08:00", 15)], "DR_CHEST": [at("branch", 0, "08:30", 5)]}
    cands = day_of(cands, "lead", 1)
    got = itinerary.greedy(FOUR, cands, ON, preferred=frozenset({"branch", "lead"}))
    assert got is not None and {c.site_key for c in got.values()} == {"lead"}


# --- over REST, on both databases ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def district(db, world):
    """Lead hospital A offers US_ABD, CT_ABD_C, ES_GASTRO, DR_CHEST; the patient's branch centre B offers
    US_ABD and DR_CHEST; hospital C (another community) offers MR_HEAD, which nobody else does."""
    op = cli_principal()
    with db.session() as s:
        service.seed_catalogue(s)
        c = registry.create_organization(s, op, code="OTHER17", name="区人民医院", org_type="district_hospital",
                                         uscc=uscc_for(917), address="区府路 1 号")
        made = {}
        for org, codes in ((world.org_a, ["US_ABD", "CT_ABD_C", "ES_GASTRO", "DR_CHEST"]),
                           (world.org_b, ["US_ABD", "DR_CHEST"]), (c.id, ["MR_HEAD", "CT_ABD_C"])):
            for code in codes:
                r = service.create_resource(s, op, organization_id=org, code=f"S17{code}", name=code, kind="device",
                                            modality=code[:2], exam_codes=[code])
                made[(org, code)] = r.id
                for wd in range(5):
                    service.add_template(s, op, r.id, weekday=wd, start_time="08:00", end_time="11:30",
                                         slot_minutes=30, capacity=2, reserved_share=0.0)
                    service.add_template(s, op, r.id, weekday=wd, start_time="13:30", end_time="17:00",
                                         slot_minutes=30, capacity=2, reserved_share=0.0)
        today = local_date(dt.datetime.now(dt.UTC))
        for org in (world.org_a, world.org_b, c.id):
            tasks.generate_slots(s, start=today + dt.timedelta(days=1), days=14, organization_id=org)
        s.commit()
    return {"other": c.id, "resources": made, "day": next_working_day(today)}


@pytest.fixture
def h(client, world):
    return system_headers(client, world)  # a system client of lead hospital A


def propose(client, h, pid, district, exams, **extra):
    r = client.post("/api/scheduling/itinerary", headers=h, json={
        "patient_record_id": pid, "exam_codes": exams, "from_date": district["day"].isoformat(), **extra})
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.usefixtures("unhurried_solver")
def test_rest_four_exams_one_trip_at_the_lead_hospital(client, db, world, district, h):
    pid = patient(db, world.org_b)
    it = propose(client, h, pid, district, ["US_ABD", "CT_ABD_C", "ES_GASTRO", "DR_CHEST"])
    assert it["trips"] == 1 and {i["site"] for i in it["items"]} == {world.org_a}
    assert len(it["trip_list"]) == 1 and it["trip_list"][0]["site"] == world.org_a
    assert len(it["trip_list"][0]["items"]) == 4 and all(i["site_name"] for i in it["items"])


@pytest.mark.usefixtures("unhurried_solver")
def test_rest_an_exam_only_elsewhere_two_trips_with_the_travel(client, db, world, district, h):
    pid = patient(db, world.org_b)
    it = propose(client, h, pid, district, ["US_ABD", "DR_CHEST", "MR_HEAD"])
    assert it["trips"] == 2 and len(it["trip_list"]) == 2
    assert {t["site"] for t in it["trip_list"]} == {world.org_b, district["other"]} or \
        {t["site"] for t in it["trip_list"]} == {world.org_a, district["other"]}
    mr = next(i for i in it["items"] if i["exam_code"] == "MR_HEAD")
    assert mr["site"] == district["other"] and mr["site_name"] == "区人民医院" and mr["address"] == "区府路 1 号"
    assert any(e["rule"] == "sites" for e in it["explanation"])
    # the patient accepts two sites on one day: the travel between them is shown
    same = propose(client, h, pid, district, ["US_ABD", "DR_CHEST", "MR_HEAD"], sites_per_day=2)
    assert same["trips"] == 2
    if len({i["start"][:10] for i in same["items"]}) == 1:
        assert any(e["rule"] == "S2" for e in same["explanation"])


@pytest.mark.usefixtures("unhurried_solver")
def test_rest_restricted_to_own_never_gets_another_site(client, db, world, district, h):
    pid = patient(db, world.org_b)
    it = propose(client, h, pid, district, ["US_ABD", "DR_CHEST"], restrict_to_own=True)
    assert it["items"] and {i["organization_id"] for i in it["items"]} == {world.org_a}
    # MR is not offered at A: the reason says so, and the alternative is elsewhere
    it = propose(client, h, pid, district, ["US_ABD", "MR_HEAD"], restrict_to_own=True)
    assert it["status"] == "infeasible" and not it["items"]
    assert it["reasons"][0]["rule"] == "capacity" and it["reasons"][0]["exam"] == "MR_HEAD"
    assert "14" in it["reasons"][0]["en"]
    assert it["alternative"] and any(i["site"] == district["other"] for i in it["alternative"]["items"])
    # an explicit site list is a restriction too
    it = propose(client, h, pid, district, ["CT_ABD_C"], sites=[district["other"]])
    assert {i["site"] for i in it["items"]} == {district["other"]}


@pytest.mark.usefixtures("unhurried_solver")
def test_rest_full_calendar_is_named(client, db, world, district, h):
    pid = patient(db, world.org_b)
    ct = district["resources"][(world.org_a, "CT_ABD_C")]
    with db.session() as s:
        s.execute(update(Slot).where(Slot.resource_id == ct).values(blocked=True))
        s.commit()
    try:
        it = propose(client, h, pid, district, ["CT_ABD_C"], restrict_to_own=True)
        assert it["status"] == "infeasible"
        r = it["reasons"][0]
        assert r["rule"] == "capacity" and r["exam"] == "CT_ABD_C" and "within 14 days at" in r["en"]
        assert it["alternative"]["items"][0]["site"] == district["other"]  # the nearest alternative
    finally:
        with db.session() as s:
            s.execute(update(Slot).where(Slot.resource_id == ct).values(blocked=False))
            s.commit()


@pytest.mark.usefixtures("unhurried_solver")
def test_rest_rule_that_blocks_is_named_after_a_booking(client, db, world, district, h):
    from onetrip.rules.service import set_rule

    pid = patient(db, world.org_b)
    it = propose(client, h, pid, district, ["CT_ABD_C"], restrict_to_own=True)
    first = it["items"][0]
    r = client.post("/api/scheduling/itinerary/book", headers=h, json={
        "patient_record_id": pid, "channel": "web",
        "items": [{"slot_id": first["slot_id"], "exam_code": "CT_ABD_C"}]})
    assert r.status_code == 201, r.text
    with db.session() as s:
        set_rule(s, "scheduling", "I5_iodinated_contrast_days", 30, by="test")
        s.commit()
    try:
        again = propose(client, h, pid, district, ["CT_ABD_C", "DR_CHEST"])
        assert again["status"] == "infeasible"
        reason = next(x for x in again["reasons"] if x["exam"] == "CT_ABD_C")
        assert reason["rule"] == "I5" and reason["earliest"]
    finally:
        with db.session() as s:
            set_rule(s, "scheduling", "I5_iodinated_contrast_days", 7, by="test")
            s.commit()


def test_rest_booking_rechecks_one_site_a_day(client, db, world, district, h):
    """S1 at booking: two sites on one day are refused (422 naming S1) unless ``sites_per_day`` allows it."""
    from onetrip.scheduling import repository as repo

    pid = patient(db, world.org_b)
    with db.session() as s:
        us = repo.slots(s, resource_ids=[district["resources"][(world.org_b, "US_ABD")]], only_free=True,
                        start=local_datetime(district["day"], "00:00"), end=local_datetime(district["day"], "23:59"))
        mr = repo.slots(s, resource_ids=[district["resources"][(district["other"], "MR_HEAD")]], only_free=True,
                        start=local_datetime(district["day"], "00:00"), end=local_datetime(district["day"], "23:59"))
        first, later = us[0].id, next(x for x in mr if x.start >= us[0].end + dt.timedelta(hours=2)).id
    items = [{"slot_id": first, "exam_code": "US_ABD"}, {"slot_id": later, "exam_code": "MR_HEAD"}]
    r = client.post("/api/scheduling/itinerary/book", headers=h,
                    json={"patient_record_id": pid, "channel": "web", "items": items})
    assert r.status_code == 422 and "S1" in r.text
    r = client.post("/api/scheduling/itinerary/book", headers=h,
                    json={"patient_record_id": pid, "channel": "web", "items": items, "sites_per_day": 2})
    assert r.status_code == 201, r.text
