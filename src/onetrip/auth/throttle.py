"""Sign-in throttling and lockout as pure functions over counters (RULES §10 login-failure handling, 等保 2.0
level 3). The numbers come from the ``security`` rule table; ``auth.service`` reads and writes the counters
(table ``auth_throttle``) and calls these.

Three counters, each a window of ``throttle_window_minutes``:

- **address** (``a:<address>``): after ``throttle_free_failures`` failures every further failure from that address
  makes it wait ``base · 2^k`` seconds (capped at ``throttle_max_delay_seconds``) before its next attempt, and
  after ``throttle_address_max_failures`` it waits until the window ends. Waiting is answered 429 + Retry-After.
- **pair** (``p:<user>|<address>``): ``lockout_threshold`` failures lock that account *from that address* for
  ``lockout_minutes``. A stranger who guesses an administrator's password from elsewhere locks only themselves.
- **account** (``u:<user>``): the whole account locks only when failures come from ``lockout_account_addresses``
  distinct addresses in one window (a distributed guess); a user with a second factor still gets in with
  password + a valid code.

The counters live in our own database table, not in the ``limits`` library: its shared stores are Redis,
Memcached, MongoDB or etcd, none of which a hospital deployment of OneTrip runs, and its in-memory store is per
process — several uvicorn workers would each allow the full number of guesses. One small row per key in the
database every process already shares costs one indexed read per sign-in and three upserts per failure.

A lock is answered exactly like a wrong password (the caller must not learn that the account exists or is
locked); only a delay is answered differently (429), and delays are keyed by address, not by account.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Mapping

MAX_ADDRESSES_KEPT = 64  # an account row remembers at most this many failing addresses per window


@dataclasses.dataclass(frozen=True)
class ThrottlePolicy:
    window_minutes: int = 15
    free_failures: int = 3
    base_delay_seconds: int = 2
    max_delay_seconds: int = 60
    address_max_failures: int = 30
    lockout_threshold: int = 5
    lockout_minutes: int = 15
    account_addresses: int = 5

    @classmethod
    def from_rules(cls, values: Mapping[str, int]) -> ThrottlePolicy:
        """The policy from the ``security`` rule values (defaults where a key is missing)."""
        names = {"window_minutes": "throttle_window_minutes", "free_failures": "throttle_free_failures",
                 "base_delay_seconds": "throttle_base_delay_seconds",
                 "max_delay_seconds": "throttle_max_delay_seconds",
                 "address_max_failures": "throttle_address_max_failures", "lockout_threshold": "lockout_threshold",
                 "lockout_minutes": "lockout_minutes", "account_addresses": "lockout_account_addresses"}
        return cls(**{f: int(values[k]) for f, k in names.items() if k in values})

    @property
    def window(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.window_minutes)


@dataclasses.dataclass
class Counter:
    window_start: dt.datetime
    failures: int = 0
    next_allowed_at: dt.datetime | None = None
    locked_until: dt.datetime | None = None
    addresses: list[str] = dataclasses.field(default_factory=list)


def address_key(address: str | None) -> str:
    return f"a:{address or '-'}"[:200]


def noted_key(address: str | None) -> str:
    """The marker of the address's waiting period already audited (``next_allowed_at`` = that period's end,
    ``failures`` = the attempts refused in it without an audit row of their own)."""
    return f"n:{address or '-'}"[:200]


def pair_key(username: str, address: str | None) -> str:
    return f"p:{username.lower()}|{address or '-'}"[:200]


def account_key(username: str) -> str:
    return f"u:{username.lower()}"[:200]


def current(counter: Counter | None, now: dt.datetime, policy: ThrottlePolicy) -> Counter:
    """The counter as of ``now``: a new window starts once the old one is over (a lock runs its own course)."""
    if counter is None:
        return Counter(window_start=now)
    if now - counter.window_start >= policy.window:
        return Counter(window_start=now, locked_until=counter.locked_until if is_locked(counter, now) else None)
    return counter


def is_locked(counter: Counter | None, now: dt.datetime) -> bool:
    return counter is not None and counter.locked_until is not None and counter.locked_until > now


def retry_after(counter: Counter | None, now: dt.datetime) -> int:
    """Whole seconds the client must wait before its next attempt (0 = may try now)."""
    if counter is None or counter.next_allowed_at is None or counter.next_allowed_at <= now:
        return 0
    return max(1, math.ceil((counter.next_allowed_at - now).total_seconds()))


def progressive_delay(failures: int, policy: ThrottlePolicy) -> int:
    """RULES §10: seconds to wait after the ``failures``-th failure — none for the first ``free_failures``,
    then ``base``, ``2·base``, ``4·base``, … up to ``max_delay_seconds``."""
    extra = failures - policy.free_failures
    if extra <= 0 or policy.base_delay_seconds <= 0:
        return 0
    return min(policy.max_delay_seconds, policy.base_delay_seconds * 2 ** min(extra - 1, 30))


def after_address_failure(counter: Counter, now: dt.datetime, policy: ThrottlePolicy) -> Counter:
    """RULES §10: one more failure from an address — a progressive delay, and the rest of the window once
    ``address_max_failures`` is reached."""
    failures = counter.failures + 1
    if failures >= policy.address_max_failures:
        until = counter.window_start + policy.window
    else:
        delay = progressive_delay(failures, policy)
        until = now + dt.timedelta(seconds=delay) if delay else None
    return dataclasses.replace(counter, failures=failures, next_allowed_at=until)


def after_pair_failure(counter: Counter, now: dt.datetime, policy: ThrottlePolicy) -> Counter:
    """RULES §10: ``lockout_threshold`` failures on one account from one address lock that pair."""
    failures = counter.failures + 1
    if failures >= policy.lockout_threshold:
        return dataclasses.replace(counter, failures=0, locked_until=now + dt.timedelta(minutes=policy.lockout_minutes))
    return dataclasses.replace(counter, failures=failures)


def after_account_failure(counter: Counter, now: dt.datetime, policy: ThrottlePolicy, address: str | None) -> Counter:
    """RULES §10: the whole account locks only once ``account_addresses`` distinct addresses failed on it in one
    window — a guess spread over many machines, not one stranger."""
    addresses = list(counter.addresses)
    if (address or "-") not in addresses and len(addresses) < MAX_ADDRESSES_KEPT:
        addresses.append(address or "-")
    locked_until = counter.locked_until
    if len(addresses) >= policy.account_addresses and not is_locked(counter, now):
        locked_until = now + dt.timedelta(minutes=policy.lockout_minutes)
    return dataclasses.replace(counter, failures=counter.failures + 1, addresses=addresses, locked_until=locked_until)
