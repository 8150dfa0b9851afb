"""Small shared pieces used by every domain."""
