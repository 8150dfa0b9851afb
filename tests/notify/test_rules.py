"""The notification rules are pure functions; each test fails if the rule or its seeded number changes."""

from __future__ import annotations

import datetime as dt
import json
from importlib import resources

import pytest
from hypothesis import given
from hypothesis import strategies as st

from onetrip.notify import rules as R
from onetrip.notify import signing


def seeded() -> dict[str, object]:
    data = json.loads(resources.files("onetrip.db.seeds").joinpath("rules_notify.json").read_text("utf-8"))
    return {row["key"]: row["value"] for row in data if row["rule_set"] == "notify"}


def test_seeded_rule_table_is_valid_and_as_documented():
    values = seeded()
    assert values == {"max_attempts": 12, "base_delay_seconds": 10, "max_delay_seconds": 1800, "jitter": 0.5,
                      "timeout_seconds": 10, "lease_seconds": 60, "gap_grace_seconds": 600, "batch_size": 50}
    assert R.NotifyRules.from_values(values) == R.NotifyRules()


def test_rule_table_that_breaks_the_lease_rule_is_refused():
    with pytest.raises(ValueError, match="lease_seconds"):
        R.NotifyRules.from_values({"timeout_seconds": 20, "lease_seconds": 64})  # N4: 3 × 20 + 5 > 64
    assert R.NotifyRules.from_values({"timeout_seconds": 20, "lease_seconds": 65}).lease_seconds == 65
    with pytest.raises(ValueError, match="jitter"):
        R.NotifyRules.from_values({"jitter": 1.5})


# --- N2: back-off schedule (acceptance 3c) -----------------------------------------------------------

def test_backoff_schedule_without_jitter_doubles_up_to_the_cap():
    schedule = [R.backoff_delay(n, base=10, cap=1800, jitter=0.5, rand=0.0) for n in range(1, 12)]
    assert schedule == [10, 20, 40, 80, 160, 320, 640, 1280, 1800, 1800, 1800]


def test_backoff_jitter_takes_at_most_the_jitter_share():
    assert R.backoff_delay(3, base=10, cap=1800, jitter=0.5, rand=0.999999) == pytest.approx(20, abs=1e-3)
    assert R.backoff_delay(3, base=10, cap=1800, jitter=0.5, rand=0.5) == 30
    assert R.backoff_delay(3, base=10, cap=1800, jitter=0.0, rand=0.9) == 40  # no jitter: exact schedule
    assert R.backoff_delay(3, base=10, cap=1800, jitter=1.0, rand=0.75) == 10  # full jitter


@given(attempt=st.integers(1, 500), rand=st.floats(0, 1, exclude_max=True),
       jitter=st.floats(0, 1), base=st.floats(0.01, 100), factor=st.floats(1, 1000))
def test_backoff_is_bounded(attempt, rand, jitter, base, factor):
    cap = base * factor
    d = R.backoff_delay(attempt, base=base, cap=cap, jitter=jitter, rand=rand)
    ceiling = min(cap, base * 2 ** (attempt - 1))
    assert ceiling * (1 - jitter) - 1e-9 <= d <= ceiling + 1e-9 <= cap + 1e-9
    assert d > 0


def test_backoff_refuses_nonsense():
    with pytest.raises(ValueError):
        R.backoff_delay(0, base=1, cap=2, jitter=0, rand=0)
    with pytest.raises(ValueError):
        R.backoff_delay(1, base=1, cap=2, jitter=0, rand=1.0)


def test_retry_after_is_honoured_up_to_the_cap():
    rules = R.NotifyRules()
    assert R.retry_delay(1, rules, 0.0) == 10
    assert R.retry_delay(1, rules, 0.0, retry_after=120) == 120
    assert R.retry_delay(1, rules, 0.0, retry_after=99_999) == 1800
    assert R.retry_delay(5, rules, 0.0, retry_after=1) == 160  # a shorter Retry-After does not shorten it
    now = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)
    assert R.parse_retry_after("120", now) == 120
    assert R.parse_retry_after("Mon, 23 Nov 2026 08:02:00 GMT", now) == 120
    assert R.parse_retry_after("soon", now) is None
    assert R.parse_retry_after(None, now) is None


def test_dead_letter_after_max_attempts():  # N1
    assert not R.is_dead(11, 12)
    assert R.is_dead(12, 12)


