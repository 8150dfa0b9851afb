"""Institutions (medical communities, hospitals, centres, stations), departments, practitioners, users
and system clients."""
