"""Prometheus helpers shared by the services. Metric names are prefixed `carinho_`; labels never
carry personal data (only source, event type, destination, status, priority)."""

from __future__ import annotations

import bisect
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)

# Latency buckets from 1 ms to 30 s: ingress answers in ms, deliveries in 10s of ms to seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
    return Counter(f"carinho_{name}", doc, labels, registry=REGISTRY)


def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
    return Gauge(f"carinho_{name}", doc, labels, registry=REGISTRY)


def histogram(
    name: str, doc: str, labels: tuple[str, ...] = (), buckets: tuple[float, ...] = LATENCY_BUCKETS
) -> Histogram:
    return Histogram(f"carinho_{name}", doc, labels, buckets=buckets, registry=REGISTRY)


def render() -> tuple[bytes, str]:
    """Body and content type for a /metrics endpoint (what hot paths noted is added first)."""
    flush_notes()
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


class BulkNotes:
    """Counter increments and histogram observations noted as plain Python on a hot path and added to
    their prometheus_client children in bulk: once `limit` notes wait, and before every exposition
    (`render`, `flush_notes`), so a scrape sees all of them. Why: a child's `inc` takes a lock (~0.7
    µs) and a histogram's `observe` also walks its buckets in Python (~1.4 µs); a note costs ~0.3 µs,
    its share of the bulk add included (timeit commands in docs/benchmarks.md, twentieth session).
    For the thread of one event loop (the ingress's), like the code that notes."""

    def __init__(self, limit: int = 1024):
        self._limit = limit
        self._waiting = 0
        self._counts: dict[Any, float] = {}  # counter child -> increments waiting
        self._values: dict[Any, list[float]] = {}  # histogram (child) -> observations waiting
        _NOTES.append(self)

    def inc(self, child: Any, amount: float = 1) -> None:
        self._counts[child] = self._counts.get(child, 0) + amount
        self._waiting += 1
        if self._waiting >= self._limit:
            self.flush()

    def observe(self, child: Any, value: float) -> None:
        values = self._values.get(child)
        if values is None:
            self._values[child] = [value]
        else:
            values.append(value)
        self._waiting += 1
        if self._waiting >= self._limit:
            self.flush()

    def flush(self) -> None:
        counts, self._counts = self._counts, {}
        values, self._values = self._values, {}
        self._waiting = 0
        for child, amount in counts.items():
            child.inc(amount)
        for child, observed in values.items():
            observe_many(child, observed)


_NOTES: list[BulkNotes] = []


def flush_notes() -> None:
    """Add every `BulkNotes`' waiting notes to the metrics (before reading them in-process)."""
    for notes in _NOTES:
        notes.flush()


def observe_many(child: Any, values: list[float]) -> None:
    """`child.observe(v)` for every v, with one increment per bucket touched: a bucket's count grows
    for the values up to its upper bound (prometheus_client keeps non-cumulative counts per bucket and
    adds them up on collect; tests/unit/hub/test_metrics.py checks the exposition equals observe's)."""
    bounds = child._upper_bounds
    counts: dict[int, int] = {}
    for value in values:
        index = bisect.bisect_left(bounds, value)
        counts[index] = counts.get(index, 0) + 1
    child._sum.inc(sum(values))
    buckets = child._buckets
    for index, count in counts.items():
        buckets[index].inc(count)
