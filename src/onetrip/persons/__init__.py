"""Persons and their patient records: the spine's person key (see models.py)."""
