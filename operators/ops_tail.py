"""A long-lived, assign-only consumer that keeps up with a topic: each `drain()` returns the records
written since the previous one (bounded in time), so the operations page never re-reads a topic."""

from __future__ import annotations

import time
from datetime import datetime

from confluent_kafka import OFFSET_BEGINNING, KafkaError, TopicPartition

from operators.kafka_io import RawRecord, offsets_at, partitions_of, reader


class TopicTail:
    def __init__(self, bootstrap: str, topic: str, *, since: datetime | None = None) -> None:
        self.topic = topic
        self.consumer = reader(bootstrap)
        parts = partitions_of(self.consumer, topic)
        if since is not None:
            found = offsets_at(self.consumer, topic, parts, since)
            # -1 (nothing at/after `since`): start at the end, i.e. only new records.
            assignment = [TopicPartition(topic, p, offset if offset >= 0 else -1) for p, offset in found.items()]
        else:
            assignment = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts]
        self.consumer.assign(assignment)
        self.at_end: dict[int, bool] = {p: False for p in parts}

    def drain(self, budget_seconds: float = 1.5, max_records: int = 200_000) -> list[RawRecord]:
        """New records until every partition is at its end, the time budget or `max_records`."""
        out: list[RawRecord] = []
        deadline = time.monotonic() + budget_seconds
        while time.monotonic() < deadline and len(out) < max_records:
            msg = self.consumer.poll(0.05)
            if msg is None:
                if all(self.at_end.values()):
                    break
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    self.at_end[msg.partition()] = True
                    if all(self.at_end.values()):
                        break
                    continue
                raise RuntimeError(f"reading {self.topic}: {msg.error().str()}")
            self.at_end[msg.partition()] = False
            out.append(RawRecord.from_message(msg))
        return out

    def close(self) -> None:
        self.consumer.close()
