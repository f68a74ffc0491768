"""Streaming reads of hub topics for the operator tools: one record at a time, never a whole topic
in memory. A scan stops at the end offsets seen when it started, so it terminates while producers
keep writing."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from hub.kafka_config import consumer_config, producer_config
from hub.kafka_retry import retry_transient

CLIENT_ID = "carinho-operators"
# A record's Kafka timestamp is when it was written, a little after the time it carries: readers that
# stop at a moment (scan_topic's `until`) stop this long past it and filter by their own time field.
LATE_RECORDS = timedelta(hours=1)
T = TypeVar("T")


class KafkaUnavailable(RuntimeError):
    """The broker could not be reached or the topic does not exist."""


class TopicMissing(KafkaUnavailable):
    """The broker answered: the topic does not exist (or has no partitions)."""


@dataclass(frozen=True)
class RawRecord:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    @classmethod
    def from_message(cls, msg: Message) -> RawRecord:
        _, ts = msg.timestamp()
        return cls(
            msg.topic(),
            msg.partition(),
            msg.offset(),
            int(ts),
            msg.key(),
            msg.value(),
            tuple((k, v if v is not None else b"") for k, v in (msg.headers() or [])),
        )

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value.decode("utf-8", "replace")
        return None


def reader(bootstrap: str, **overrides: object) -> Consumer:
    """A consumer that is only ever assigned partitions: it never joins a group nor commits."""
    # fetch.wait.max.ms: the broker answers an empty fetch at the end of a partition at once, so a
    # scan sees end-of-partition in milliseconds instead of the default half second.
    settings: dict[str, object] = {"enable.partition.eof": True, "fetch.wait.max.ms": 10, **overrides}
    return Consumer(
        consumer_config(
            bootstrap, group_id=f"carinho.operators.reader.{uuid.uuid4().hex[:8]}", client_id=CLIENT_ID, **settings
        )
    )


def producer(bootstrap: str) -> Producer:
    return Producer(producer_config(bootstrap, client_id=CLIENT_ID))


def partitions_of(consumer: Consumer, topic: str, timeout: float = 10.0) -> list[int]:
    try:
        metadata = consumer.list_topics(topic, timeout=timeout)
    except KafkaException as exc:
        raise KafkaUnavailable(f"cannot reach Kafka to read {topic!r}: {exc.args[0].str()}") from None
    info = metadata.topics.get(topic)
    if info is None or info.error is not None or not info.partitions:
        reason = info.error.str() if info is not None and info.error is not None else "no partitions"
        raise TopicMissing(f"topic {topic!r} is not available ({reason}); run `carinho topics apply`")
    return sorted(info.partitions)


def retrying(call: Callable[[], T], what: str, timeout: float = 15.0) -> T:
    """Retry the transient errors of a fresh topic or a leader election; fail clearly otherwise."""
    try:
        return retry_transient(call, timeout)
    except KafkaException as exc:
        raise KafkaUnavailable(f"{what}: {exc.args[0].str()}") from None


def get_watermarks(consumer: Consumer, topic: str, partition: int) -> tuple[int, int]:
    low, high = retrying(
        lambda: consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=5),
        f"offsets of {topic}[{partition}]",
    )
    return int(low), int(high)


def scan_topic(
    bootstrap: str,
    topic: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    timeout: float = 60.0,
    end_offsets: dict[int, int] | None = None,
) -> Iterator[RawRecord]:
    """Yield every record of `topic` from the beginning (or from the first record at/after `since`)
    up to the end offsets captured at the start (or `end_offsets`, to repeat an earlier pass), and,
    with `until`, not past the first record at/after `until`. Both bounds go by the records' Kafka
    timestamps (the producers' clocks, when they wrote): callers filter by their own time fields and
    give the bounds a margin for records written late. Memory: one record at a time."""
    consumer = reader(bootstrap)
    try:
        parts = partitions_of(consumer, topic)
        start = offsets_at(consumer, topic, parts, since) if since is not None else {}
        stop = offsets_at(consumer, topic, parts, until) if until is not None else {}
        end: dict[int, int] = {}
        assignment: list[TopicPartition] = []
        for p in parts:
            low, high = get_watermarks(consumer, topic, p)
            if end_offsets is not None:
                high = min(high, end_offsets.get(p, 0))
            if stop.get(p, -1) >= 0:  # -1: nothing at/after until, read to the end
                high = min(high, stop[p])
            first = start.get(p, -1) if since is not None else low
            if first < 0 or first >= high:
                continue  # empty, or nothing at/after `since`
            end[p] = high
            assignment.append(TopicPartition(topic, p, max(first, low)))
        if not assignment:
            return
        consumer.assign(assignment)
        remaining = set(end)
        deadline = time.monotonic() + timeout
        while remaining:
            if time.monotonic() > deadline:
                raise KafkaUnavailable(f"reading {topic!r} took longer than {timeout:.0f}s")
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    remaining.discard(msg.partition())
                    continue
                raise KafkaUnavailable(f"reading {topic!r}: {msg.error().str()}")
            if msg.partition() not in remaining:
                continue
            if msg.offset() >= end[msg.partition()] - 1:
                remaining.discard(msg.partition())
            if msg.offset() < end[msg.partition()]:
                deadline = time.monotonic() + timeout  # progress: the timeout is for a stall
                yield RawRecord.from_message(msg)
    finally:
        consumer.close()


def offsets_at(consumer: Consumer, topic: str, parts: list[int], moment: datetime) -> dict[int, int]:
    """Per partition, the first offset whose Kafka timestamp is at/after `moment` (-1: none)."""
    wanted = [TopicPartition(topic, p, int(moment.timestamp() * 1000)) for p in parts]
    found = retrying(lambda: consumer.offsets_for_times(wanted, timeout=10), f"offsets in {topic}")
    return {tp.partition: tp.offset for tp in found}


def read_one(bootstrap: str, topic: str, partition: int, offset: int, timeout: float = 10.0) -> RawRecord | None:
    """The record at partition:offset, or None when the offset is outside the partition."""
    consumer = reader(bootstrap)
    try:
        if partition not in partitions_of(consumer, topic):
            return None
        low, high = get_watermarks(consumer, topic, partition)
        if not low <= offset < high:
            return None
        consumer.assign([TopicPartition(topic, partition, offset)])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    return None
                raise KafkaUnavailable(f"reading {topic!r}: {msg.error().str()}")
            # A compacted or transactional log may skip the exact offset: only that offset counts.
            return RawRecord.from_message(msg) if msg.offset() == offset else None
        raise KafkaUnavailable(f"reading {topic}[{partition}]@{offset} timed out")
    finally:
        consumer.close()


def watermarks(bootstrap: str, topic: str) -> dict[int, tuple[int, int]]:
    consumer = reader(bootstrap)
    try:
        return {p: get_watermarks(consumer, topic, p) for p in partitions_of(consumer, topic)}
    finally:
        consumer.close()


def flush_or_raise(prod: Producer, what: str, timeout: float = 30.0) -> None:
    left = prod.flush(timeout)
    if left:
        raise KafkaUnavailable(f"{left} {what} record(s) not acknowledged by Kafka within {timeout:.0f}s")


class DeliveryErrors:
    """Delivery callback collecting produce failures (acks=all; an error means not written)."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def __call__(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self.errors.append(f"{msg.topic()}: {err.str()}")

    def raise_if_any(self) -> None:
        if self.errors:
            raise KafkaUnavailable(f"{len(self.errors)} write(s) failed, first: {self.errors[0]}")
