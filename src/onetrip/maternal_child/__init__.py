"""Maternal and child health (妇幼, issue 21): pregnancy care with five-colour risk grading, child health 0–6 with
the WHO growth standards, 两癌 screening. RULES §11."""
