"""The router's metric notes (processors.metrics.NOTES, a hub.metrics.BulkNotes): what a routed batch
noted is added once the batch ends (processors/app.py flushes them), as incrementing per event would
(observe_many itself: tests/unit/hub/test_metrics.py)."""

from __future__ import annotations

from processors import metrics


def value(name: str, **labels: str) -> float:
    family = metrics.EVENTS if name == "events" else metrics.DELIVERIES
    return float(family.labels(**labels)._value.get())


def test_a_batchs_notes_are_added_once_and_start_again() -> None:
    notes = metrics.NOTES
    notes.flush()  # what other tests noted
    routed = metrics.EVENTS.labels("4", "routed")
    latency = metrics.ROUTING_LATENCY.labels("4")
    crm, marketing = metrics.DELIVERIES.labels("crm"), metrics.DELIVERIES.labels("marketing")
    routed_before = value("events", priority="4", outcome="routed")
    crm_before = value("deliveries", destination="crm")
    count_before = sum(b.get() for b in latency._buckets)

    for _ in range(3):
        notes.inc(routed)
        notes.observe(latency, 0.02)
        notes.inc(crm)
    notes.inc(marketing)
    assert value("events", priority="4", outcome="routed") == routed_before  # nothing until the batch ends
    notes.flush()
    assert value("events", priority="4", outcome="routed") == routed_before + 3
    assert value("deliveries", destination="crm") == crm_before + 3
    assert sum(b.get() for b in latency._buckets) == count_before + 3
    notes.flush()  # an empty batch adds nothing
    assert value("events", priority="4", outcome="routed") == routed_before + 3
    assert value("deliveries", destination="crm") == crm_before + 3
