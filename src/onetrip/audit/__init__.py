"""Append-only, hash-chained audit trail shaped like IHE BALP AuditEvents."""
