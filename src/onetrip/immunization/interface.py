"""What other layers may use of immunization — its named service interface.

- HL7 v2 interop: VXU^V04 (interop/hl7v2/vxu.py) checks doses given elsewhere with ``validate_history`` and stores
  them through ``record_history``; the vaccine codes it accepts are ``VACCINES`` and the CVX map ``CVX_TO_NIP``.
- The cockpit (analytics): 及时 / 累计接种率 per dose × township × birth cohort from ``coverage`` (one query), and
  the district totals from ``coverage_totals``.
"""

from __future__ import annotations

from onetrip.immunization.codes import CVX_TO_NIP, VACCINES
from onetrip.immunization.coverage import totals as coverage_totals
from onetrip.immunization.coverage_service import CoverageResult, coverage
from onetrip.immunization.history import HistoryDose
from onetrip.immunization.history import record as record_history
from onetrip.immunization.history import validate as validate_history

__all__ = ["CVX_TO_NIP", "VACCINES", "CoverageResult", "HistoryDose", "coverage", "coverage_totals",
           "record_history", "validate_history"]
