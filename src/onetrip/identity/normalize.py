"""Normalisation for matching (issue 3 §1) — pure functions, no database.

Each function cites what it implements. Names: NFKC + OpenCC t2s (``kit.names.normalize_name``); pinyin
with surname readings (单 shan, 曾 zeng, 解 xie, 仇 qiu, 区 ou, 朴 piao, 翟 zhai, 乐 yue …) and heteronym
alternatives (pypinyin); ü is written ``v`` and lv/lu/lyu (nv/nu/nyu) are one key. Similarity of Chinese
names is counted in characters (rapidfuzz on ``str``), never in UTF-8 bytes — DuckDB's ``levenshtein``
counts bytes, so 丽→莉 would cost 2–3 edits there. Resident IDs and phones go through ``kit.identifiers``
(R7.1, R7.5).
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from pypinyin import Style, pinyin
from rapidfuzz.distance import Levenshtein

from onetrip.kit.identifiers import IdentifierError, normalize_phone, normalize_sex, parse_resident_id
from onetrip.kit.names import normalize_name

# Surnames whose reading differs from the character's most common reading (姓氏读音). Two-character
# compound surnames first so 尉迟 is not read as 尉 (wei) + 迟.
SURNAME_READINGS: dict[str, tuple[str, ...]] = {
    "尉迟": ("yu", "chi"), "万俟": ("mo", "qi"), "长孙": ("zhang", "sun"),
    "单": ("shan",), "曾": ("zeng",), "解": ("xie",), "仇": ("qiu",), "区": ("ou",), "朴": ("piao",),
    "翟": ("zhai",), "乐": ("yue",), "查": ("zha",), "盖": ("ge",), "缪": ("miao",), "尉": ("yu",),
    "覃": ("qin",), "召": ("shao",), "种": ("chong",), "秘": ("bi",), "折": ("she",), "句": ("gou",),
    "隗": ("kui",), "员": ("yun",), "繁": ("po",), "华": ("hua",), "任": ("ren",), "沈": ("shen",),
    "令狐": ("ling", "hu"), "黑": ("he",), "蕃": ("pi",), "费": ("fei",), "纪": ("ji",), "过": ("guo",),
}
MAX_ALTERNATIVES = 16
"""Cap on heteronym combinations per name (a four-character name of polyphones would otherwise explode)."""

_HAN = re.compile(r"[\u3400-\u9fff]")
_NOT_LETTER = re.compile(r"[^a-z]")


def has_han(text: str) -> bool:
    return bool(_HAN.search(text or ""))


@lru_cache(maxsize=65536)
def clean_name(raw: str | None) -> str:
    """Issue 3 §1: NFKC, spaces between Han characters dropped, traditional → simplified (陳麗 → 陈丽)."""
    return normalize_name(raw or "")


def fold_pinyin(text: str) -> str:
    """Issue 3 §1 lv/lu/lyu: one key for ü however it is written (lü, lv, lyu, lu; nü, nv, nyu, nu).

    Lower case, letters only; ``ü``/``v``/``yu`` after l or n become ``u``. The fold is lossy on purpose
    (吕 Lü and 卢 Lu share a key); the exact-character and exact-pinyin levels above it keep them apart.
    """
    t = unicodedata.normalize("NFKC", text or "").lower().replace("ü", "v").replace("u:", "v")
    t = _NOT_LETTER.sub("", t)
    return re.sub(r"(?<=[ln])(?:yu|v)", "u", t)


def _syllables(name: str) -> list[list[str]]:
    """Per character, its candidate readings (first = the reading used for the primary key)."""
    out: list[list[str]] = []
    i = 0
    # Surname: the first one or two characters.
    for surname in (name[:2], name[:1]):
        if len(surname) and surname in SURNAME_READINGS and (len(surname) == 1 or len(name) > 2):
            for s in SURNAME_READINGS[surname]:
                out.append([s])
            i = len(surname)
            break
    if out and i == 1:
        # Keep the ordinary reading(s) of a one-character surname as alternatives: 单 is also dan.
        common = [r for r in pinyin(name[0], style=Style.NORMAL, heteronym=True)[0] if r != out[0][0]]
        out[0].extend(common)
    rest = name[i:]
    if rest:
        for readings in pinyin(rest, style=Style.NORMAL, heteronym=True, errors=lambda s: [c.lower() for c in s]):
            uniq = list(dict.fromkeys(r.lower() for r in readings if r.strip()))
            if uniq:
                out.append(uniq)
    return out


@lru_cache(maxsize=65536)
def name_pinyin_key(name: str) -> str:
    """Issue 3 §1: the primary toneless pinyin of a (simplified) name with surname readings, folded
    (单丽 → shanli, 吕伟 → luwei). A name already written in pinyin is folded as is."""
    if not has_han(name):
        return fold_pinyin(name)
    return fold_pinyin("".join(s[0] for s in _syllables(name)))


def name_pinyin_alternatives(name: str) -> list[str]:
    """Issue 3 §1 heteronyms: every reading combination (capped at ``MAX_ALTERNATIVES``), primary first,
    folded. 单丽 → [shanli, danli, chanli]; 曾伟 → [zengwei, cengwei]."""
    return list(_alternatives(name))


@lru_cache(maxsize=65536)
def _alternatives(name: str) -> tuple[str, ...]:
    if not has_han(name):
        return (fold_pinyin(name),) if name else ()
    combos = itertools.islice(itertools.product(*_syllables(name)), MAX_ALTERNATIVES)
    return tuple(dict.fromkeys(fold_pinyin("".join(c)) for c in combos))


def char_similarity(a: str, b: str) -> float:
    """Issue 3 §1: normalised Levenshtein similarity counted in *characters* (1.0 = identical).
    陈丽 vs 陈莉 → 0.5 (one of two characters differs), not the byte count DuckDB would give."""
    if not isinstance(a, str) or not isinstance(b, str):
        raise TypeError("char_similarity compares str, never bytes")
    return Levenshtein.normalized_similarity(a, b)


def char_distance(a: str, b: str) -> int:
    """Edits in characters (rapidfuzz on str)."""
    if not isinstance(a, str) or not isinstance(b, str):
        raise TypeError("char_distance compares str, never bytes")
    return Levenshtein.distance(a, b)


def resident_id_or_none(raw: str | None) -> str | None:
    """R7.1 via ``kit.identifiers.parse_resident_id`` (NFKC, 15→18, check digit, area, date); an invalid
    number is treated as missing for matching (it cannot prove identity)."""
    if not raw or not str(raw).strip():
        return None
    try:
        return parse_resident_id(str(raw)).number
    except IdentifierError:
        return None


def phone_or_none(raw: str | None) -> str | None:
    """R7.5 via ``kit.identifiers.normalize_phone`` (E.164); unparseable → missing."""
    if not raw or not str(raw).strip():
        return None
    try:
        return normalize_phone(str(raw))
    except IdentifierError:
        return None


def sex_or_none(raw: str | None) -> str | None:
    """R7.2: GB/T 2261.1 code; unknown/unstated (0, 9) is missing for matching."""
    try:
        code = normalize_sex(raw)
    except IdentifierError:
        return None
    return code if code in ("1", "2") else None


_ADDRESS_RE = re.compile(
    r"^(?P<province>[^省]+省|.+?自治区|北京市|天津市|上海市|重庆市)?"
    r"(?P<city>[^市]+?市|.+?自治州|.+?地区|.+?盟)?"
    r"(?P<district>[^区县]+?[区县]|.+?县级市|.+?旗)?"
    r"(?P<street>[^街镇乡]+?(?:街道|镇|乡))?"
    r"(?P<line>.*)$"
)


@dataclass(frozen=True)
class AddressParts:
    province: str | None
    city: str | None
    district: str | None
    street: str | None
    line: str | None


def split_address(raw: str | None) -> AddressParts:
    """Issue 3 §1 address parts: 浙江省沧澜市青溪区文昌街道华庭花园18幢 → province/city/district/street/line
    (simplified, NFKC). Parts that are absent are None."""
    text = clean_name(raw or "").replace(" ", "")
    m = _ADDRESS_RE.match(text)
    assert m is not None  # the pattern matches any string
    parts = {k: (v or None) for k, v in m.groupdict().items()}
    return AddressParts(parts["province"], parts["city"], parts["district"], parts["street"], parts["line"])


_LINE_NOISE = re.compile(r"(号楼|幢|栋|单元|室|号|组|-|—|_|\s)")


def address_key(line: str | None) -> str | None:
    """A comparison key for the house part: 翠湖小区3幢2单元501室 and 翠湖3-2-501 → 翠湖3 2 501 style
    digits kept, separators and 小区/村 words dropped."""
    if not line:
        return None
    t = clean_name(line)
    t = t.replace("小区", "").replace("花园", "").replace("公寓", "").replace("村", "")
    t = _LINE_NOISE.sub("-", t)
    t = re.sub("-+", "-", t).strip("-")
    return t or None


def birth_date_text(value: dt.date | str | None) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.date):
        return value.isoformat()
    try:
        return dt.date.fromisoformat(str(value).strip()).isoformat()
    except ValueError:
        return None
