"""Who may read whose data across institutions: care relationships, consent, break-the-glass."""
