"""FHIR R4 facade at /fhir/R4."""
