"""Childhood immunisation (国家免疫规划, issue 20): the schedule as a versioned rule table, the forecaster and the
FHIR ImmDS operation ``$immds-forecast`` (docs/immunization.md)."""
