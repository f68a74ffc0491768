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
from datetime import datetime
from typing import Any, Literal

import orjson
from confluent_kafka import Producer
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hub.topology import Topology
from operators.dlq_items import DlqItem
from operators.kafka_io import DeliveryErrors, KafkaUnavailable, flush_or_raise, producer, scan_topic

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
