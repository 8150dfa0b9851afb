"""What other domains may use of maternal and child health.

- The cockpit (analytics): 两癌 screening figures — eligible, screened, 两癌筛查率, positives and positives
  diagnosed within the deadline — summed over the campaigns from ``screening_totals`` (issue 21 point 5);
  every maternal and child figure of a period (早孕建册率, 产前检查率, 产后访视率, the child management rates,
  两癌) with numerators and denominators from ``mch_figures`` (issue 21 point 6).
"""

from __future__ import annotations

from onetrip.maternal_child.figures import PERIOD as FIGURES_PERIOD
from onetrip.maternal_child.figures import mch_figures
from onetrip.maternal_child.screening import totals as screening_totals

__all__: list[str] = ["FIGURES_PERIOD", "mch_figures", "screening_totals"]
