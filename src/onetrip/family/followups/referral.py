"""The referral a follow-up calls for (R3.3: uncontrolled twice running or a complication; R3.4: urgent),
drafted through the referral service (draft_referral, /work/coord/CONTRACTS.md) with the reasons in
Chinese and English."""

from __future__ import annotations

from sqlalchemy.orm import Session

from onetrip.family import rules
from onetrip.family.common import params
from onetrip.family.models import Followup, Registry
from onetrip.kit.errors import ApiError
from onetrip.kit.principal import Principal

REASON_TEXT = {
    "R3.4:sbp": "收缩压≥{sbp} / SBP ≥{sbp}", "R3.4:dbp": "舒张压≥{dbp} / DBP ≥{dbp}",
    "R3.4:glucose_high": "血糖≥{gh} / glucose ≥{gh}", "R3.4:glucose_low": "血糖≤{gl} / glucose ≤{gl}",
    "R3.4:pregnancy_bp": "妊娠/哺乳期血压升高 / raised BP in pregnancy or lactation",
}


def draft_referral_for(session: Session, principal: Principal, reg: Registry, fu: Followup,
                       cls: rules.Classification) -> str | None:
    """Draft the referral R3.3/R3.4 calls for (contract in CONTRACTS.md). Returns its id, or None when the
    referral service refuses (e.g. no hospital above this institution) — the follow-up stands."""
    try:
        from onetrip.referral.interface import draft_referral
    except ImportError:  # the referral capability is not installed
        return None
    p = params(session, fu.visit_date)
    reasons = [REASON_TEXT.get(r, r.replace("R3.4:symptom:", "症状 / symptom: ")).format(
        sbp=int(p.urgent_sbp), dbp=int(p.urgent_dbp), gh=p.urgent_glucose_high, gl=p.urgent_glucose_low)
        for r in cls.urgent_reasons]
    measured = f"BP {fu.sbp:.0f}/{fu.dbp:.0f} mmHg" if fu.sbp is not None else ""
    if fu.fasting_glucose is not None:
        measured += f" FPG {fu.fasting_glucose} mmol/L"
    if cls.code == rules.URGENT:
        reason = f"慢病随访紧急转诊（R3.4）/ urgent referral from chronic follow-up (R3.4): {'; '.join(reasons)}. {measured}"
    elif cls.code == rules.COMPLICATION:
        reason = f"出现新的并发症或原有并发症加重（R3.3）/ new or worse complication (R3.3). {measured}"
    else:
        reason = (f"连续 {cls.consecutive_uncontrolled} 次随访控制不满意（R3.3）/ {cls.consecutive_uncontrolled} "
                  f"consecutive uncontrolled follow-ups (R3.3). {measured}")
    sender = principal
    if principal.organization_id is None:  # an operator acting for the team's institution
        from dataclasses import replace

        sender = replace(principal, organization_id=reg.organization_id)
    try:
        with session.begin_nested():
            ref = draft_referral(session, sender, person_id=reg.person_id, direction="up", to_organization_id=None,
                                 reason=reason.strip()[:2000], criteria_codes=["U1" if cls.code == rules.URGENT else "U2"],
                                 source="chronic-followup", urgent=cls.code == rules.URGENT)
    except ApiError:
        return None
    return ref.id
