"""Fellegi–Sunter scoring (issue 3 §2) — pure: features in, match weight out, no database.

``COMPARISONS`` is the single definition of what is compared. Each level has a Python predicate (used
online, on every patient write) and the equivalent SQL condition (used by Splink/DuckDB in batch, see
``splink_model``). The weights are *learned* by Splink and read from its model JSON: for comparison
level k, weight = log2(m_k / u_k); a record pair's match weight is log2(λ / (1 − λ)) + Σ weights, where
λ is the probability that two random records match; probability = 2^w / (1 + 2^w). Null levels weigh 0.
This is exactly Splink's arithmetic (``ComparisonLevel._log2_bayes_factor``), so the online score agrees
with Splink's ``score_pairs`` (tests/identity/test_splink_agreement.py).

Criteria (RULES §7 identifiers; issue 3 §2):
- M1 an exact Chinese-character name match scores above a pinyin-only match: the ``exact`` level comes
  before ``pinyin`` and, trained on data with homophone errors, carries the higher weight; ``score``
  additionally enforces it (``ensure_ordering``) for hand-edited models.
- M2 two records with *different valid* resident IDs are never linked automatically (``decide``).
- M3 outcome by thresholds from the ``mpi`` rule set: ≥ link → link, ≥ review → review, else new.
- M4 scoring is symmetric: every predicate is symmetric in (left, right) (property-tested).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz.distance import Levenshtein

from onetrip.identity import normalize as nz


@dataclass(frozen=True)
class Features:
    """What the matcher compares, already normalised (``features`` builds it)."""

    name: str | None
    pinyin: str | None
    pinyin_alts: tuple[str, ...]
    birth_date: str | None  # ISO
    sex: str | None
    id_number: str | None
    phone: str | None
    district: str | None
    street: str | None
    address_key: str | None

    def as_row(self) -> dict[str, Any]:
        """The column values Splink sees for this record (same names as the SQL below)."""
        return {"name": self.name, "pinyin": self.pinyin, "pinyin_alts": list(self.pinyin_alts),
                "birth_date": self.birth_date, "sex": self.sex, "id_number": self.id_number,
                "phone": self.phone, "district": self.district, "street": self.street,
                "address_key": self.address_key}


def features(*, name: str | None, birth_date=None, sex: str | None = None, id_number: str | None = None,
             phone: str | None = None, district: str | None = None, street: str | None = None,
             address_line: str | None = None) -> Features:
    """Normalise one registration for matching (issue 3 §1)."""
    n = nz.clean_name(name) or None
    return Features(
        name=n,
        pinyin=nz.name_pinyin_key(n) if n else None,
        pinyin_alts=tuple(nz.name_pinyin_alternatives(n)) if n else (),
        birth_date=nz.birth_date_text(birth_date),
        sex=nz.sex_or_none(sex),
        id_number=nz.resident_id_or_none(id_number),
        phone=nz.phone_or_none(phone),
        district=nz.clean_name(district) or None,
        street=nz.clean_name(street) or None,
        address_key=nz.address_key(address_line),
    )


def stored_features(*, name: str, birth_date, sex: str | None, id_number: str | None, phone: str | None,
                    district: str | None, street: str | None, address_line: str | None) -> Features:
    """Features of a row already stored by the platform: its ID number was validated (R7.1, 18
    characters), its phone is E.164 and its name simplified, so only the comparison keys are derived.
    Gives the same result as ``features`` on such values, without re-parsing them (online latency)."""
    return Features(
        name=name or None,
        pinyin=nz.name_pinyin_key(name) if name else None,
        pinyin_alts=tuple(nz.name_pinyin_alternatives(name)) if name else (),
        birth_date=birth_date.isoformat() if birth_date else None,
        sex=sex if sex in ("1", "2") else None,
        id_number=id_number or None,
        phone=phone or None,
        district=nz.clean_name(district) or None,
        street=nz.clean_name(street) or None,
        address_key=nz.address_key(address_line),
    )


def _eq(a, b) -> bool:
    return a is not None and b is not None and a == b


def _lev(a: str | None, b: str | None, k: int) -> bool:
    # Only used on ASCII columns (pinyin, digits, ISO dates), where DuckDB's byte-wise levenshtein and
    # rapidfuzz's character-wise distance are the same number.
    return a is not None and b is not None and Levenshtein.distance(a, b) <= k


def _dm_swap(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a[:4] == b[:4] and a[5:7] == b[8:10] and a[8:10] == b[5:7]


@dataclass(frozen=True)
class Level:
    label: str
    sql: str
    test: Callable[[Features, Features], bool]
    is_null: bool = False


@dataclass(frozen=True)
class Comparison:
    name: str
    levels: tuple[Level, ...]
    description: str = ""


def _null(col: str) -> Level:
    return Level("null", f'"{col}_l" IS NULL OR "{col}_r" IS NULL',
                 lambda a, b: getattr(a, col) is None or getattr(b, col) is None, is_null=True)


def _exact(col: str) -> Level:
    return Level("exact", f'"{col}_l" = "{col}_r"', lambda a, b: _eq(getattr(a, col), getattr(b, col)))


def _else() -> Level:
    return Level("else", "ELSE", lambda a, b: True)


CHAR_DISTANCE_UDF = "onetrip_char_distance"
"""A DuckDB function registered by ``splink_model`` that calls rapidfuzz on str (character edits)."""

COMPARISONS: tuple[Comparison, ...] = (
    Comparison("name", (
        _null("name"),
        _exact("name"),  # M1: characters first
        Level("pinyin", '"pinyin_l" = "pinyin_r"', lambda a, b: _eq(a.pinyin, b.pinyin)),
        Level("pinyin_alternative", 'list_has_any("pinyin_alts_l", "pinyin_alts_r")',
              lambda a, b: bool(set(a.pinyin_alts) & set(b.pinyin_alts))),
        Level("one_character", f'{CHAR_DISTANCE_UDF}("name_l", "name_r") <= 1',
              lambda a, b: a.name is not None and b.name is not None and nz.char_distance(a.name, b.name) <= 1),
        Level("pinyin_close", 'levenshtein("pinyin_l", "pinyin_r") <= 2', lambda a, b: _lev(a.pinyin, b.pinyin, 2)),
        _else(),
    ), "name: characters, pinyin (surname readings, heteronyms), one character, close pinyin"),
    Comparison("birth_date", (
        _null("birth_date"), _exact("birth_date"),
        Level("day_month_swapped", 'substr("birth_date_l", 1, 4) = substr("birth_date_r", 1, 4) AND '
              'substr("birth_date_l", 6, 2) = substr("birth_date_r", 9, 2) AND '
              'substr("birth_date_l", 9, 2) = substr("birth_date_r", 6, 2)',
              lambda a, b: _dm_swap(a.birth_date, b.birth_date)),
        Level("two_digits", 'levenshtein("birth_date_l", "birth_date_r") <= 2',
              lambda a, b: _lev(a.birth_date, b.birth_date, 2)),
        _else(),
    ), "birth date: exact, day/month swapped, up to two digits"),
    Comparison("sex", (_null("sex"), _exact("sex"), _else()), "sex (GB/T 2261.1)"),
    # Only *valid* IDs are compared (an invalid one — a typo caught by the check digit — counts as
    # missing), so two IDs that differ are two people (twins differ by a digit or two): no "close" level.
    Comparison("id_number", (_null("id_number"), _exact("id_number"), _else()), "resident ID (valid): exact"),
    Comparison("phone", (
        _null("phone"), _exact("phone"),
        Level("two_digits", 'levenshtein("phone_l", "phone_r") <= 2', lambda a, b: _lev(a.phone, b.phone, 2)),
        _else(),
    ), "phone (E.164): exact, up to two digits"),
    Comparison("address", (
        Level("null", '("street_l" IS NULL AND "address_key_l" IS NULL) OR '
              '("street_r" IS NULL AND "address_key_r" IS NULL)',
              lambda a, b: (a.street is None and a.address_key is None)
              or (b.street is None and b.address_key is None), is_null=True),
        Level("same_house", '"address_key_l" = "address_key_r"', lambda a, b: _eq(a.address_key, b.address_key)),
        Level("same_street", '"street_l" = "street_r"', lambda a, b: _eq(a.street, b.street)),
        _else(),
    ), "address: same house, same street"),
)


def level_index(comparison: Comparison, a: Features, b: Features) -> int:
    """The first level whose condition holds (Splink's CASE WHEN order)."""
    for i, lv in enumerate(comparison.levels):
        if lv.test(a, b):
            return i
    raise AssertionError("the last level is ELSE")


# --- the model ------------------------------------------------------------------------------------------


def _prob(value) -> float | None:
    if value == "level not observed in training dataset":
        return 1e-6  # Splink's LEVEL_NOT_OBSERVED value
    return None if value is None else float(value)


@dataclass(frozen=True)
class Model:
    """Weights read from a Splink model (settings) JSON: λ and, per comparison, per level log2(m/u)."""

    prior_weight: float
    weights: dict[str, tuple[float, ...]]
    version: str = "default"
    raw: dict = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_splink(cls, settings: dict, version: str = "default") -> Model:
        lam = float(settings["probability_two_random_records_match"])
        by_name = {c["output_column_name"]: c for c in settings["comparisons"]}
        weights: dict[str, tuple[float, ...]] = {}
        for comp in COMPARISONS:
            levels = by_name[comp.name]["comparison_levels"]
            if len(levels) != len(comp.levels):
                raise ValueError(f"model comparison {comp.name!r} has {len(levels)} levels, expected "
                                 f"{len(comp.levels)}")
            ws = []
            for spec, lv in zip(comp.levels, levels, strict=True):
                if lv.get("is_null_level") or spec.is_null:
                    ws.append(0.0)
                    continue
                m, u = _prob(lv.get("m_probability")), _prob(lv.get("u_probability"))
                if m is None or u is None:
                    ws.append(0.0)
                elif u == 0:
                    ws.append(math.inf)
                elif m == 0:
                    ws.append(-math.inf)
                else:
                    ws.append(math.log2(m / u))
            weights[comp.name] = tuple(ws)
        return cls(math.log2(lam / (1 - lam)), weights, version, settings)

    def ensure_ordering(self) -> Model:
        """M1: an exact character match never weighs less than a pinyin-only match."""
        w = list(self.weights["name"])
        for i in range(2, len(w) - 1):  # every non-null, non-exact, non-else level
            w[1] = max(w[1], w[i])
        return Model(self.prior_weight, {**self.weights, "name": tuple(w)}, self.version, self.raw)


@dataclass(frozen=True)
class Score:
    match_weight: float
    match_probability: float
    levels: dict[str, str]  # comparison → level label
    partial: dict[str, float]  # comparison → weight


def probability(match_weight: float) -> float:
    if match_weight == math.inf:
        return 1.0
    if match_weight == -math.inf:
        return 0.0
    odds = 2.0 ** match_weight
    return odds / (1.0 + odds)


def score(model: Model, a: Features, b: Features) -> Score:
    """Fellegi–Sunter match weight of a record pair under ``model`` (M1, M4)."""
    total = model.prior_weight
    levels: dict[str, str] = {}
    partial: dict[str, float] = {}
    for comp in COMPARISONS:
        i = level_index(comp, a, b)
        w = model.weights[comp.name][i]
        levels[comp.name], partial[comp.name] = comp.levels[i].label, w
        total += w
    return Score(total, probability(total), levels, partial)


def id_conflict(a: Features | str | None, b: Features | str | None) -> bool:
    """M2: both sides carry a valid resident ID and the IDs differ."""
    x = a.id_number if isinstance(a, Features) else a
    y = b.id_number if isinstance(b, Features) else b
    return x is not None and y is not None and x != y


LINK, REVIEW, NEW = "link", "review", "new"


def decide(match_weight: float, *, link_threshold: float, review_threshold: float, conflict: bool) -> str:
    """M3 (thresholds from rule set ``mpi``) with M2: a conflict of valid IDs is at most a review."""
    if match_weight >= link_threshold and not conflict:
        return LINK
    if match_weight >= review_threshold:
        return REVIEW
    return NEW


def grade(match_weight: float, *, link_threshold: float, review_threshold: float, possible_threshold: float) -> str | None:
    """FHIR $match grade (http://hl7.org/fhir/StructureDefinition/match-grade): certain ≥ link threshold,
    probable ≥ review threshold, possible ≥ possible threshold, else not returned (None)."""
    if match_weight >= link_threshold:
        return "certain"
    if match_weight >= review_threshold:
        return "probable"
    if match_weight >= possible_threshold:
        return "possible"
    return None
