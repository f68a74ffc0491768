"""Faults under routing load. A processors worker SIGKILLed mid-load (another takes over), or one broker
of a 3-node cluster SIGKILLed under a running worker: every event is routed to every destination of
its route, and an event routed twice (not committed before the fault) carries the same delivery id
both times, so the connectors send it under the same Idempotency-Key — nothing lost, nothing
delivered under a new identity."""

from __future__ import annotations

import signal
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest
from confluent_kafka import Producer

from hub.admin import apply_topics
from hub.backlog import router_backlog
from hub.envelope import EventEnvelope
from hub.kafka_config import producer_config
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

TOTAL = 4000  # the broker-kill test: enough that routing is still going when the kill lands
KILL_TOTAL = 6000  # the SIGKILL test: the first worker commits before the kill, and is still routing
HEAD = 1000  # of them sent before the first worker starts; the rest streams in over STREAM_SECONDS
STREAM_SECONDS = 3.0
DUPLICATES = 100  # records re-sent with the same envelope: dropped by dedupe, no delivery
ROUTE = ("crm", "marketing", "whatsapp")  # lead.created: CRM, Marketing and the auto-reply


def send_steadily(bootstrap: str, topology: Topology, envelopes: list[EventEnvelope]) -> None:
    """`envelopes` in order, in 20 slices over STREAM_SECONDS, each flushed: a stream, not a burst."""
    producer = Producer(producer_config(bootstrap, client_id="tests-stream"))
    slices = 20
    size = -(-len(envelopes) // slices)
    for start in range(0, len(envelopes), size):
        send(bootstrap, topology, *envelopes[start : start + size], producer=producer)
        time.sleep(STREAM_SECONDS / slices)


def test_sigkill_mid_routing_loses_nothing(
    kafka_bootstrap: str,
    workers: WorkerFactory,  # noqa: F811
    short_topology_file: Path,  # noqa: F811
) -> None:
    topology = make_hub(short_topology_file, kafka_bootstrap)
    events = [lead("site") for _ in range(KILL_TOTAL)]
    # A head before the worker starts, with duplicates of some of its events (they must be dropped,
    # before or after the kill); the rest streams in while the first worker routes, so the kill lands
    # mid-routing however fast the worker is (all 6,000 sent up front were routed before a kill once).
    head, rest = events[:HEAD], events[HEAD:]
    send(kafka_bootstrap, topology, *head, *events[:DUPLICATES])
    records_in = KILL_TOTAL + DUPLICATES

    def committed(sent: int) -> int:  # records of events.p2 below the router group's committed offsets
        return sent - router_backlog(kafka_bootstrap, topology)[2]

    # Small batches settle often, so commits (every 0.5 s) follow the routing closely.
    first = workers.start(
        topology, CARINHO_SYNC_ENABLED="false", CARINHO_COMMIT_INTERVAL="0.5", CARINHO_BATCH_SIZE="200"
    )
    wait_until(
        lambda: committed(HEAD + DUPLICATES) >= KILL_TOTAL // 20, timeout=120, message="some committed", interval=0.1
    )
    stream = threading.Thread(target=send_steadily, args=(kafka_bootstrap, topology, rest), daemon=True)
    stream.start()
    time.sleep(STREAM_SECONDS / 3)  # the first worker is routing the stream as it comes
    assert stream.is_alive(), "the stream ended before the kill; nothing was tested"
    first.stop(signal.SIGKILL)
    stream.join(timeout=60)
    assert not stream.is_alive(), "the stream of events did not finish"
    time.sleep(1)  # the killed worker's last produce requests land (or not)
    committed_at_kill = committed(records_in)
    # Per destination: at a SIGKILL some of an event's outputs may have left the producer and others not.
    routed_by_first = {
        d: len({str(r.event_id) for r in deliveries(kafka_bootstrap, topology, d, timeout=5)}) for d in ROUTE
    }
    print(f"killed with {routed_by_first} events routed and {committed_at_kill} records committed")
    assert routed_by_first["crm"] < KILL_TOTAL, "routing finished before the kill; nothing was tested"

    second = workers.start(topology, CARINHO_SYNC_ENABLED="false")
    try:
        for destination in ROUTE:
            try:
                wait_until(
                    lambda d=destination: (
                        len({str(r.event_id) for r in deliveries(kafka_bootstrap, topology, d, timeout=5)})
                        >= KILL_TOTAL
                    ),
                    timeout=180,
                    message=f"every event routed to {destination} after the restart",
                    interval=1,
                )
            except AssertionError as exc:  # say whether the worker stalled, lost records or is slow
                raise AssertionError(f"{exc}; worker health: {second.health()}") from None
    finally:
        second.stop()

    # Every committed record was routed by the first worker (outputs are flushed before a commit) and
    # is not read again; at most DUPLICATES of them carried no delivery. So the events routed twice
    # are at most those the first worker routed past its last commit.
    assert_routed_once_per_identity(
        kafka_bootstrap,
        topology,
        events,
        max_rerouted={d: routed - committed_at_kill + DUPLICATES for d, routed in routed_by_first.items()},
    )


def test_broker_killed_mid_routing_loses_nothing(
    kafka_cluster: LocalKafka,
    short_topology_file: Path,  # noqa: F811
    fake_sources: FakeSources,  # noqa: F811
    tmp_path: Path,
) -> None:
    bootstrap = kafka_cluster.bootstrap
    warm_up_group_coordinator(bootstrap)
    topology = load_topology(short_topology_file).with_namespace(unique("pc"))
    assert not apply_topics(topology, "cluster3", bootstrap).problems
    factory = WorkerFactory(bootstrap, short_topology_file, tmp_path, fake_sources.url)
    events = [lead("site") for _ in range(TOTAL)]
    send(bootstrap, topology, *events)

    factory.start(topology, CARINHO_SYNC_ENABLED="false", CARINHO_CLUSTER_PROFILE="cluster3")
    try:
        wait_until(
            lambda: topic_size(bootstrap, topology.delivery_topic("crm")) >= TOTAL // 8,
            timeout=120,
            message="a quarter routed",
            interval=0.2,
        )
        # Counted as the kill starts (kill_node waits for the process to end, while routing goes on).
        routed_at_kill = topic_size(bootstrap, topology.delivery_topic("crm"))
        kafka_cluster.kill_node(2)  # leaders on it move; min.insync.replicas=2 still holds
        try:
            assert routed_at_kill < TOTAL, "finished before the kill"
            for destination in ROUTE:
                wait_until(
                    lambda d=destination: (
                        len({str(r.event_id) for r in deliveries(bootstrap, topology, d, timeout=5)}) >= TOTAL
                    ),
                    timeout=240,
                    message=f"every event routed to {destination} with a broker down",
                    interval=1,
                )
        finally:
            kafka_cluster.start_node(2)
    finally:
        factory.stop_all()
    # Re-routing is bounded by what the worker had not committed when its broker died (commits every 0.5 s).
    assert_routed_once_per_identity(bootstrap, topology, events, max_rerouted=dict.fromkeys(ROUTE, TOTAL // 2))


def assert_routed_once_per_identity(
    bootstrap: str, topology: Topology, events: list[EventEnvelope], *, max_rerouted: dict[str, int]
) -> None:
    expected = {str(e.event_id) for e in events}
    for destination in ROUTE:
        records = deliveries(bootstrap, topology, destination, timeout=10)
        ids_per_event: dict[str, set[str]] = defaultdict(set)
        for record in records:
            ids_per_event[str(record.event_id)].add(str(record.delivery_id))
        assert set(ids_per_event) == expected, destination  # every event, no stranger
        # A re-routed event has the same delivery id: the destination dedupes it by Idempotency-Key.
        assert all(len(ids) == 1 for ids in ids_per_event.values()), destination
        bound = max_rerouted[destination]
        assert len(records) - len(events) <= bound, (destination, len(records), bound)
    assert topic_size(bootstrap, topology.dead_letter_topic) == 0
