"""Records lost inside Faust before routing (processors/offset_guard.py), against the real broker:
the router reads the missing range straight from Kafka and routes it before the record in hand,
and the partition's commit offset stays below the hole until then."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from confluent_kafka import Producer
from faust.types import TP

from hub.kafka_config import producer_config
from processors.hole_filler import FetchedRecord, read_range
from tests.integration.processors.conftest import make_hub, short_topology_file  # noqa: F401 - fixture
from tests.integration.processors.helpers import deliveries, lead, offline_processors
from tests.kafka_support import read_topic

PARTITION = 0


def produce_to_one_partition(bootstrap: str, topic: str, count: int) -> list[str]:
    producer = Producer(producer_config(bootstrap, client_id="tests"))
    ids = []
    for _ in range(count):
        envelope = lead("site")
        producer.produce(
            topic,
            value=envelope.to_json(),
            key=envelope.kafka_key(),
            headers=envelope.kafka_headers(),
            partition=PARTITION,
        )
        ids.append(str(envelope.event_id))
    assert producer.flush(30) == 0
    return ids


def test_read_range_returns_the_records_of_the_range_in_order(kafka_bootstrap: str, short_topology_file: Path) -> None:  # noqa: F811
    topology = make_hub(short_topology_file, kafka_bootstrap)
    topic = topology.priority_topic(2)
    produce_to_one_partition(kafka_bootstrap, topic, 10)
    records = read_range(kafka_bootstrap, topic, PARTITION, 3, 7)
    assert [r.offset for r in records] == [3, 4, 5, 6]
    assert all(r.value and r.topic == topic and r.partition == PARTITION and r.timestamp > 0 for r in records)
    # A range past the end of the log stops at the end instead of waiting out the timeout.
    assert [r.offset for r in read_range(kafka_bootstrap, topic, PARTITION, 8, 50, timeout=20)] == [8, 9]


def test_a_hole_is_read_from_kafka_and_routed_before_the_record_in_hand(
    kafka_bootstrap: str,
    tmp_path: Path,
    short_topology_file: Path,  # noqa: F811
) -> None:
    topology = make_hub(short_topology_file, kafka_bootstrap)
    topic = topology.priority_topic(2)
    ids = produce_to_one_partition(kafka_bootstrap, topic, 6)
    processors = offline_processors(kafka_bootstrap, topology, short_topology_file, tmp_path)
    consumed = read_topic(kafka_bootstrap, topic)
    key = TP(topic, PARTITION)
    processors.offset_guard.reset({key: 0})

    # Faust lost offsets 0..3: the router is handed 4 and 5 only.
    handed = [
        FetchedRecord(r.topic, r.partition, r.offset, r.key, r.value, r.headers) for r in consumed if r.offset >= 4
    ]
    assert processors.offset_guard.settled() == {key: 0}  # nothing routed yet: no commit past 0

    routed_offsets: list[int] = []
    route_one = processors._route_one

    def spy(level: int, message: Any, now: Any) -> Any:
        routed_offsets.append(message.offset)
        return route_one(level, message, now)

    processors._route_one = spy  # type: ignore[method-assign]

    async def route() -> None:
        await processors._route_batch(2, handed)
        await processors.outputs.flush()

    asyncio.run(route())
    processors.outputs.close()

    assert processors.offset_guard.expected(key) == 6
    assert processors.offset_guard.settled() == {key: 6}
    assert [(h.expected, h.got) for h in processors.offset_guard.holes] == [(0, 4)]
    assert routed_offsets == [0, 1, 2, 3, 4, 5]  # the partition's order: the hole's records first
    crm = deliveries(kafka_bootstrap, topology, "crm", expect=6)
    assert sorted(str(r.event_id) for r in crm) == sorted(ids)  # every event, once
