"""The ``onetrip`` command line (Typer + Rich)."""
