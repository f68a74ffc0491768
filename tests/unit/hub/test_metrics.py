"""hub/metrics.py: observations added in bulk (observe_many, BulkNotes) expose what one call each would."""

from __future__ import annotations

import random

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram

from hub.metrics import BulkNotes, observe_many


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in registry.collect()
        for s in family.samples
        if not s.name.endswith("_created")
    }


def same_exposition(got: CollectorRegistry, want: CollectorRegistry) -> None:
    a, b = samples(got), samples(want)
    for key in [k for k in b if k[0].endswith("_sum")]:
        assert a.pop(key) == pytest.approx(b.pop(key), rel=1e-12)  # summed in another order
    assert a == b


_rng = random.Random(7)
VALUES = [_rng.choice([0.0, 0.005, 0.0051, 0.25, 7.5, 1e6]) * _rng.random() for _ in range(500)]
VALUES += [0.005, 0.01, 10.0, 0.0]  # exactly on bucket bounds: `le` includes the bound


def test_observe_many_exposes_what_observe_does() -> None:
    one, many = CollectorRegistry(), CollectorRegistry()
    by_one = Histogram("lat", "x", ("priority",), registry=one).labels("1")
    by_many = Histogram("lat", "x", ("priority",), registry=many).labels("1")
    for value in VALUES:
        by_one.observe(value)
    observe_many(by_many, VALUES[:100])
    observe_many(by_many, VALUES[100:])
    same_exposition(many, one)
    assert samples(one)[("lat_count", (("priority", "1"),))] == len(VALUES)


def test_notes_reach_the_metrics_when_flushed_and_when_enough_wait() -> None:
    direct, noted = CollectorRegistry(), CollectorRegistry()
    d_req = Counter("req", "x", ("status",), registry=direct)
    d_lat = Histogram("lat", "x", registry=direct)
    n_req = Counter("req", "x", ("status",), registry=noted)
    n_lat = Histogram("lat", "x", registry=noted)
    notes = BulkNotes(limit=100)
    for i, value in enumerate(VALUES[:60]):
        status = "202" if i % 3 else "422"
        d_req.labels(status).inc(2)
        d_lat.observe(value)
        notes.inc(n_req.labels(status), 2)
        notes.observe(n_lat, value)
    # 120 notes with a limit of 100: the first 100 were added on their own, 20 wait
    assert noted.get_sample_value("lat_count") == 50
    notes.flush()
    same_exposition(noted, direct)
    notes.flush()  # nothing waits: adds nothing
    same_exposition(noted, direct)


def test_render_adds_what_the_ingress_noted() -> None:
    from hub.metrics import render
    from ingress.metrics import NOTES, PUBLISH_LATENCY

    def count() -> float:
        text = render()[0].decode()
        line = next(x for x in text.splitlines() if x.startswith("carinho_ingress_publish_seconds_count"))
        return float(line.split()[-1])

    before = count()
    for _ in range(3):
        NOTES.observe(PUBLISH_LATENCY, 0.004)
    assert count() == before + 3
