"""Pure rules over plain data for shared results (RULES §1). No database, no clock: callers pass values.

- R1.4 recognition mark: a result carrying the national mark "HR" or a region-prefixed mark ("浙HR").
- R1.6 validity window: per-item days from the ``records`` rule table; keys ``validity_days.<code>``
  (an item's own standard or local code) override ``validity_days.<section>`` (chemistry, haematology,
  CT, MR, XR, US). No window known → not offered as valid.
"""

from __future__ import annotations

import datetime as dt

# DiagnosticReport.category codes (HL7 v2 table 0074, plus the DICOM modality spellings senders use)
# → (category, section). The section is what the validity window depends on.
CATEGORY_CODES: dict[str, tuple[str, str | None]] = {
    "LAB": ("lab", None), "CH": ("lab", "chemistry"), "HM": ("lab", "haematology"),
    "RAD": ("imaging", None), "CT": ("imaging", "CT"), "NMR": ("imaging", "MR"), "MR": ("imaging", "MR"),
    "MRI": ("imaging", "MR"), "RX": ("imaging", "XR"), "XR": ("imaging", "XR"), "DX": ("imaging", "XR"),
    "CR": ("imaging", "XR"), "RUS": ("ultrasound", "US"), "US": ("ultrasound", "US"),
}
MODALITY_SECTION = {"CT": "CT", "MR": "MR", "DX": "XR", "CR": "XR", "DR": "XR", "RF": "XR", "US": "US"}


def classify(codes: list[str]) -> tuple[str, str | None]:
    """(category, section) from a report's category codes; the most specific code wins."""
    best: tuple[str, str | None] = ("other", None)
    for c in codes:
        found = CATEGORY_CODES.get(c.upper())
        if found and (best[0] == "other" or (best[1] is None and found[1] is not None)):
            best = found
    return best


def is_recognition_mark(mark: str | None) -> bool:
    """R1.4: "HR" or a one-character regional prefix + "HR" (e.g. "浙HR")."""
    return bool(mark) and mark.endswith("HR") and len(mark) <= 4


def validity_days(windows: dict[str, object], codes: list[str | None], section: str | None) -> int | None:
    """R1.6: the window for an item — its own code first, then its section; None when unknown."""
    for key in [*(c for c in codes if c), section]:
        if key and f"validity_days.{key}" in windows:
            return int(windows[f"validity_days.{key}"])  # type: ignore[arg-type]
    return None


def within_window(effective_at: dt.datetime, days: int | None, now: dt.datetime) -> bool:
    """R1.6: still recognisable when fewer than ``days`` have passed since the result was taken."""
    return days is not None and now - effective_at <= dt.timedelta(days=days)
