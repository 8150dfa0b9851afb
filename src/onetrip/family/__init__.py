"""Family doctors and 两慢病 (hypertension and type 2 diabetes management): docs/family.md."""
