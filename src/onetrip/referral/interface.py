"""What other capability domains may use of referral (双向转诊) — its named service interface.

family drafts an urgent referral when a reading or a follow-up needs one; nothing else of referral is imported
by a sibling (pyproject.toml, contract "domains").
"""

from __future__ import annotations

from onetrip.referral.service import draft_referral

__all__ = ["draft_referral"]
