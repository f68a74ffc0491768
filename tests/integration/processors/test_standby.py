"""Standby copies (CARINHO_STANDBY_REPLICAS, default 1, kept by the changelog follower; real broker): each
of two workers keeps a copy of the other's table partitions, so when one stops the other takes its
partitions over without reading their changelogs again, and its dedupe still knows every event the
stopped worker routed. (Faust's own standby replicas, CARINHO_STANDBY_MODE=faust, fail the first check
at this volume: they hold up to 1,000 records per table before writing any, so after 300 events the
copy had written none; see docs/processors.md.)"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.integration.processors.conftest import Worker, WorkerFactory, make_hub
from tests.integration.processors.helpers import duplicates_dropped, lead, send
from tests.kafka_support import read_topic, wait_until

pytestmark = pytest.mark.integration


def _read(worker: Worker) -> int:
    """Changelog records the worker has read into its tables since start (recovery and standby)."""
    return sum(((worker.health() or {}).get("recovered") or {}).values())


def test_a_worker_takes_over_from_its_warm_standby_copy(
    kafka_bootstrap: str, workers: WorkerFactory, short_topology_file: Path
) -> None:
    topology = make_hub(short_topology_file, kafka_bootstrap)
    a = workers.start(topology, CARINHO_SYNC_ENABLED="false")
    b = workers.start(topology, CARINHO_SYNC_ENABLED="false")
    wait_until(
        lambda: all(
            (w.health() or {}).get("status") == "ok" and (w.health() or {}).get("assigned_partitions", 0) > 0
            for w in (a, b)
        ),
        timeout=60,
        message="both workers balanced",
    )
    time.sleep(3)
    events = [lead("site") for _ in range(300)]
    send(kafka_bootstrap, topology, *events)
    read_topic(kafka_bootstrap, topology.delivery_topic("crm"), expect=len(events), timeout=60)

    seen = [-1]

    def settled() -> bool:  # b's standby copy of a's partitions has read all there is
        now = _read(b)
        done = now == seen[0] and now > 0
        seen[0] = now
        return done

    # Every changelog partition is active on one worker and followed by the other, never both.
    changelog_partitions = (
        topology.priorities[0].partitions
        + topology.system_topics.scheduled.partitions
        + topology.system_topics.trail.partitions
    )
    following = [(w.health() or {}).get("following", 0) for w in (a, b)]
    assert all(f > 0 for f in following) and sum(following) == changelog_partitions, following
    wait_until(settled, timeout=60, interval=2, message="b's standby copy caught up")
    before = _read(b)
    assigned_before = (b.health() or {})["assigned_partitions"]
    # a's share of the 300 events, each one dedupe and one trail-index record: not nothing, so the
    # check below measures something.
    assert before >= 100, before
    assert (b.health() or {}).get("followed", 0) > 0  # written by the follower, not by a recovery
    a.stop()
    wait_until(
        lambda: (h := b.health() or {}).get("status") == "ok" and h.get("assigned_partitions", 0) > assigned_before,
        timeout=60,
        message="b took a's partitions over",
    )
    # Taking over read (almost) nothing: a cold copy would read a's ~150 dedupe and trail records again.
    assert _read(b) - before < 20, (before, _read(b))
    send(kafka_bootstrap, topology, *events)  # all duplicates, half of them first routed by a
    ids = {str(e.event_id) for e in events}
    wait_until(
        lambda: duplicates_dropped(kafka_bootstrap, topology, ids) >= len(events),
        timeout=60,
        message="every duplicate dropped by b",
    )
    b.stop()
