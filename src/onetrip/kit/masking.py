"""Masking of personal identifiers in lists, exports and logs (RULES §10, 个人信息保护法 Art. 28).

Patterns follow RULES §10 [S]: ID 110***********1234, phone 138****5678, name 张**.
"""

from __future__ import annotations

import re


def mask_id_number(value: str | None) -> str:
    """Keep the first 3 and last 4 characters: 110***********1234."""
    if not value:
        return ""
    if len(value) <= 7:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


def mask_phone(value: str | None) -> str:
    """138****5678; an E.164 +86 prefix is kept as is: +86138****5678."""
    if not value:
        return ""
    prefix = ""
    if value.startswith("+86"):
        prefix, value = "+86", value[3:]
    if len(value) < 7:
        return prefix + "*" * len(value)
    return prefix + value[:3] + "*" * (len(value) - 7) + value[-4:]


def mask_name(value: str | None) -> str:
    """张** — the surname (first character) stays; the rest become asterisks."""
    if not value:
        return ""
    return value[0] + "*" * (len(value) - 1)


_ID_RE = re.compile(r"(?<![0-9A-Za-z])(\d{6})(\d{8})(\d{3}[\dXx])(?![0-9A-Za-z])")
_PHONE_RE = re.compile(r"(?<!\d)(\+?86)?(1[3-9]\d)(\d{4})(\d{4})(?!\d)")


def scrub(text: str) -> str:
    """Mask ID numbers and mobile phone numbers anywhere in free text (for log lines)."""
    text = _ID_RE.sub(lambda m: mask_id_number(m.group(0)), text)
    return _PHONE_RE.sub(lambda m: (m.group(1) or "") + m.group(2) + "****" + m.group(4), text)
