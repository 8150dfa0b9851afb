"""The second factor: TOTP (RFC 6238, via pyotp) and single-use recovery codes — pure functions.

RULES §10 (等保 2.0 level 3): two-factor authentication for privileged users. Which roles are privileged is
``PRIVILEGED_ROLES``; the accepted clock drift is the ``totp_window_steps`` rule value.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Iterable

import pyotp

ISSUER = "OneTrip"
STEP_SECONDS = 30
RECOVERY_CODES = 10
_RECOVERY_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # 32 symbols (5 bits each), no 0/O or 1/I to misread

# RULES §10 "two-factor for privileged users": administrators, auditors and the district health bureau's
# managers. Names not (yet) in registry.Role simply never match.
PRIVILEGED_ROLES = frozenset({"admin", "auditor", "bureau_manager"})


def needs_second_factor(roles: Iterable[str]) -> bool:
    return bool(PRIVILEGED_ROLES.intersection(roles))


def new_secret() -> str:
    return pyotp.random_base32()  # 32 base32 characters = 160 bits (RFC 4226 §4 recommends 160)


def provisioning_uri(secret: str, username: str) -> str:
    """The ``otpauth://totp/...`` URI an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret, interval=STEP_SECONDS).provisioning_uri(name=username, issuer_name=ISSUER)


def step_of(moment: dt.datetime) -> int:
    return int(moment.timestamp()) // STEP_SECONDS


def code_at_step(secret: str, step: int) -> str:
    return pyotp.TOTP(secret, interval=STEP_SECONDS).at(step * STEP_SECONDS)


def looks_like_totp(code: str) -> bool:
    return len(code) == 6 and code.isdigit()


def matching_step(secret: str, code: str, now: dt.datetime, window_steps: int, last_step: int | None) -> int | None:
    """RULES §10 / RFC 6238 §5.2: the step (now ± ``window_steps``) whose code is ``code`` and that is later than
    the last accepted one — a code is good once, and an older one after a newer one is a replay. None = refused."""
    code = code.strip().replace(" ", "")
    if not looks_like_totp(code):
        return None
    totp = pyotp.TOTP(secret, interval=STEP_SECONDS)
    here = step_of(now)
    for step in range(here - window_steps, here + window_steps + 1):
        if last_step is not None and step <= last_step:
            continue
        if secrets.compare_digest(totp.at(step * STEP_SECONDS), code):
            return step
    return None


def new_recovery_codes(n: int = RECOVERY_CODES) -> list[str]:
    """``n`` codes of 16 base32 characters (80 bits) shown as four groups: ``ABCD-EFGH-JKLM-NPQR``."""
    codes = []
    for _ in range(n):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(16))
        codes.append("-".join(raw[i:i + 4] for i in range(0, 16, 4)))
    return codes


def normalize_recovery_code(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


def recovery_code_hash(code: str) -> str:
    """SHA-256 of the normalised code. The codes carry 80 random bits, so a slow hash would add nothing; a fast
    one lets the stored code be found by value (a unique index)."""
    return hashlib.sha256(normalize_recovery_code(code).encode()).hexdigest()
