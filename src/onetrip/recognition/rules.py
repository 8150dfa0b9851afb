"""Pure recognition (互认) rules over plain data (RULES §1). No database, no clock: callers pass values.

- R1.1 the physician's conclusion is not recognised by itself: a lab report must carry result data.
- R1.3 reason codes 01–08 justify a repeat; 98/99 are not counted as non-recognition; 99 needs a disease.
- R1.4 the issuer must carry the HR mark (national or region-prefixed) and be in good quality-control standing.
- R1.5 tiering: same grade recognise each other, lower grades accept higher, and all members of one medical
  community recognise each other's imaging (imaging includes ultrasound, R1.1).
- R1.6 within the item's validity window (catalogue days, else the records rule table), and within the
  item's scope: ``community`` (only members of the ordering institution's medical community), ``city`` or
  ``province`` (every member institution of this platform — one deployment serves one district, which lies
  in one city and one province).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from onetrip.records.interface import is_recognition_mark, within_window

IMAGING_CATEGORIES = frozenset({"imaging", "ultrasound"})


@dataclass(frozen=True)
class OrderItem:
    local_code: str
    standard_code: str | None
    category: str
    window_days: int | None


@dataclass(frozen=True)
class Issuer:
    grade: str | None
    community_id: str | None
    qc_passed: bool = True


@dataclass(frozen=True)
class PriorResult:
    id: str
    code: str | None
    code_local: str | None
    category: str
    effective_at: dt.datetime
    mark: str | None
    has_data: bool
    issuer: Issuer


def same_item(item: OrderItem, code: str | None, code_local: str | None, mapping: dict[str, str]) -> bool:
    """R1.2 (same or equivalent item): equal standard code, equal local code, or a local code the catalogue
    maps to the order's standard code."""
    if item.standard_code and (code == item.standard_code or mapping.get(code_local or "") == item.standard_code):
        return True
    return bool(code_local) and code_local == item.local_code


def grade_level(grade: str | None) -> int:
    """三级 3 > 二级 2 > 一级 1 > ungraded 0 (the sub-grade letter does not change the tier)."""
    return int(grade[0]) if grade and grade[0].isdigit() else 0


def tier_allows(orderer: Issuer, issuer: Issuer, category: str) -> bool:
    """R1.5: same community + imaging → yes; otherwise the issuer's grade must be ≥ the orderer's."""
    if category in IMAGING_CATEGORIES and orderer.community_id and orderer.community_id == issuer.community_id:
        return True
    return grade_level(issuer.grade) >= grade_level(orderer.grade)


def issuer_eligible(mark: str | None, issuer: Issuer) -> bool:
    """R1.4: the result carries the HR mark and the issuer is in quality-control standing."""
    return is_recognition_mark(mark) and issuer.qc_passed


def carries_data(category: str, has_data: bool) -> bool:
    """R1.1: a conclusion alone is not recognised — lab reports need result values; imaging reports stand
    for the images/data of the study."""
    return category in IMAGING_CATEGORIES or has_data


SCOPES = ("community", "city", "province")


def scope_allows(scope: str | None, orderer: Issuer, issuer: Issuer) -> bool:
    """R1.6 scope: ``community`` → the issuer must belong to the orderer's medical community; ``city`` and
    ``province`` → any member institution (the platform covers one district). An unknown scope is treated as
    the narrowest, ``community``."""
    if scope in ("city", "province"):
        return True
    return bool(orderer.community_id) and orderer.community_id == issuer.community_id


def failures(item: OrderItem, orderer: Issuer, prior: PriorResult, mapping: dict[str, str],
             window_days: int | None, now: dt.datetime, scope: str | None = "province") -> list[str]:
    """Why a prior is not recognisable for this order ([] → recognisable). Codes: item (R1.2), data (R1.1),
    window (R1.6), scope (R1.6), mark (R1.4), tier (R1.5)."""
    out = []
    if not same_item(item, prior.code, prior.code_local, mapping):
        out.append("item")
    if not carries_data(prior.category, prior.has_data):
        out.append("data")
    if not within_window(prior.effective_at, window_days, now):
        out.append("window")
    if not scope_allows(scope, orderer, prior.issuer):
        out.append("scope")
    if not issuer_eligible(prior.mark, prior.issuer):
        out.append("mark")
    if not tier_allows(orderer, prior.issuer, item.category):
        out.append("tier")
    return out


def override_error(reason_code: str | None, reasons: dict[str, bool], disease: str | None) -> str | None:
    """R1.3: a repeat needs a known reason code (``reasons``: code → needs a disease name); 99 needs the
    disease. Returns the problem, or None when the override is valid."""
    if not reason_code or reason_code not in reasons:
        return "reason"
    if reasons[reason_code] and not (disease and disease.strip()):
        return "disease"
    return None
