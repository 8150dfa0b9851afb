"""Password hashing (argon2 via pwdlib), the complexity rule and the common-password check (等保 2.0 level 3,
RULES §10)."""

from __future__ import annotations

import string

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from zxcvbn import zxcvbn

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


# Words a guesser tries first here beyond zxcvbn's own lists (its frequency lists hold the top passwords of
# public leaks, English words, names, years, keyboard walks and l33t forms of all of them).
SITE_WORDS = ("onetrip", "demo", "test", "admin", "hospital", "yigongti", "weijianju", "yiyuan", "china", "beijing")


def strength_problems(password: str, user_inputs: list[str], *, min_score: int) -> list[str]:
    """RULES §10: refuse guessable passwords — ``Password1``, ``Admin@123``, a word plus a year and a symbol —
    by zxcvbn's score (0–4; 4 = more than 10^10 guesses, safe even offline against a slow hash). 0 = no check."""
    if min_score <= 0 or not password:
        return []
    result = zxcvbn(password[:100], user_inputs=[*SITE_WORDS, *(u for u in user_inputs if u)])
    if result["score"] >= min_score:
        return []
    return ["太常见或太容易猜到，请用几个不相关的词或更长的随机组合 / too common or too easy to guess: "
            "use several unrelated words or a longer random mix"]


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
