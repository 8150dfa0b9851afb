"""Transactional outbox: every state change writes an event in the same transaction."""
