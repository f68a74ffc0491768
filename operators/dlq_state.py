"""Durable status of dead-letter records, without ever deleting from the dead-letter topic.

Design: a compacted companion topic (topics.yaml `system_topics.dead_letter_state`, default
`deadletter.state`) holds one record per touched dead-letter record, key = its DLQ id
"<partition>:<offset>", value = the latest `DlqState` (compaction keeps the latest per key):

- no state record      -> "pending" (never touched)
- status "edited"      -> still open; `edited_value` is the corrected record that replay sends
                          (the original stays untouched on the dead-letter topic)
- status "replayed"    -> sent back to deliver.<destination>[.retry.1]; `replay_count` counts replays
- status "purged"      -> discarded by an operator (the data ages out with the topic's retention)
- status "archived"    -> copied to an archive file (`archive_file`), then closed

`record_timestamp_ms` pins the state to one dead-letter record: if the dead-letter topic is ever
recreated, offsets restart and old states no longer match, so they are ignored.
The audit topic keeps who did what (operators/audit.py); this topic keeps the current state.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import orjson
from confluent_kafka import KafkaException, Producer
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hub.backlog import partition_watermarks
from hub.topology import Topology
from operators.dlq_items import BadDlqId, DlqId, DlqItem
from operators.kafka_io import DeliveryErrors, KafkaUnavailable, flush_or_raise, producer, reader, scan_topic

Status = Literal["pending", "edited", "replayed", "purged", "archived"]
STATUSES: tuple[Status, ...] = ("pending", "edited", "replayed", "purged", "archived")
OPEN_STATUSES: frozenset[str] = frozenset({"pending", "edited"})
HISTORY_LIMIT = 20


class HistoryEntry(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    action: str
    at: datetime
    operator: str
    detail: dict[str, Any] = {}


class DlqState(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    dlq_id: str
    record_timestamp_ms: int
    status: Status
    updated_at: datetime
    updated_by: str
    replay_count: int = 0
    last_replay_to: str | None = None
    edited_value_b64: str | None = None  # corrected record (bytes, base64): replay sends this
    edited_paths: list[str] = Field(default_factory=list)
    archive_file: str | None = None
    history: list[HistoryEntry] = Field(default_factory=list)

    @property
    def edited_value(self) -> bytes | None:
        return base64.b64decode(self.edited_value_b64) if self.edited_value_b64 is not None else None

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json", exclude_none=True))


def effective_status(item: DlqItem, state: DlqState | None) -> Status:
    if state is None or state.record_timestamp_ms != item.record.timestamp_ms:
        return "pending"
    return state.status


def next_state(
    item: DlqItem,
    previous: DlqState | None,
    *,
    status: Status,
    at: datetime,
    operator: str,
    action: str,
    detail: dict[str, Any] | None = None,
    **changes: Any,
) -> DlqState:
    """The state after an action, carrying the edit and the history forward."""
    if previous is not None and previous.record_timestamp_ms != item.record.timestamp_ms:
        previous = None
    base: dict[str, Any] = previous.model_dump() if previous else {}
    history = list(previous.history if previous else [])
    history.append(HistoryEntry(action=action, at=at, operator=operator, detail=detail or {}))
    base.update(
        {
            "dlq_id": str(item.id),
            "record_timestamp_ms": item.record.timestamp_ms,
            "status": status,
            "updated_at": at,
            "updated_by": operator,
            "history": history[-HISTORY_LIMIT:],
        }
    )
    base.update(changes)
    return DlqState.model_validate(base)


class DlqStateStore:
    def __init__(self, topology: Topology, bootstrap: str) -> None:
        self.topic = topology.system_topic("dead_letter_state")
        self.bootstrap = bootstrap
        self._producer: Producer | None = None

    def load(self) -> dict[str, DlqState]:
        """Every current state (one per touched dead-letter record; tombstones remove)."""
        states: dict[str, DlqState] = {}
        try:
            records = scan_topic(self.bootstrap, self.topic)
            for record in records:
                key = record.key.decode() if record.key else None
                if key is None:
                    continue
                if record.value is None:
                    states.pop(key, None)
                    continue
                try:
                    states[key] = DlqState.model_validate_json(record.value)
                except ValidationError:
                    continue  # a record we cannot read never blocks the tool
        except KafkaUnavailable as exc:
            raise KafkaUnavailable(f"{exc} (the DLQ status topic)") from None
        return states

    def put(self, states: Iterable[DlqState]) -> int:
        """Write states and wait until the broker acknowledged every one."""
        if self._producer is None:
            self._producer = producer(self.bootstrap)
        prod = self._producer
        errors = DeliveryErrors()
        written = 0
        for state in states:
            prod.produce(self.topic, key=state.dlq_id.encode(), value=state.to_json(), on_delivery=errors)
            prod.poll(0)
            written += 1
        flush_or_raise(prod, "DLQ status")
        errors.raise_if_any()
        return written


@dataclass(frozen=True)
class DeadLetterCounts:
    open: int  # pending or edited: what `carinho dlq stats` counts by default and /ops shows as open
    total: int  # every record on the dead-letter topic within retention (replayed/purged/archived too)


def is_open(item: DlqItem, state: DlqState | None) -> bool:
    """The DLQ tools' rule: open while never touched, edited, or its state is for another record."""
    return effective_status(item, state) in OPEN_STATUSES


