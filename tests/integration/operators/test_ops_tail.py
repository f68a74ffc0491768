"""operators.ops_tail.TopicTail: each drain reads up to the end offsets seen when it starts, however
the records arrived. librdkafka prefetches while nobody drains and queues a PARTITION_EOF after every
fetch that reached the end at that moment, so records written a few at a time leave batch, EOF,
batch, EOF... in its queue: a drain that stopped at the first EOF returned one small batch per
refresh and the operations page fell further and further behind (minutes after an idle spell)."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Producer

from hub.kafka_config import producer_config
from hub.topology import Topology
from operators.ops_tail import TopicTail

pytestmark = pytest.mark.integration


def _trickle(producer: Producer, topic: str, partition: int, batches: int, per_batch: int) -> None:
    """Small separate writes, as the services write health records: one fetch (and one EOF) each."""
    for batch in range(batches):
        for n in range(per_batch):
            producer.produce(topic, partition=partition, key=f"k{batch}-{n}".encode(), value=b"{}")
        assert producer.flush(10) == 0
        time.sleep(0.15)


def test_drain_reads_every_small_batch_written_since_the_last_drain(hub: Topology, kafka_bootstrap: str) -> None:
    topic = hub.system_topic("health")  # one partition, as in topics.yaml
    producer = Producer(producer_config(kafka_bootstrap, client_id="tests-ops-tail"))
    tail = TopicTail(kafka_bootstrap, topic)
    try:
        assert tail.drain() == []
        _trickle(producer, topic, 0, batches=12, per_batch=3)
        time.sleep(1.0)  # no drain meanwhile: the tail's queue now holds 12 batches and 12 EOFs
        records = tail.drain()
        assert [r.offset for r in records] == list(range(36))
        _trickle(producer, topic, 0, batches=5, per_batch=2)
        time.sleep(0.5)
        assert [r.offset for r in tail.drain()] == list(range(36, 46))
        started = time.monotonic()
        assert tail.drain() == []  # nothing new: no waiting for the time budget
        assert time.monotonic() - started < 0.5
    finally:
        tail.close()


def test_drain_reads_to_the_end_when_only_some_partitions_get_writes(hub: Topology, kafka_bootstrap: str) -> None:
    topic = hub.system_topic("deliveries")
    producer = Producer(producer_config(kafka_bootstrap, client_id="tests-ops-tail"))
    for partition in (0, 1):
        producer.produce(topic, partition=partition, value=b"{}")
    assert producer.flush(10) == 0
    tail = TopicTail(kafka_bootstrap, topic)
    try:
        assert len(tail.drain()) == 2  # both partitions at their end
        _trickle(producer, topic, 1, batches=10, per_batch=2)  # partition 0 gets nothing
        time.sleep(1.0)
        records = tail.drain()
        assert [(r.partition, r.offset) for r in records] == [(1, offset) for offset in range(1, 21)]
    finally:
        tail.close()
