"""The trail indexer (processors/app.py, `index_batch`) against the real broker: a batch of one trail
partition's records is indexed, one table entry and one changelog record per hop (keyed by its trail
offset), unreadable records skipped without stopping the partition, and records lost inside the
worker read back from Kafka like the router's holes (offset guard)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from confluent_kafka import Producer
from faust.types import TP

from hub.kafka_config import producer_config
from hub.topology import changelog_topic
from hub.trail import TrailHop
from processors import state_store, trail_index
from processors.hole_filler import FetchedRecord
from tests.integration.processors.conftest import make_hub, short_topology_file  # noqa: F401 - fixture
from tests.integration.processors.helpers import offline_processors
from tests.kafka_support import read_topic

PARTITION = 0


def test_a_batch_is_indexed_in_order_once_per_event_and_a_hole_is_read_from_kafka(
    kafka_bootstrap: str,
    tmp_path: Path,
    short_topology_file: Path,  # noqa: F811
) -> None:
    topology = make_hub(short_topology_file, kafka_bootstrap)
    topic = topology.system_topic("trail")
    first, second = uuid.uuid4(), uuid.uuid4()
    at = datetime.now(UTC) - timedelta(minutes=5)
    # Offsets: 0-2 hops of `first` (lost inside the worker), 3 garbage, 4-5 hops of `second`,
    # 6 a last hop of `first` (the record in hand after the hole).
    hops = [
        TrailHop(event_id=first, hop="accepted", at=at, service="ingress", detail={"phone": "+5511999990000"}),
        TrailHop(event_id=first, hop="routed", at=at + timedelta(seconds=1), service="processors"),
        TrailHop(event_id=first, hop="attempt", at=at + timedelta(seconds=2), service="connectors", status=503),
    ]
    later = [
        TrailHop(event_id=second, hop="accepted", at=at, service="ingress"),
        TrailHop(event_id=second, hop="routed", at=at + timedelta(seconds=1), service="processors"),
        TrailHop(event_id=first, hop="delivered", at=at + timedelta(seconds=3), service="connectors", status=200),
    ]
    producer = Producer(producer_config(kafka_bootstrap, client_id="tests"))
    values = [h.to_json() for h in hops] + [b"\x00not a hop"] + [h.to_json() for h in later]
    keys = [h.kafka_key() for h in hops] + [b"garbage"] + [h.kafka_key() for h in later]
    for key, value in zip(keys, values, strict=True):
        producer.produce(topic, value=value, key=key, partition=PARTITION)
    assert producer.flush(30) == 0

    processors = offline_processors(kafka_bootstrap, topology, short_topology_file, tmp_path)
    tp = TP(topic, PARTITION)
    processors.offset_guard.reset({tp: 0})
    # Faust lost offsets 0..2: the indexer is handed 3..6.
    handed = [FetchedRecord(topic, PARTITION, offset, keys[offset], values[offset]) for offset in range(3, 7)]

    async def index() -> None:
        await processors.index_batch(handed)
        await processors.outputs.flush()

    asyncio.run(index())
    processors.outputs.close()

    assert processors.offset_guard.settled() == {tp: 7}  # the garbage record does not stop the partition
    assert [(h.expected, h.got) for h in processors.offset_guard.holes] == [(0, 3)]
    store = state_store.mapping(processors.trail_table)
    indexed_first = trail_index.event_hops(store, str(first))
    assert sorted(h["hop"] for h in indexed_first) == sorted(["accepted", "routed", "attempt", "delivered"])
    assert "+5511999990000" not in orjson.dumps(indexed_first).decode()  # masked at index time
    assert [h["hop"] for h in trail_index.event_hops(store, str(second))] == ["accepted", "routed"]
    assert [h["hop"] for h in processors.trail(str(first)) or []] == ["accepted", "routed", "attempt", "delivered"]

    changelog = read_topic(kafka_bootstrap, changelog_topic(processors.app_id, "trail-index"), expect=6)
    assert all(record.partition == PARTITION for record in changelog)  # changelog partition = trail partition
    # One changelog record per hop, keyed by the hop's trail offset, equal to the table's entry.
    by_key = {record.key: orjson.loads(record.value or b"null") for record in changelog}
    assert len(changelog) == len(by_key) == 6
    expected_keys = {trail_index.hop_key(str(first), PARTITION, offset) for offset in (0, 1, 2, 6)} | {
        trail_index.hop_key(str(second), PARTITION, offset) for offset in (4, 5)
    }
    assert set(by_key) == expected_keys
    assert all(by_key[key] == store[key] for key in expected_keys)
