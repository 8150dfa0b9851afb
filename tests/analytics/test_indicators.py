"""Every indicator against hand-computed values on a small fixture (tests/analytics/fixture.py), and the
incremental update = the full rebuild = an independent query over the source tables."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import pytest
from sqlalchemy import select, text

from onetrip.analytics import facts, service
from onetrip.analytics.indicators import INDICATORS
from onetrip.analytics.models import AnalyticsFact, AnalyticsFactMonth, AnalyticsReferral
from onetrip.kit.clock import local_date, utcnow
from onetrip.outbox.models import OutboxEvent
from onetrip.outbox.service import record_event
from onetrip.scheduling.models import Appointment
from tests.analytics import fixture as fx_mod
from tests.analytics.fixture import EXPECTED, EXPECTED_LAST_YEAR, OCT, OCT_LAST_YEAR


@pytest.fixture(scope="module")
def loaded(db, world):
    fx = fx_mod.base(db, world)
    # Load in two halves with an incremental update in between, so the second update sees a cursor.
    fx_mod.load_encounters(db, world, fx)
    fx_mod.load_referrals(db, world, fx)
    with db.session() as s:
        facts.update(s)
        s.commit()
    fx_mod.load_appointments(db, world, fx)
    fx_mod.load_recognition(db, world, fx)
    fx_mod.load_lookups(db, world, fx)
    fx_mod.load_family(db, world, fx)
    with db.session() as s:
        facts.update(s)
        s.commit()
    return fx


def _snapshot(db) -> set[tuple]:
    """Daily facts and monthly roll-up; also checks the roll-up is the sum of the days."""
    with db.session() as s:
        daily = {(r.measure, r.day, r.community_id, r.organization_id, r.department_id, r.bucket, r.value)
                 for r in s.scalars(select(AnalyticsFact))}
        monthly = {("M", r.measure, r.month, r.community_id, r.organization_id, r.department_id, r.bucket, r.value)
                   for r in s.scalars(select(AnalyticsFactMonth))}
    sums: dict[tuple, int] = defaultdict(int)
    for m, d, c, o, p, b, v in daily:
        sums[("M", m, d.replace(day=1), c, o, p, b)] += v
    assert {(*k, v) for k, v in sums.items()} == {r for r in monthly if not r[1].startswith("stock_")}
    return daily | monthly


def test_every_indicator_in_the_registry_has_an_expected_value():
    assert {i.id for i in INDICATORS} - {"lookups"} == set(EXPECTED)


@pytest.mark.parametrize("indicator_id", sorted(EXPECTED))
def test_indicator_hand_computed_for_october(db, loaded, indicator_id):
    with db.session() as s:
        rows = service.values(s, indicator_id, period="month", start=OCT[0], end=OCT[1])
    assert [(r["period"], r["value"]) for r in rows] == [("2026-10", EXPECTED[indicator_id])]


def test_lookups_count_successful_result_reads_today(db, loaded, world):
    today = local_date(utcnow())
    with db.session() as s:
        rows = service.values(s, "lookups", period="day", start=today, end=today, group_by="organization")
    assert [(r["group"], r["value"]) for r in rows] == [(world.org_a, 2)]  # Patient read and denial left out


@pytest.mark.parametrize("indicator_id", sorted(EXPECTED_LAST_YEAR))
def test_last_year_and_year_on_year(db, loaded, indicator_id):
    with db.session() as s:
        rows = service.values(s, indicator_id, period="month", start=OCT_LAST_YEAR[0], end=OCT_LAST_YEAR[1])
        assert [r["value"] for r in rows] == [EXPECTED_LAST_YEAR[indicator_id]]
        ind = service.indicator(indicator_id)
        t = service.tile(s, ind, OCT[0], OCT[1], None, None)
    if indicator_id == "referrals_up":
        assert t["change"] == 1.0 and t["change_kind"] == "relative"  # 2 vs 1: +100%
    elif indicator_id == "outpatient_visits":
        assert t["change"] == 1.0  # 4 vs 2
    else:
        assert t["change"] == 0.25 and t["change_kind"] == "points"  # 75% vs 50%


def test_group_by_organization_and_department(db, loaded, world, ):
    with db.session() as s:
        by_org = service.values(s, "smart_booking_rate", period="month", start=OCT[0], end=OCT[1],
                                group_by="organization")
        by_dept = service.values(s, "referrals_up", period="month", start=OCT[0], end=OCT[1], group_by="department")
        by_comm = service.values(s, "county_visit_rate", period="month", start=OCT[0], end=OCT[1],
                                 group_by="community")
        contract = service.values(s, "contract_rate", period="month", start=OCT[0], end=OCT[1],
                                  group_by="organization")
    assert [(r["group"], r["value"]) for r in by_org] == [(world.org_a, 0.75)]
    assert sorted((r["group"], r["value"]) for r in by_dept) == sorted([("", 1), (loaded.dept_a, 1)])
    assert [(r["group"], r["value"]) for r in by_comm] == [(world.community_id, 0.8)]
    assert [(r["group"], r["numerator"], r["denominator"]) for r in contract] == [(world.org_b, 1, 10)]


def test_quarter_and_year_periods(db, loaded):
    with db.session() as s:
        q = service.values(s, "referrals_total", period="quarter", start=dt.date(2025, 1, 1), end=dt.date(2026, 12, 31))
        y = service.values(s, "primary_visit_rate", period="year", start=dt.date(2025, 1, 1), end=dt.date(2026, 12, 31))
    assert [(r["period"], r["value"]) for r in q] == [("2025-Q4", 1), ("2026-Q4", 3)]
    assert [(r["period"], r["numerator"], r["denominator"]) for r in y] == [("2025", 1, 2), ("2026", 3, 4)]


def test_filters_by_community_and_organization(db, loaded, world):
    with db.session() as s:
        f = service.Filters(organization_id=world.org_b)
        rows = service.values(s, "referrals_up", period="month", start=OCT[0], end=OCT[1], filters=f)
        none = service.values(s, "referrals_up", period="month", start=OCT[0], end=OCT[1],
                              filters=service.Filters(community_id="nope"))
    assert [r["value"] for r in rows] == [2] and none == []


# --- incremental = rebuild = independent SQL --------------------------------------------------------

def _independent(db, world) -> dict[str, float | None]:
    """The October 2026 figures straight from the source tables (and, for referral/family events whose
    tables may not exist yet, straight from the outbox payloads) — no facts, no shared code."""
    out: dict[str, float | None] = {}
    with db.session() as s:
        q = lambda sql, **kw: s.execute(text(sql), kw).one()  # noqa: E731
        amb, in_c, prim, imp, imp_in = q(
            "SELECT sum(CASE WHEN encounter_class IN ('AMB','EMER') THEN 1 ELSE 0 END),"
            " sum(CASE WHEN encounter_class IN ('AMB','EMER') AND in_county THEN 1 ELSE 0 END),"
            " sum(CASE WHEN encounter_class IN ('AMB','EMER') AND in_county AND organization_level='primary'"
            " THEN 1 ELSE 0 END), sum(CASE WHEN encounter_class='IMP' THEN 1 ELSE 0 END),"
            " sum(CASE WHEN encounter_class='IMP' AND in_county THEN 1 ELSE 0 END)"
            " FROM encounter WHERE visit_date BETWEEN :a AND :b", a=OCT[0], b=OCT[1])
        out["primary_visit_rate"] = round(prim / in_c, 4)
        out["outpatient_visits"] = in_c
        out["county_visit_rate"] = round(in_c / amb, 4)
        out["county_inpatient_rate"] = round(imp_in / imp, 4)
        live, precise, done, noshow = q(
            "SELECT sum(CASE WHEN status<>'cancelled' THEN 1 ELSE 0 END),"
            " sum(CASE WHEN status<>'cancelled' AND precise THEN 1 ELSE 0 END),"
            " sum(CASE WHEN status IN ('noshow','checked-in','fulfilled') THEN 1 ELSE 0 END),"
            " sum(CASE WHEN status='noshow' THEN 1 ELSE 0 END) FROM sched_appointment"
            " WHERE start >= :a AND start < :b AND status <> 'pending'",
            a=fx_mod.local(OCT[0], 0), b=fx_mod.local(OCT[1] + dt.timedelta(days=1), 0))
        out["smart_booking_rate"] = round(precise / live, 4)
        out["no_show_rate"] = round(noshow / done, 4)
        waits = sorted((local_date(a.start) - local_date(a.booked_at)).days for a in s.scalars(
            select(Appointment).where(Appointment.status != "cancelled")))
        mid = len(waits) // 2
        out["exam_wait_median"] = float(waits[mid]) if len(waits) % 2 else (waits[mid - 1] + waits[mid]) / 2
        rec, rep = q(
            "SELECT sum(CASE WHEN d.decision='recognised' THEN 1 ELSE 0 END),"
            " sum(CASE WHEN d.decision='repeated' AND r.counts_as_non_recognition THEN 1 ELSE 0 END)"
            " FROM recognition_decision d LEFT JOIN recognition_reason r ON r.code = d.reason_code"
            " WHERE d.kind='decision' AND d.prior_ids IS NOT NULL"
            " AND EXISTS (SELECT 1 FROM recognition_decision c WHERE c.id = d.check_id AND c.prior_ids IS NOT NULL)"
            " AND d.id IN (SELECT id FROM recognition_decision WHERE kind='decision')")
        # prior_ids is JSON: the empty list is found in Python (portable across both databases).
        no_prior = [d for d in s.execute(text("SELECT decision, reason_code, prior_ids FROM recognition_decision"
                                              " WHERE kind='decision'")).all() if d[2] in ("[]", [])]
        rep -= sum(1 for d in no_prior if d[0] == "repeated" and d[1] not in ("98", "99"))
        rec -= sum(1 for d in no_prior if d[0] == "recognised")
        out["recognition_rate"] = round(rec / (rec + rep), 4)
        checks = [c for c in s.execute(text("SELECT prior_ids FROM recognition_decision WHERE kind='check'")).scalars()
                  if c not in ("[]", [])]
        out["reminder_acceptance"] = round(rec / len(checks), 4)
        payloads = [(e.event_type, e.payload, e.person_id) for e in s.scalars(select(OutboxEvent).order_by(OutboxEvent.id))]
    sub = {}
    for et, p, _ in payloads:
        if et == "referral.submitted":
            sub[p["referral_id"]] = p
    oct_ = [p for p in sub.values() if p["submitted_at"].startswith("2026-10")]
    out["referrals_up"] = sum(p["direction"] == "up" for p in oct_)
    out["referrals_down"] = sum(p["direction"] == "down" for p in oct_)
    out["referrals_total"] = len(oct_)
    end = "2026-10-31"
    contracts: dict[str, dict] = {}
    for et, p, _ in payloads:
        if et.startswith("contract."):
            contracts[p["contract_id"]] = p
    active = sum(1 for p in contracts.values() if p["start_date"] <= end <= p["end_date"])
    out["contract_rate"] = round(active / 10, 4)
    for prog, est in (("hypertension", 4), ("diabetes", 2)):
        managed = {pid for et, p, pid in payloads if et == "registry.enrolled" and p["programme"] == prog
                   and p["enrolled_on"] <= end}
        fus = defaultdict(list)
        for et, p, pid in payloads:
            if et == "followup.recorded" and p["programme"] == prog and "2026-01-01" <= p["visit_date"] <= end:
                fus[pid].append((p["visit_date"], p["controlled"]))
        out[f"{prog}_management_rate"] = round(len(managed) / est, 4)
        out[f"{prog}_standard_rate"] = round(sum(len(fus[p]) >= 4 for p in managed) / len(managed), 4)
        out[f"{prog}_control_rate"] = round(sum(bool(fus[p]) and max(fus[p])[1] for p in managed) / len(managed), 4)
    return out


def test_incremental_equals_rebuild_equals_independent_sql(db, loaded, world):
    incremental = _snapshot(db)
    assert incremental, "the incremental update produced facts"
    with db.session() as s:
        facts.update(s)  # nothing new, look-back re-reads recent events: idempotent
        s.commit()
    assert _snapshot(db) == incremental
    with db.session() as s:
        facts.rebuild(s)
        s.commit()
    assert _snapshot(db) == incremental
    independent = _independent(db, world)
    assert set(independent) == set(EXPECTED)
    with db.session() as s:
        for ind_id, value in independent.items():
            got = service.values(s, ind_id, period="month", start=OCT[0], end=OCT[1])
            assert [r["value"] for r in got] == [value], ind_id
            assert value == EXPECTED[ind_id], ind_id


def test_a_later_change_is_picked_up_by_the_update(db, loaded, world):
    """An appointment marked no-show later: the update recomputes its exam day; the rebuild agrees."""
    with db.session() as s:
        appt = s.scalars(select(Appointment).where(Appointment.status == "booked")).first()
        appt.status = "noshow"
        record_event(s, "appointment.noshow", "Appointment", appt.id, {"status": "noshow"})
        s.commit()
    with db.session() as s:
        summary = facts.update(s)
        s.commit()
    assert summary["days"].get("appointment", 0) >= 1  # its day (plus look-back re-reads on PostgreSQL)
    with db.session() as s:
        rows = service.values(s, "no_show_rate", period="month", start=OCT[0], end=OCT[1])
    assert rows[0]["numerator"] == 2 and rows[0]["denominator"] == 4  # 2 no-shows ÷ 4 done
    after = _snapshot(db)
    with db.session() as s:
        facts.rebuild(s)
        s.commit()
    assert _snapshot(db) == after
    with db.session() as s:
        appt = s.get(Appointment, appt.id)
        appt.status = "booked"
        record_event(s, "appointment.booked", "Appointment", appt.id, {"status": "booked"})
        s.commit()
        facts.update(s)
        s.commit()


def test_stock_figures_come_from_month_end_snapshots(db, loaded, world):
    """Month ends are read from the snapshot; another day is computed live; both agree with EXPECTED."""
    from onetrip.analytics import stock

    with db.session() as s:
        snap = stock.read_snapshot(s, "managed", "hypertension", OCT[1])
        live = stock.counts(s, "managed", "hypertension", OCT[1], 4)
        assert snap == live == {world.org_b: 2}
        assert stock.read_snapshot(s, "managed", "hypertension", dt.date(2026, 10, 30)) is None
        rows = service.values(s, "hypertension_control_rate", period="day", start=dt.date(2026, 10, 30),
                              end=dt.date(2026, 10, 30))
    assert [r["value"] for r in rows] == [0.5]


def test_referral_projection_keeps_the_submission_day(db, loaded):
    with db.session() as s:
        r1 = s.get(AnalyticsReferral, "r1")
        r4 = s.get(AnalyticsReferral, "r4")
    assert r1.submitted_on == dt.date(2026, 10, 5) and r1.direction == "up"
    assert r4.submitted_on is None


def test_cursor_is_ours_outbox_published_at_untouched(db, loaded):
    with db.session() as s:
        assert s.scalar(select(OutboxEvent.id).where(OutboxEvent.published_at.is_not(None))) is None
        st = facts.status(s)
    assert st["outbox_behind"] == 0 and st["cursors"]["outbox"]["last_id"] > 0


def test_bad_period_and_group_are_400(db, loaded):
    from onetrip.kit.errors import BadRequest, NotFound

    with db.session() as s:
        with pytest.raises(BadRequest):
            service.values(s, "county_visit_rate", period="month", start=OCT[0], end=OCT[1], group_by="department")
        with pytest.raises(BadRequest):
            service.values(s, "referrals_up", period="week", start=OCT[0], end=OCT[1])
        with pytest.raises(NotFound):
            service.values(s, "nope", period="month", start=OCT[0], end=OCT[1])
