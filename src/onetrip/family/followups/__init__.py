"""Chronic-disease registries (专案管理: hypertension, diabetes) and their follow-ups (随访, RULES R3):
``service`` enrols, records and classifies follow-ups; ``referral`` drafts the referral R3.3/R3.4 call
for; ``previsit`` is what the doctor sees when the patient checks in."""
