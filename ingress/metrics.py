"""Ingress metrics (labels carry no personal data)."""

from hub.metrics import counter, histogram

REQUESTS = counter("ingress_requests_total", "HTTP requests by route and status", ("route", "status"))
REQUEST_LATENCY = histogram("ingress_request_seconds", "HTTP request latency", ("route",))
EVENTS_ACCEPTED = counter(
    "ingress_events_accepted_total", "Events persisted on events.pN", ("source", "event_type", "priority")
)
EVENTS_REJECTED = counter("ingress_events_rejected_total", "Events refused after validation", ("source", "reason"))
PUBLISH_LATENCY = histogram("ingress_publish_seconds", "Time from produce to broker ack (acks=all)")
