"""A partition the lanes paused and then released reaches a poll that is already waiting
(processors/priority.py `resume_partition`), against the real broker and aiokafka's real fetcher.

The worker's poll is aiokafka's `fetched_records` over Faust's live set of active partitions. The
test leaves partition 1's records prefetched while only partition 0 is active (as when a lane is
full), starts a poll, and puts partition 1 back in the set. Without a wake-up the poll keeps waiting
(no new record will come: nothing else is produced) — the test checks that first, so it can fail —
and with `resume_partition` it returns partition 1's records at once. The checks that need no broker
(no consumer started yet; aiokafka on another thread's loop) are in
tests/unit/processors/test_priority_resume.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from hub.kafka_config import admin_config, producer_config
from processors.priority import resume_partition
from tests.kafka_support import unique

pytestmark = pytest.mark.integration


class FaustConsumer:
    """What `resume_partition` uses of Faust's consumer: `on_buffer_drop` (puts the partition back
    in the live active set, as Faust 0.15.3 does) and the aiokafka consumer behind `_thread`."""

    def __init__(self, consumer: AIOKafkaConsumer, active: set[TopicPartition]):
        self._thread = self
        self._consumer = consumer
        self.active = active

    def on_buffer_drop(self, tp: TopicPartition) -> None:
        self.active.add(tp)


def two_partitions_with_records(bootstrap: str, per_partition: int) -> str:
    topic = unique("resume")
    admin = AdminClient(admin_config(bootstrap))
    for future in admin.create_topics([NewTopic(topic, 2, 1)]).values():
        future.result(30)
    producer = Producer(producer_config(bootstrap, client_id="tests"))
    for partition in (0, 1):
        for i in range(per_partition):
            producer.produce(topic, value=f"{partition}-{i}".encode(), partition=partition)
    assert producer.flush(15) == 0
    return topic


async def test_a_released_partition_reaches_the_waiting_poll_at_once(kafka_bootstrap: str) -> None:
    topic = two_partitions_with_records(kafka_bootstrap, per_partition=10)
    tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka_bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    consumer.assign([tp0, tp1])
    await consumer.start()
    try:
        fetcher: Any = consumer._fetcher
        for _ in range(200):  # both partitions prefetched
            if tp0 in fetcher._records and tp1 in fetcher._records:
                break
            await asyncio.sleep(0.05)
        assert tp0 in fetcher._records and tp1 in fetcher._records, "records were not prefetched"
        active = {tp0}  # partition 1 "paused": its lane is full
        first = await fetcher.fetched_records(active, timeout=0, max_records=100)
        assert [r.value for r in first[tp0]] == [f"0-{i}".encode() for i in range(10)]

        poll = asyncio.ensure_future(fetcher.fetched_records(active, timeout=20, max_records=100))
        await asyncio.sleep(0.5)
        assert not poll.done()

        active.add(tp1)  # released without a wake-up: the poll does not look again
        await asyncio.sleep(1.5)
        assert not poll.done(), "aiokafka now re-checks the active set by itself: resume_partition may go"

        resume_partition(FaustConsumer(consumer, active), tp1)
        records = await asyncio.wait_for(poll, 5)
        assert [r.value for r in records[tp1]] == [f"1-{i}".encode() for i in range(10)]
    finally:
        await consumer.stop()
