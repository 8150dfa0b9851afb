"""What other capability domains may use of records — its named service interface.

Siblings (recognition, referral, family) import this module and nothing else of records; the import contract in
pyproject.toml ("domains") enforces it. The models exported here are for reading (joins in figures and checks);
results are stored only through records' own service functions.
"""

from __future__ import annotations

from onetrip.records.fhir import fhir_results
from onetrip.records.models import DiagnosticReport, ImagingStudy, Observation, ServiceRequest
from onetrip.records.rules import is_recognition_mark, validity_days, within_window
from onetrip.records.service import timeline, trend

__all__ = ["DiagnosticReport", "ImagingStudy", "Observation", "ServiceRequest", "fhir_results", "is_recognition_mark",
           "timeline", "trend", "validity_days", "within_window"]
