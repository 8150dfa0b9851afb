"""HMAC-SHA256 signatures of outgoing notifications (pure; receivers can copy ``verify``).

Header ``X-OneTrip-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>``. The
timestamp is signed with the body so a captured request cannot be replayed later than the receiver's
tolerance; ``v1`` names the scheme so a second signature can be added during a secret rotation.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

HEADER = "X-OneTrip-Signature"
SCHEME = "v1"


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},{SCHEME}={mac}"


def verify(secret: str, header: str, body: bytes, now: int, tolerance: int = 300) -> bool:
    """True when ``header`` signs ``body`` with ``secret`` and its time is within ``tolerance`` s of ``now``."""
    parts: dict[str, list[str]] = {}
    for item in (header or "").split(","):
        key, _, value = item.strip().partition("=")
        parts.setdefault(key, []).append(value)
    try:
        timestamp = int(parts["t"][0])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body).split(f"{SCHEME}=", 1)[1]
    return any(hmac.compare_digest(expected, candidate) for candidate in parts.get(SCHEME, []))
