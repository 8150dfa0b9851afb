"""Rule tables: numbers from RULES.md as seeded, versioned rows an operator can change (DEVELOPERS §6)."""
