"""HTTP plumbing shared by the REST API, the FHIR facade and the web UI."""
