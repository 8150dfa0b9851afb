"""Password hashing (argon2 via pwdlib) and the complexity rule (等保 2.0 level 3, RULES §10)."""

from __future__ import annotations

import string

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

_hasher = PasswordHash((Argon2Hasher(),))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, hashed: str) -> bool:
    try:
        return _hasher.verify(password, hashed)
    except Exception:  # an unreadable hash never verifies
        return False


# Verifying against this keeps the time of "no such user" equal to "wrong password".
DUMMY_HASH = hash_password("dummy-Password-1!")


def complexity_problems(password: str, username: str, *, min_length: int, min_classes: int) -> list[str]:
    """Everything wrong with a new password, in words the user can act on (empty = acceptable)."""
    problems = []
    if len(password) < min_length:
        problems.append(f"至少{min_length}个字符 / at least {min_length} characters")
    classes = sum(
        any(ch in group for ch in password)
        for group in (string.ascii_lowercase, string.ascii_uppercase, string.digits)
    ) + any(not ch.isalnum() for ch in password)
    if classes < min_classes:
        problems.append(
            f"须包含大写、小写、数字、符号中的至少{min_classes}类 / "
            f"use at least {min_classes} of: upper case, lower case, digits, symbols"
        )
    if username and username.lower() in password.lower():
        problems.append("不能包含用户名 / must not contain the user name")
    return problems
