"""OneTrip — the county medical-community platform (医共体): data travels, not the patient."""

__version__ = "0.1.0"
