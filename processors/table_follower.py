"""Warm copies of the table partitions this worker is not active for, read in bulk.

Faust's standby replicas read the other workers' changelogs through the same per-record path as its
recovery (~75 µs of CPU per record, processors/changelog_catch_up.py): two workers routing with the
trail index on spent ~23 % more CPU per event with one standby replica than with none
(benchmarks.md, tenth session). The follower does that job the way the start-up catch-up does: one
plain confluent-kafka consumer (`assign`, no group) on every changelog partition this worker is not
active for, its records written to the store in batches (`RocksStore.apply_encoded_batch`: the same
entries, tombstones and offsets), a few milliseconds at a time from a task on the event loop
(`Processors._follow_forever`).

Rebalances: `pause()` runs when a rebalance starts (Faust's `on_rebalance_start`, before its recovery
reads the stores' offsets), and nothing is written after it; `follow(active)` runs once the recovery
of the new assignment is over and assigns the consumer again, each partition from the offset its
store holds. So a partition that becomes active here is recovered by Faust from where the follower
left it (a warm copy: little to read), and one that moved away is followed from where the routers
left it. Every worker follows every partition it is not active for, so any worker can take any
partition over warm, and answer any trail locally.

`CARINHO_STANDBY_MODE=faust` keeps Faust's standby replicas instead; `CARINHO_STANDBY_REPLICAS=0`
turns both off.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from hub.kafka_config import consumer_config
from processors.changelog_catch_up import Changelog, decoded

log = logging.getLogger("processors.follower")
READ_BATCH = 500  # records per consume() call
TICK_BUDGET_S = 0.005  # the longest a tick holds the event loop (the routers share it)


class TableFollower:
    def __init__(self, bootstrap: str, tables: Mapping[str, Changelog]):
        self._by_topic = {changelog.topic: (name, changelog) for name, changelog in tables.items()}
        self._consumer = Consumer(
            consumer_config(
                bootstrap,
                group_id="carinho.processors-follower",  # never joins: assign() only, nothing committed
                client_id="carinho-processors-follower",
                # An idle partition's fetch waits at the broker up to 500 ms (librdkafka's default):
                # the copies lag by at most about that, and an idle worker asks twice a second.
                **{"fetch.wait.max.ms": 500, "queued.max.messages.kbytes": 16_384},
            )
        )
        self._partitions: dict[str, list[int]] = {}
        self._stopped: set[tuple[str, int]] = set()  # partitions with a record the store cannot take
        self.following = 0  # partitions followed now
        self.applied = 0  # records written since start
        self.paused = True

    def pause(self) -> None:
        """A rebalance starts: write nothing more until `follow` (Faust's recovery reads the offsets)."""
        self.paused = True

    def follow(self, active: Iterable[tuple[str, int]]) -> None:
        """After a rebalance's recovery: follow every changelog partition not in `active`, each from the
        offset its store holds."""
        active_set = {(topic, partition) for topic, partition in active}
        assignment = []
        for topic, (_name, changelog) in self._by_topic.items():
            for partition in self._partitions_of(topic):
                if (topic, partition) in active_set or (topic, partition) in self._stopped:
                    continue
                held = changelog.store.data.persisted(partition)
                start = OFFSET_BEGINNING if held is None else held + 1
                assignment.append(TopicPartition(topic, partition, start))
        self._consumer.assign(assignment)
        self.following = len(assignment)
        self.paused = False

    def tick(self, budget_s: float = TICK_BUDGET_S) -> int:
        """Write what has been fetched, for at most `budget_s`; records written."""
        if self.paused or not self.following:
            return 0
        deadline = time.monotonic() + budget_s
        written = 0
        while time.monotonic() < deadline:
            messages = self._consumer.consume(READ_BATCH, 0)
            if not messages:
                break
            batches: dict[str, list[tuple[Any, bytes | None, int, int]]] = {}
            for message in messages:
                error = message.error()
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        log.warning("changelog follower: %s", error.str())
                    continue
                topic, partition = message.topic(), message.partition()
                if (topic, partition) in self._stopped:
                    continue
                name, changelog = self._by_topic[topic]
                try:
                    record = decoded(
                        message.key(), message.value(), changelog.key_codec == "json", partition, message.offset()
                    )
                except (orjson.JSONDecodeError, TypeError) as exc:
                    # Stop this partition here: its offset stays before the record, and Faust's recovery
                    # reads it from there if the partition comes to this worker.
                    self._stopped.add((topic, partition))
                    log.warning("table %s: partition %d no longer followed (%s)", name, partition, exc)
                    continue
                batches.setdefault(topic, []).append(record)
            for topic, batch in batches.items():
                self._by_topic[topic][1].store.apply_encoded_batch(batch)
                written += len(batch)
        self.applied += written
        return written

    def close(self) -> None:
        self.paused = True
        self._consumer.close()

    def _partitions_of(self, topic: str) -> list[int]:
        partitions = self._partitions.get(topic)
        if partitions is None:
            try:
                info = self._consumer.list_topics(topic, timeout=10).topics.get(topic)
            except KafkaException as exc:
                log.warning("changelog follower: no metadata for %s (%s)", topic, exc)
                return []
            if info is None or info.error is not None:
                return []
            partitions = self._partitions[topic] = sorted(info.partitions)
        return partitions
