"""Prometheus metrics of the processors (hub.metrics registry, served on /metrics)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from hub.metrics import BulkNotes, counter, gauge, histogram

if TYPE_CHECKING:
    from processors.syncs.watermarks import SyncState

EVENTS = counter("processor_events_total", "Events handled by outcome", ("priority", "outcome"))
DELIVERIES = counter("processor_deliveries_total", "Delivery records emitted", ("destination",))
DEAD_LETTERS = counter("processor_dead_letters_total", "Records sent to the dead-letter topic", ("reason",))
ROUTING_LATENCY = histogram(
    "processor_routing_seconds", "From the record's Kafka timestamp to its deliveries being emitted", ("priority",)
)
DISPATCH_LATENCY = histogram(
    "processor_dispatch_seconds",
    "From the Kafka timestamp of a batch's first record to the router taking the batch (fetch + wait)",
    ("priority",),
)
PENDING = gauge("processor_priority_pending", "Events buffered per priority level", ("priority",))
PREEMPTIONS = counter(
    "processor_priority_preemptions_total",
    "Batches of a level that gave their rest back because a more urgent event arrived",
    ("priority",),
)
SCHEDULED_PENDING = gauge("processor_scheduled_pending", "Delayed messages waiting in this worker")
SCHEDULED_RELEASED = counter("processor_scheduled_released_total", "Delayed messages released when due")
TRAIL_INDEXED = counter("processor_trail_hops_indexed_total", "Trail hops added to the trail index")
FOLLOWED = counter(
    "processor_changelog_followed_total",
    "Changelog records of partitions not active here written to this worker's tables (its warm copies)",
)
TRAIL_PENDING = gauge("processor_trail_pending", "Trail records fetched and waiting for the trail indexer")
PRODUCE_ERRORS = counter("processor_produce_errors_total", "Records the producer failed to write", ("topic",))
SYNC_RUNS = counter("sync_runs_total", "Scheduled sync runs by outcome", ("sync", "outcome"))
SYNC_ITEMS = counter("sync_items_total", "Items pulled from source change feeds", ("sync",))
SYNC_FAILURES = gauge("sync_consecutive_failures", "Consecutive failed runs of a sync", ("sync",))
SYNC_LAST_SUCCESS = gauge("sync_last_success_timestamp_seconds", "Unix time of the last successful run", ("sync",))
OFFSET_HOLES = counter(
    "processor_offset_holes_total",
    "Records lost inside the worker before routing, found by the offset guard and read again",
    ("topic",),
)

# The reasons the processors dead-letter with (processors/routing.py InvalidRecord, processors/app.py
# _failed): their children exist from the start (see precreate). tests/unit/processors check the list.
DEAD_LETTER_REASONS = (
    "empty_record",
    "too_large",
    "not_json",
    "invalid_envelope",
    "unknown_event_type",
    "source_not_allowed",
    "invalid_data",
    "transform_failed",
    "processing_error",
    "invalid_scheduled_message",
)


def precreate(guarded_topics: Iterable[str]) -> None:
    """Export the counters' known children at 0 from the start: a child created at its first increment
    is first scraped at 1, and increase()/rate() see no rise (the first offset hole would never alert)."""
    for topic in guarded_topics:  # the full topic names (namespace included), as _read_hole labels them
        OFFSET_HOLES.labels(topic)
    for reason in DEAD_LETTER_REASONS:
        DEAD_LETTERS.labels(reason)


def export_sync_state(state: SyncState) -> None:
    """The sync gauges from a sync's recorded state (the compacted sync.state topic): every worker
    exports the same values whoever ran the sync, and again after a restart."""
    SYNC_FAILURES.labels(state.sync).set(state.consecutive_failures)
    if state.last_success_at is not None:
        SYNC_LAST_SUCCESS.labels(state.sync).set(state.last_success_at.timestamp())


def export_sync_states(states: Mapping[str, SyncState], names: Iterable[str]) -> None:
    """export_sync_state for the syncs `names` (the topology's and the daily report): a sync removed
    from topics.yaml keeps its record on the compacted topic but must not keep an alert firing."""
    for name in names:
        state = states.get(name)
        if state is not None:
            export_sync_state(state)


# The router's per-event counts and latencies (EVENTS routed, ROUTING_LATENCY, DELIVERIES), noted as
# plain Python and added when each routed batch ends (processors/app.py), before a scrape and at least
# every 1,024 notes: hub.metrics.BulkNotes. Per event they were ~6 % of the worker's samples
# (docs/benchmarks.md, twentieth session).
NOTES = BulkNotes()
