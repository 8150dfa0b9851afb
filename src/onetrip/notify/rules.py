"""The notification rules as pure functions over plain data (STYLE 4). Numbers come from the ``notify``
rule table (db/seeds/rules_notify.json); each function names the rule it applies.

N1  dead letter after ``max_attempts`` failed attempts.
N2  exponential back-off with jitter, capped; a receiver's ``Retry-After`` is honoured up to the cap.
N3  an attempt succeeds only on HTTP 2xx (redirects are not followed: a moved receiver must re-register).
N4  a delivery is sent by one dispatcher at a time (lease ``lease_seconds`` > the longest attempt).
N5  an outbox id missing below the read position is awaited while a transaction that could still commit it
    is open (PostgreSQL), else ``gap_grace_seconds`` (dispatcher.gap_settled).
N6  privacy: the event sent carries no patient identifiers (RULES §10); receivers fetch details through
    the API, where access policy and audit apply.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import fnmatch
import re
from dataclasses import dataclass
from typing import Any

from onetrip.kit.masking import scrub

# N4: an attempt (at most 3 × timeout) starts only while this much of the lease is left besides it; the
# spare seconds cover the time a claim waits for a free sender and the recording afterwards.
LEASE_SPARE_SECONDS = 5


@dataclass(frozen=True)
class NotifyRules:
    max_attempts: int = 12
    base_delay_seconds: float = 10
    max_delay_seconds: float = 1800
    jitter: float = 0.5
    timeout_seconds: float = 10
    lease_seconds: float = 60
    gap_grace_seconds: float = 600
    batch_size: int = 50

    @classmethod
    def from_values(cls, values: dict[str, object]) -> NotifyRules:
        known = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        rules = cls(**known)  # type: ignore[arg-type]
        problems = rules.problems()
        if problems:
            raise ValueError("notify 规则表有误 / invalid notify rule table: " + "; ".join(problems))
        return rules

    def problems(self) -> list[str]:
        out = []
        if self.max_attempts < 1:
            out.append("max_attempts must be ≥ 1")
        if self.base_delay_seconds <= 0 or self.max_delay_seconds < self.base_delay_seconds:
            out.append("need 0 < base_delay_seconds ≤ max_delay_seconds")
        if not 0 <= self.jitter <= 1:
            out.append("jitter must lie in [0, 1]")
        if self.timeout_seconds <= 0 or self.lease_seconds < 3 * self.timeout_seconds + LEASE_SPARE_SECONDS:
            out.append(f"lease_seconds must be at least 3 × timeout_seconds + {LEASE_SPARE_SECONDS} (N4)")
        if self.batch_size < 1:
            out.append("batch_size must be ≥ 1")
        return out


def backoff_delay(attempt: int, base: float, cap: float, jitter: float, rand: float) -> float:
    """N2: seconds to wait after failed attempt number ``attempt`` (1 = the first attempt failed).

    The ceiling doubles with every failure, ``min(cap, base · 2^(attempt-1))``; the delay is the ceiling
    less a random share of it: ``ceiling · (1 - jitter · rand)`` with ``rand`` in [0, 1). With jitter 0.5
    the delay lies in (ceiling/2, ceiling] — never shorter than half the schedule, never over the cap.
    ``rand`` is an argument so the schedule is a pure function (the dispatcher passes random.random())."""
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    if not 0 <= rand < 1:
        raise ValueError("rand must lie in [0, 1)")
    ceiling = min(cap, base * 2.0 ** min(attempt - 1, 64))
    return ceiling * (1 - jitter * rand)


def retry_delay(attempt: int, rules: NotifyRules, rand: float, retry_after: float | None = None) -> float:
    """N2 with the receiver's ``Retry-After`` (429/503): wait at least that long, but never past the cap."""
    delay = backoff_delay(attempt, rules.base_delay_seconds, rules.max_delay_seconds, rules.jitter, rand)
    if retry_after is not None and retry_after > delay:
        delay = min(retry_after, rules.max_delay_seconds)
    return delay


def parse_retry_after(value: str | None, now: dt.datetime) -> float | None:
    """``Retry-After: 120`` or an HTTP date → seconds from ``now`` (None when absent or unreadable)."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - now).total_seconds())


def is_dead(failed_attempts: int, max_attempts: int) -> bool:
    """N1: the delivery becomes a dead letter once ``max_attempts`` attempts have failed."""
    return failed_attempts >= max_attempts


def is_success(status_code: int | None) -> bool:
    """N3: only a 2xx answer counts as delivered (a 3xx is not followed, a 4xx/5xx is retried)."""
    return status_code is not None and 200 <= status_code < 300


# --- which events a subscription receives -------------------------------------------------------------

EVENT_PATTERN = re.compile(r"^(\*|[a-z][a-z0-9_-]*(\.([a-z0-9_-]+|\*))*)$")


def valid_pattern(pattern: str) -> bool:
    """``*``, ``referral.*``, ``appointment.booked`` (lower-case dotted names, ``*`` as the last part)."""
    return bool(EVENT_PATTERN.match(pattern)) and "*" not in pattern[:-1]


def matches(event_type: str, aggregate_type: str, patterns: list[str], aggregate: str | None) -> bool:
    """Does an event go to a subscription with these event-type ``patterns`` and ``aggregate`` filter?"""
    if aggregate and aggregate != aggregate_type:
        return False
    return any(p == "*" or fnmatch.fnmatchcase(event_type, p) for p in patterns)


# --- what is sent (N6) ----------------------------------------------------------------------------

# Payload keys that identify a patient, dropped from every event sent out. Internal person ids are
# dropped too: the receiver follows the aggregate reference through the API, where access rules apply.
PATIENT_KEYS = frozenset({
    "name", "family", "given", "id_number", "idcard", "id_card", "phone", "mobile", "telephone", "mrn",
    "birth_date", "birthdate", "address", "email", "guardian", "contact", "patient_name",
})


def _identifying(key: str) -> bool:
    k = key.lower()
    return k in PATIENT_KEYS or k.endswith("person_id") or k.endswith("_phone") or k.endswith("_name")


def sanitize(value: Any) -> Any:
    """N6: a payload with patient-identifying keys removed and ID / phone numbers masked in every string."""
    if isinstance(value, dict):
        return {k: sanitize(v) for k, v in value.items() if not _identifying(str(k))}
    if isinstance(value, list):
        return [sanitize(v) for v in value]
    if isinstance(value, str):
        return scrub(value)
    return value


def instant(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def envelope(*, event_id: str, event_type: str, occurred_at: dt.datetime, sequence: int, aggregate_type: str,
             aggregate_id: str, payload: dict, subscription_id: str) -> dict:
    """The JSON body of a notification (identical on every attempt, so receivers can compare copies)."""
    return {
        "id": event_id, "type": event_type, "time": instant(occurred_at), "sequence": sequence,
        "aggregate": {"type": aggregate_type, "id": aggregate_id},
        "data": sanitize(payload or {}), "subscription": subscription_id,
    }
