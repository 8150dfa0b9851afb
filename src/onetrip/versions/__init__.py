"""FHIR version history (spine): every create/update/delete of a FHIR-exposed row stores the JSON it produced."""
