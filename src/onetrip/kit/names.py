"""Names as stored: simplified Chinese (OpenCC t2s) plus a toneless pinyin key (pypinyin) for search.

The master patient index (identity issue) extends this with surname readings and heteronyms; here we
keep one normalised form and one pinyin form per name.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

import opencc
from pypinyin import Style, lazy_pinyin


@lru_cache(maxsize=1)
def _t2s() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


def normalize_name(raw: str) -> str:
    """NFKC (full-width → half-width), drop inner spaces between Han characters, traditional → simplified."""
    text = unicodedata.normalize("NFKC", raw or "").strip()
    if any("\u4e00" <= ch <= "\u9fff" for ch in text):
        text = text.replace(" ", "").replace("·", "·")
    return _t2s().convert(text)


def name_pinyin(name: str) -> str:
    """Toneless pinyin, syllables joined without spaces, lower case: 陈丽 → chenli. ü is written v."""
    syllables = lazy_pinyin(name, style=Style.NORMAL, v_to_u=False, errors=lambda s: list(s.lower()))
    return "".join(s for s in syllables if s.strip()).lower()


def looks_like_pinyin(query: str) -> bool:
    return bool(query) and all(ch.isascii() and (ch.isalpha() or ch == " ") for ch in query)
