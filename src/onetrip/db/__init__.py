"""Storage: one declarative base, engines for SQLite and PostgreSQL, migrations and seeds."""
