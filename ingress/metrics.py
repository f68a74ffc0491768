"""Ingress metrics (labels carry no personal data)."""

from hub.metrics import BulkNotes, counter, gauge, histogram

REQUESTS = counter("ingress_requests_total", "HTTP requests by route and status", ("route", "status"))
REQUEST_LATENCY = histogram("ingress_request_seconds", "HTTP request latency", ("route",))
EVENTS_ACCEPTED = counter(
    "ingress_events_accepted_total", "Events persisted on events.pN", ("source", "event_type", "priority")
)
EVENTS_REJECTED = counter("ingress_events_rejected_total", "Events refused after validation", ("source", "reason"))
PUBLISH_LATENCY = histogram("ingress_publish_seconds", "Time from produce to broker ack (acks=all)")
# Refreshed every 15 s by ingress.health (for alerts: dead letters > 10, backlog per priority).
PENDING_EVENTS = gauge("pending_events", "Events on events.pN not yet routed (router group lag)", ("priority",))
TRAIL_INDEX_PENDING = gauge(
    "trail_index_pending", "Trail records not indexed yet by the processors (router group lag on the trail topic)"
)
DEAD_LETTER_RECORDS = gauge(
    "dead_letter_records", "Open dead-letter items (pending or edited), as carinho dlq stats counts them"
)

# The per-request counts and latencies above, noted on the event loop and added in bulk (before every
# /metrics scrape and at least every 1,024 notes): hub.metrics.BulkNotes.
NOTES = BulkNotes()