def test_only_2xx_counts_as_delivered():  # N3
    assert R.is_success(200) and R.is_success(204) and R.is_success(299)
    assert not any(R.is_success(c) for c in (None, 199, 301, 302, 400, 404, 410, 429, 500, 503))


# --- which events go where ---------------------------------------------------------------------------

def test_event_type_patterns():
    assert R.matches("referral.submitted", "ServiceRequest", ["referral.*"], None)
    assert R.matches("referral.submitted", "ServiceRequest", ["*"], "ServiceRequest")
    assert not R.matches("referral.submitted", "ServiceRequest", ["*"], "Appointment")
    assert R.matches("appointment.booked", "Appointment", ["appointment.booked", "referral.*"], None)
    assert not R.matches("appointment.cancelled", "Appointment", ["appointment.booked"], None)
    assert not R.matches("referrals.x", "X", ["referral.*"], None)
    for good in ("*", "referral.*", "appointment.booked", "slots.reserved-released", "a.b.*"):
        assert R.valid_pattern(good), good
    for bad in ("", "Referral.*", "*.booked", "referral.*.x", "a b", "referral..x"):
        assert not R.valid_pattern(bad), bad


# --- N6: privacy of what is sent ------------------------------------------------------------------------

def test_payload_sent_out_carries_no_patient_identifiers():
    payload = {"referral_id": "r1", "person_id": "p1", "to_person_id": "p2", "name": "张三",
               "id_number": "110101199003071234", "phone": "13812345678", "mrn": "M1",
               "note": "患者身份证 110101199003071234，电话 13812345678",
               "items": [{"patient_name": "李四", "code": "CT"}], "direction": "up"}
    out = R.sanitize(payload)
    assert out == {"referral_id": "r1", "note": "患者身份证 110***********1234，电话 138****5678",
                   "items": [{"code": "CT"}], "direction": "up"}
    text = json.dumps(R.envelope(event_id="e", event_type="referral.drafted", occurred_at=dt.datetime.now(dt.UTC),
                                 sequence=1, aggregate_type="ServiceRequest", aggregate_id="r1", payload=payload,
                                 subscription_id="s"), ensure_ascii=False)
    for leaked in ("p1", "p2", "张三", "110101199003071234", "13812345678", "李四"):
        assert leaked not in text


# --- signatures (acceptance 3d, the pure half) --------------------------------------------------------

def test_signature_verifies_and_detects_tampering_and_old_replays():
    secret, body, t = "whsec_test-secret-123456", b'{"id":"abc"}', 1_790_000_000
    header = signing.sign(secret, t, body)
    assert header.startswith(f"t={t},v1=")
    assert signing.verify(secret, header, body, now=t + 10)
    assert not signing.verify(secret, header, body + b" ", now=t)  # body changed
    assert not signing.verify("whsec_other-secret-99999", header, body, now=t)  # wrong secret
    assert not signing.verify(secret, header, body, now=t + 301)  # replayed after the tolerance
    assert not signing.verify(secret, header.replace(f"t={t}", f"t={t + 5}"), body, now=t)  # time changed
    assert not signing.verify(secret, "garbage", body, now=t)
    rotated = header + ",v1=" + "0" * 64  # two signatures during a secret rotation: either may match
    assert signing.verify(secret, rotated, body, now=t)
    assert signing.new_secret() != signing.new_secret()


def test_gap_rule_n5():
    from onetrip.notify.dispatcher import gap_settled

    noticed = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)
    later = noticed + dt.timedelta(hours=2)
    # PostgreSQL: decided by the transactions still open, however long ago the gap was noticed.
    assert not gap_settled(noticed, later, noticed - dt.timedelta(seconds=1), precise=True, grace_seconds=600)
    assert gap_settled(noticed, noticed + dt.timedelta(seconds=1), noticed + dt.timedelta(seconds=1), precise=True,
                       grace_seconds=600)
    assert gap_settled(noticed, noticed + dt.timedelta(seconds=1), None, precise=True, grace_seconds=600)
    # Elsewhere: the grace period.
    assert not gap_settled(noticed, noticed + dt.timedelta(seconds=599), None, precise=False, grace_seconds=600)
    assert gap_settled(noticed, noticed + dt.timedelta(seconds=601), None, precise=False, grace_seconds=600)
    # A cap of 24 × grace, even with a transaction open since before.
    assert gap_settled(noticed, noticed + dt.timedelta(seconds=24 * 600 + 1), noticed - dt.timedelta(hours=9),
                       precise=True, grace_seconds=600)