EXACT_COUNT_LIMIT = 10_000  # dead-letter records; past this /status counts from offsets (below)


def dead_letter_counts(
    topology: Topology, bootstrap: str, *, timeout: float = 60.0, exact_limit: int = EXACT_COUNT_LIMIT
) -> DeadLetterCounts:
    """Open and total records of the dead-letter topic, by the same rule as `carinho dlq stats` and
    the /ops summary (the status of each record on the compacted deadletter.state topic). A topic that
    does not exist counts as empty (no state topic: no record was touched). Raises KafkaUnavailable
    when Kafka is down.

    Up to `exact_limit` records it reads them all (one in memory at a time). Past it (an incident:
    the ingress asks every 15 s, and reading a big topic would take seconds of its CPU each time) the
    total comes from the partitions' offsets and the open count is the total minus the closed states
    whose record is still kept. That differs from the tools' rule in one case only: a closed state
    left from an older record at the same partition and offset (the topic deleted and recreated),
    which the tools tell apart by the record's timestamp."""
    dead_topic = topology.dead_letter_topic
    state_topic = topology.system_topic("dead_letter_state")
    consumer = reader(bootstrap)
    try:
        try:
            metadata = consumer.list_topics(timeout=min(timeout, 10.0))
            present = {
                name for name in (dead_topic, state_topic) if (info := metadata.topics.get(name)) and info.error is None
            }
            marks = partition_watermarks(consumer, dead_topic, min(timeout, 10.0)) if dead_topic in present else {}
        except KafkaException as exc:
            raise KafkaUnavailable(f"cannot reach Kafka to count dead letters: {exc.args[0].str()}") from None
    finally:
        consumer.close()
    if dead_topic not in present:
        return DeadLetterCounts(open=0, total=0)
    states = DlqStateStore(topology, bootstrap).load() if state_topic in present else {}
    kept = sum(high - low for low, high in marks.values())
    if kept > exact_limit:
        closed = sum(1 for state in states.values() if state.status not in OPEN_STATUSES and _kept(state.dlq_id, marks))
        return DeadLetterCounts(open=kept - closed, total=kept)
    total = opened = 0
    for record in scan_topic(bootstrap, dead_topic, timeout=timeout):
        item = DlqItem(record)
        total += 1
        opened += is_open(item, states.get(str(item.id)))
    return DeadLetterCounts(open=opened, total=total)


def _kept(dlq_id: str, marks: dict[int, tuple[int, int]]) -> bool:
    """The record `partition:offset` is still within its partition's retention."""
    try:
        found = DlqId.parse(dlq_id)
    except BadDlqId:
        return False
    low, high = marks.get(found.partition, (0, 0))
    return low <= found.offset < high
