"""The router's per-batch metric tally (processors/metrics.py RoutedTally): the same exposition as
incrementing and observing per event."""

from __future__ import annotations

import random

import pytest
from prometheus_client import CollectorRegistry, Histogram

from processors import metrics


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in registry.collect()
        for s in family.samples
        if not s.name.endswith("_created")
    }


def test_observe_many_exposes_what_observe_does() -> None:
    rng = random.Random(7)
    values = [rng.choice([0.0, 0.005, 0.0051, 0.25, 7.5, 1e6]) * rng.random() for _ in range(500)]
    values += [0.005, 0.01, 10.0, 0.0]  # exactly on bucket bounds: `le` includes the bound
    one, many = CollectorRegistry(), CollectorRegistry()
    by_one = Histogram("lat", "x", ("priority",), registry=one).labels("1")
    by_many = Histogram("lat", "x", ("priority",), registry=many).labels("1")
    for value in values:
        by_one.observe(value)
    metrics.observe_many(by_many, values[:100])
    metrics.observe_many(by_many, values[100:])
    got, want = samples(many), samples(one)
    key = ("lat_sum", (("priority", "1"),))
    assert got.pop(key) == pytest.approx(want.pop(key), rel=1e-12)  # summed in another order
    assert got == want
    assert samples(one)[("lat_count", (("priority", "1"),))] == len(values)


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
