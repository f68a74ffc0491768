"""Faults under routing load. A processors worker SIGKILLed mid-load (another takes over), or one broker
of a 3-node cluster SIGKILLed under a running worker: every event is routed to every destination of
its route, and an event routed twice (not committed before the fault) carries the same delivery id
both times, so the connectors send it under the same Idempotency-Key — nothing lost, nothing
delivered under a new identity."""

from __future__ import annotations

import signal
from collections import defaultdict
from pathlib import Path

import pytest

from hub.admin import apply_topics
from hub.envelope import EventEnvelope
from hub.topology import Topology, load_topology
from tests.integration.processors.conftest import (  # noqa: F401 - fixtures used by name
    FakeSources,
    WorkerFactory,
    fake_sources,
    make_hub,
    short_topology_file,
    warm_up_group_coordinator,
    workers,
)
from tests.integration.processors.helpers import deliveries, lead, send
from tests.kafka_support import LocalKafka, topic_size, unique, wait_until

pytestmark = pytest.mark.chaos

TOTAL = 2000
ROUTE = ("crm", "marketing", "whatsapp")  # lead.created: CRM, Marketing and the auto-reply


def test_sigkill_mid_routing_loses_nothing(kafka_bootstrap: str, workers: WorkerFactory,  # noqa: F811
                                           short_topology_file: Path) -> None:  # noqa: F811
    topology = make_hub(short_topology_file, kafka_bootstrap)
    events = [lead("site") for _ in range(TOTAL)]
    # Duplicates of some events, sent before the kill: they must be dropped, before or after it.
    send(kafka_bootstrap, topology, *events, *events[:100])

    first = workers.start(topology, CARINHO_SYNC_ENABLED="false", CARINHO_COMMIT_INTERVAL="2")
    wait_until(lambda: topic_size(kafka_bootstrap, topology.delivery_topic("crm")) >= TOTAL // 4, timeout=120,
               message="a quarter routed", interval=0.2)
    first.stop(signal.SIGKILL)
    routed_at_kill = topic_size(kafka_bootstrap, topology.delivery_topic("crm"))
    assert routed_at_kill < TOTAL, "routing finished before the kill; nothing was tested"

    second = workers.start(topology, CARINHO_SYNC_ENABLED="false")
    try:
        for destination in ROUTE:
            try:
                wait_until(lambda d=destination: len({str(r.event_id) for r in deliveries(
                    kafka_bootstrap, topology, d, timeout=5)}) >= TOTAL, timeout=180,
                    message=f"every event routed to {destination} after the restart", interval=1)
            except AssertionError as exc:  # say whether the worker stalled, lost records or is slow
                raise AssertionError(f"{exc}; worker health: {second.health()}") from None
    finally:
        second.stop()

    assert_routed_once_per_identity(kafka_bootstrap, topology, events)


def test_broker_killed_mid_routing_loses_nothing(kafka_cluster: LocalKafka, short_topology_file: Path,  # noqa: F811
                                                 fake_sources: FakeSources, tmp_path: Path) -> None:  # noqa: F811
    bootstrap = kafka_cluster.bootstrap
    warm_up_group_coordinator(bootstrap)
    topology = load_topology(short_topology_file).with_namespace(unique("pc"))
    assert not apply_topics(topology, "cluster3", bootstrap).problems
    factory = WorkerFactory(bootstrap, short_topology_file, tmp_path, fake_sources.url)
    events = [lead("site") for _ in range(TOTAL)]
    send(bootstrap, topology, *events)

    factory.start(topology, CARINHO_SYNC_ENABLED="false", CARINHO_CLUSTER_PROFILE="cluster3")
    try:
        wait_until(lambda: topic_size(bootstrap, topology.delivery_topic("crm")) >= TOTAL // 4, timeout=120,
                   message="a quarter routed", interval=0.2)
        kafka_cluster.kill_node(2)  # leaders on it move; min.insync.replicas=2 still holds
        try:
            assert topic_size(bootstrap, topology.delivery_topic("crm")) < TOTAL, "finished before the kill"
            for destination in ROUTE:
                wait_until(lambda d=destination: len({str(r.event_id) for r in deliveries(
                    bootstrap, topology, d, timeout=5)}) >= TOTAL, timeout=240,
                    message=f"every event routed to {destination} with a broker down", interval=1)
        finally:
            kafka_cluster.start_node(2)
    finally:
        factory.stop_all()
    assert_routed_once_per_identity(bootstrap, topology, events)


def assert_routed_once_per_identity(bootstrap: str, topology: Topology, events: list[EventEnvelope]) -> None:
    expected = {str(e.event_id) for e in events}
    for destination in ROUTE:
        records = deliveries(bootstrap, topology, destination, timeout=10)
        ids_per_event: dict[str, set[str]] = defaultdict(set)
        for record in records:
            ids_per_event[str(record.event_id)].add(str(record.delivery_id))
        assert set(ids_per_event) == expected, destination  # every event, no stranger
        # A re-routed event has the same delivery id: the destination dedupes it by Idempotency-Key.
        assert all(len(ids) == 1 for ids in ids_per_event.values()), destination
        # Re-routing is bounded by what the killed worker had not committed (interval 2 s).
        assert len(records) - TOTAL < TOTAL // 2, (destination, len(records))
    assert topic_size(bootstrap, topology.dead_letter_topic) == 0
