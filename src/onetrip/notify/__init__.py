"""Outgoing notifications (issue 6 §6): webhooks and FHIR R4 Subscriptions (rest-hook) fed from the outbox,
delivered at least once with retries, back-off and a delivery log. See docs/notifications.md."""
