"""The cross-institution access decision, a pure function (RULES §10; issue 2 §6).

Rules, applied in order:
  A1  An operator (admin role, a system client with a ``system/`` scope, the local CLI) may read:
      audited like everyone else.
  A2  A user whose institution holds a record of the person may read (registration = a care relationship).
  A3  An active break-the-glass for this user and person permits (purpose = its reason, e.g. ETREAT), even over a
      recorded refusal — it is an emergency, and it is reviewed afterwards.
  A4  A consent on file decides: deny → deny, permit → permit (consent truth table, RULES §10).
  A5  An active care relationship (encounter, referral, contract, appointment) of the user's institution
      permits.
  A6  Otherwise the default policy (rule table ``access.default_cross_institution``) decides:
      none+deny → deny, none+permit → permit.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AccessFacts:
    principal_org: str | None
    is_operator: bool
    record_orgs: frozenset[str]
    care_orgs: frozenset[str]
    consent: str | None  # "permit" | "deny" | None
    break_glass: str | None  # the active break-the-glass reason code (ETREAT, ...), or None
    default_policy: str  # "permit" | "deny"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    rule: str
    basis: str
    purpose_of_use: str | None = None


def decide(f: AccessFacts) -> Decision:
    if f.is_operator:
        return Decision(True, "A1", "operator")
    if f.principal_org is not None and f.principal_org in f.record_orgs:
        return Decision(True, "A2", "own-institution record")
    if f.break_glass:
        return Decision(True, "A3", "break-the-glass", purpose_of_use=f.break_glass)
    if f.consent == "deny":
        return Decision(False, "A4", "patient consent: deny")
    if f.consent == "permit":
        return Decision(True, "A4", "patient consent: permit")
    if f.principal_org is not None and f.principal_org in f.care_orgs:
        return Decision(True, "A5", "care relationship")
    allowed = f.default_policy == "permit"
    return Decision(allowed, "A6", f"default policy: {f.default_policy}")
