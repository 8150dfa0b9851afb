"""What other domains may use of maternal and child health.

- The cockpit (analytics): 两癌 screening figures — eligible, screened, 两癌筛查率, positives and positives
  diagnosed within the deadline — summed over the campaigns from ``screening_totals`` (issue 21 point 5).
"""

from __future__ import annotations

from onetrip.maternal_child.screening import totals as screening_totals

__all__: list[str] = ["screening_totals"]
