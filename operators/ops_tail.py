"""A long-lived, assign-only consumer that keeps up with a topic: each `drain()` returns the records
written since the previous one (bounded in time), so the operations page never re-reads a topic."""

from __future__ import annotations

import time
from datetime import datetime

from confluent_kafka import OFFSET_BEGINNING, KafkaError, TopicPartition

from operators.kafka_io import RawRecord, get_watermarks, offsets_at, partitions_of, reader


class TopicTail:
    def __init__(self, bootstrap: str, topic: str, *, since: datetime | None = None) -> None:
        self.topic = topic
        self.consumer = reader(bootstrap)
        self.parts = partitions_of(self.consumer, topic)
        if since is not None:
            found = offsets_at(self.consumer, topic, self.parts, since)
            # -1 (nothing at/after `since`): start at the end, i.e. only new records.
            assignment = [TopicPartition(topic, p, offset if offset >= 0 else -1) for p, offset in found.items()]
        else:
            assignment = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in self.parts]
        self.consumer.assign(assignment)
        # Per partition, the offset this tail has read up to (next record's offset); absent: none yet.
        self.position: dict[int, int] = {}

    def drain(self, budget_seconds: float = 1.5, max_records: int = 200_000) -> list[RawRecord]:
        """New records up to the end offsets seen when the drain starts, the time budget or `max_records`."""
        # Not "until every partition reported EOF": librdkafka keeps fetching between drains and queues
        # an EOF after each fetch that reached the end *then*, so writes arriving a few at a time leave
        # batch, EOF, batch, EOF... in the queue (hundreds after a few idle minutes) and stopping at the
        # first EOF returned one small batch per drain. An EOF only counts once it is at/after the end
        # queried here (read_committed: the last stable offset, which an EOF always reaches).
        end = {p: get_watermarks(self.consumer, self.topic, p)[1] for p in self.parts}
        behind = {p for p in self.parts if self.position.get(p, 0) < end[p]}
        out: list[RawRecord] = []
        deadline = time.monotonic() + budget_seconds
        while behind and time.monotonic() < deadline and len(out) < max_records:
            msg = self.consumer.poll(0.05)
            if msg is None:
                continue
            p = msg.partition()
            if msg.error():
                if msg.error().code() != KafkaError._PARTITION_EOF:
                    raise RuntimeError(f"reading {self.topic}: {msg.error().str()}")
                reached = msg.offset()  # the end offset when the fetcher got there (past any gap)
            else:
                out.append(RawRecord.from_message(msg))
                reached = msg.offset() + 1
            self.position[p] = max(self.position.get(p, 0), reached)
            if self.position[p] >= end[p]:
                behind.discard(p)
        return out

    def close(self) -> None:
        self.consumer.close()
