"""Read a range of one partition straight from Kafka (for processors.offset_guard holes).

A short-lived confluent-kafka consumer assigned to the one partition (no group membership, no
commits): it never touches Faust's consumer, whose fetch position and read offsets are what lost the
records in the first place. Blocking: call it in a thread.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, TopicPartition

from hub.kafka_config import consumer_config


@dataclass(frozen=True)
class FetchedRecord:
    """The fields of a lane record (aiokafka's `ConsumerRecord`) the router and the trail indexer read:
    what the hole filler reads back, and what tests and benchmarks hand them."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] | None = None
    timestamp: int = 0  # milliseconds, like aiokafka's ConsumerRecord.timestamp


class FillFailed(RuntimeError):
    pass


def read_range(
    bootstrap: str, topic: str, partition: int, start: int, end: int, timeout: float = 30.0
) -> list[FetchedRecord]:
    """Records with start <= offset < end, in order. Offsets missing from the log (none expected on
    the priority topics) are simply absent from the result; the caller reports them."""
    consumer = Consumer(
        consumer_config(
            bootstrap,
            group_id="carinho-processors-hole-fill",
            client_id="processors-hole-fill",
            **{"enable.partition.eof": True, "isolation.level": "read_uncommitted"},
        )
    )
    out: list[FetchedRecord] = []
    deadline = time.monotonic() + timeout
    try:
        consumer.assign([TopicPartition(topic, partition, start)])
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    return out  # the log ends before `end`: nothing more to read
                if msg.error().retriable():
                    continue
                raise FillFailed(f"{topic}[{partition}]: {msg.error().str()}")
            offset = msg.offset()
            if offset >= end:
                return out
            _, stamp = msg.timestamp()
            out.append(FetchedRecord(topic, partition, offset, msg.key(), msg.value(), msg.headers(), max(stamp, 0)))
            if offset == end - 1:
                return out
        raise FillFailed(f"{topic}[{partition}] {start}..{end - 1}: read {len(out)} record(s) in {timeout}s")
    finally:
        consumer.close()


__all__ = ["FetchedRecord", "FillFailed", "read_range"]
