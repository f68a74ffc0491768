"""The router's per-batch metric tally (processors/metrics.py RoutedTally): what it adds once per batch
is what incrementing per event would (observe_many itself: tests/unit/hub/test_metrics.py)."""

from __future__ import annotations

from processors import metrics


def value(name: str, **labels: str) -> float:
    family = metrics.EVENTS if name == "events" else metrics.DELIVERIES
    return float(family.labels(**labels)._value.get())


def test_tally_adds_its_batch_once_and_starts_again() -> None:
    tally = metrics.RoutedTally(4)
    routed_before = value("events", priority="4", outcome="routed")
    crm_before = value("deliveries", destination="crm")
    latency = metrics.ROUTING_LATENCY.labels("4")
    count_before = sum(b.get() for b in latency._buckets)

    for _ in range(3):
        tally.routed += 1
        tally.latencies.append(0.02)
        tally.delivered("crm")
    tally.delivered("marketing")
    assert value("events", priority="4", outcome="routed") == routed_before  # nothing until the batch ends
    tally.flush()
    assert value("events", priority="4", outcome="routed") == routed_before + 3
    assert value("deliveries", destination="crm") == crm_before + 3
    assert sum(b.get() for b in latency._buckets) == count_before + 3
    tally.flush()  # an empty batch adds nothing
    assert value("events", priority="4", outcome="routed") == routed_before + 3
    assert value("deliveries", destination="crm") == crm_before + 3
