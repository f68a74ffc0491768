"""Bring the tables on disk up to their changelogs' ends before Faust starts, in bulk.

Faust's recovery reads a changelog record through its stream machinery (a message, an event, the
conductor, the changelog queue, buffers): ~70 µs of CPU per record even with
processors/faust_changelog_intake.py (py-spy; docs/benchmarks.md, thirteenth session). A worker on
an empty data directory reads every table's whole compacted changelog that way, and the trail index
has one record per hop (processors/trail_index.py): a month of trails is millions of records.

Here a plain confluent-kafka consumer (no group: `assign`) reads each changelog partition from the
offset the database holds (`RocksMapping.persisted`; the beginning on a new directory) up to the end
it has when the worker starts, and writes them to the store (`RocksStore.apply_encoded_batch`): the
same writes, tombstones and persisted offsets as Faust's recovery, with each value's JSON stored as
read instead of decoded by Faust's codec and encoded again by the store. Faust's recovery then starts
from those offsets and reads only what was written since.

Every partition is read, not only the ones this worker will be assigned (the group has not assigned
anything yet): the others' keys stay on disk as after a rebalance (RocksStore), and a partition
assigned later is read from its offset on. With the standby copies (the default,
processors/table_follower.py) every worker keeps every partition warm anyway.

Best effort: if the broker does not answer or a record is not JSON, the catch-up stops there and
Faust's recovery reads the rest, as it did everything before.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from hub.backlog import partition_watermarks
from hub.kafka_config import consumer_config
from processors.state_store import RocksStore

log = logging.getLogger("processors.changelog")
READ_BATCH = 5_000  # records per consume() call and per write to the store
# consume() waits until it has READ_BATCH records or this long: short, or the last call of every table
# (fewer records than a batch left) waited the whole time (a second per table at each start).
CONSUME_WAIT_S = 0.05
IDLE_LIMIT_S = 30.0  # nothing read for this long while some partition is not at its end: give up
PROGRESS_EVERY_S = 10.0  # a log line while a long catch-up runs (/health is not served yet)
KeyCodec = Literal["raw", "json"]


@dataclass(frozen=True)
class Changelog:
    """One table to catch up: its store, its changelog topic and how that topic's keys are encoded
    (the values are JSON: Faust's json codec is orjson, and the store keeps orjson bytes)."""

    store: RocksStore
    topic: str
    key_codec: KeyCodec


def catch_up(bootstrap: str, tables: Mapping[str, Changelog], timeout: float = 30.0) -> dict[str, int]:
    """Read each table's changelog up to its current end into the table's store; records read by table."""
    consumer = Consumer(
        consumer_config(
            bootstrap,
            group_id="carinho.processors-catch-up",  # never joins: assign() only, nothing committed
            client_id="carinho-processors-catch-up",
            # Bounded prefetch: the worker stays within its memory budget while it reads.
            **{
                "enable.partition.eof": True,
                "fetch.wait.max.ms": 10,
                "fetch.max.bytes": 16 * 1_048_576,
                "queued.max.messages.kbytes": 16_384,
            },
        )
    )
    read: dict[str, int] = {}
    try:
        for name, changelog in tables.items():
            started = time.monotonic()
            read[name] = _catch_up_table(consumer, name, changelog, timeout)
            if read[name]:
                log.info(
                    "table %s: %d changelog records read before start in %.1f s",
                    name,
                    read[name],
                    time.monotonic() - started,
                )
    finally:
        consumer.close()
    return read


def _catch_up_table(consumer: Consumer, name: str, changelog: Changelog, timeout: float) -> int:
    store, topic = changelog.store, changelog.topic
    assignment, left = [], {}
    at_most = 0  # offsets to read (compaction leaves fewer records): the progress lines' "of"
    try:
        marks = partition_watermarks(consumer, topic, timeout)
    except KafkaException as exc:
        log.warning("table %s: no changelog catch-up (%s); Faust's recovery reads it", name, exc)
        return 0
    for partition, (low, high) in marks.items():
        held = store.data.persisted(partition)
        start = max(held + 1, low) if held is not None else low
        if start < high:
            assignment.append(TopicPartition(topic, partition, start if held is not None else OFFSET_BEGINNING))
            left[partition] = high
            at_most += high - start
    if not assignment:
        return 0
    consumer.assign(assignment)
    json_keys = changelog.key_codec == "json"
    read = 0
    idle_since = next_progress = time.monotonic()
    stopped: str | None = None
    try:
        while left and stopped is None:
            messages = consumer.consume(READ_BATCH, CONSUME_WAIT_S)
            if not messages:
                if time.monotonic() - idle_since > IDLE_LIMIT_S:
                    stopped = f"nothing read for {IDLE_LIMIT_S:.0f}s, partitions {sorted(left)} not at their end"
                continue
            idle_since = time.monotonic()
            batch: list[tuple[Any, bytes | None, int, int]] = []
            for message in messages:
                error = message.error()
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        stopped = error.str()
                        break
                    left.pop(message.partition(), None)  # at its end (compaction may have removed end - 1)
                    continue
                partition, offset = message.partition(), message.offset()
                end = left.get(partition)
                if end is None or offset >= end:
                    continue  # written after the start: Faust's recovery reads it
                try:
                    batch.append(decoded(message.key(), message.value(), json_keys, partition, offset))
                except (orjson.JSONDecodeError, TypeError) as exc:
                    stopped = f"partition {partition} offset {offset}: {exc}"
                    break
                if offset + 1 >= end:
                    del left[partition]
            if batch:  # what was read before a stop too: its offsets are where Faust's recovery resumes
                store.apply_encoded_batch(batch)
                read += len(batch)
            if time.monotonic() >= next_progress + PROGRESS_EVERY_S:  # the web port opens only after this
                next_progress = time.monotonic()
                log.info("table %s: %d of at most %d changelog records read", name, read, at_most)
    except KafkaException as exc:
        stopped = str(exc)
    finally:
        store.data.write_pending()
        consumer.unassign()
    if stopped is not None:
        log.warning("table %s: changelog catch-up stopped (%s); Faust's recovery reads the rest", name, stopped)
    return read


def decoded(
    key: bytes | None, value: bytes | None, json_keys: bool, partition: int, offset: int
) -> tuple[Any, bytes | None, int, int]:
    """A record as the store takes it; raises on what Faust's codecs or the store would refuse."""
    if value is not None:
        orjson.loads(value)  # only checked: the store keeps the JSON as it is
    table_key = orjson.loads(key) if json_keys and key is not None else key
    if not isinstance(table_key, str | bytes):
        raise TypeError(f"a table key must be str or bytes, not {type(table_key).__name__}")
    return table_key, value, partition, offset
