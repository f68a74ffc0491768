"""Prometheus metrics of the connectors (labels: destination, outcome, result, tier, reason only)."""

from __future__ import annotations

from hub.metrics import counter, gauge, histogram

ATTEMPTS = counter("connector_attempts_total", "HTTP attempts by result", ("destination", "result"))
OUTCOMES = counter(
    "connector_outcomes_total",
    "Final outcome per attempt (delivered, retry, dead_letter, fallback, skipped_duplicate)",
    ("destination", "outcome"),
)
RETRIES = counter("connector_retries_scheduled_total", "Records moved to a retry tier", ("destination", "tier"))
DEAD_LETTERS = counter("connector_dead_letters_total", "Records dead-lettered", ("destination", "reason"))
LATENCY = histogram("connector_attempt_latency_seconds", "HTTP attempt latency", ("destination",))
BREAKER_STATE = gauge("connector_breaker_state", "0 closed, 1 half-open, 2 open", ("destination",))
BREAKER_OPENED = counter("connector_breaker_opened_total", "Times the breaker opened", ("destination",))
IN_FLIGHT = gauge("connector_in_flight", "Records consumed and not yet durable", ("destination",))
PAUSED = gauge("connector_paused_partitions", "Partitions currently paused", ("destination",))
TIMEOUT = gauge("connector_timeout_seconds", "Current adaptive request timeout", ("destination",))

# Dead-letter reasons that do not depend on the destination's answer (delivery_loop.py); a permanent
# failure's reason (http_<status>, zapi_disconnected...) is open-ended and created at its first use.
DEAD_LETTER_REASONS = ("retries_exhausted", "invalid_record", "connector_error")


def precreate(destination: str, tiers: int) -> None:
    """Export a destination's counter children at 0 from its start: a child created at its first
    increment is first scraped at 1, and increase()/rate() miss that first dead letter/retry/opening."""
    for reason in DEAD_LETTER_REASONS:
        DEAD_LETTERS.labels(destination, reason)
    for tier in range(1, tiers + 1):  # the label is str(tier), as _retry writes it
        RETRIES.labels(destination, str(tier))
    BREAKER_OPENED.labels(destination)
