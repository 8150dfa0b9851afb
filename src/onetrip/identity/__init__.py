"""Persons (residents) and per-institution patient records — the split the master patient index builds on."""
