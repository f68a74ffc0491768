"""Sync state in Kafka: watermark + last result per sync on the compacted sync.state topic (key = sync
name), and the `sync:<name>` status on the compacted health topic (contract in the brief).

Reading the state is a bounded scan of the (single-partition, compacted) topic from the beginning to
its end offset; the last value per key wins. Both topics are written with the idempotent producer and
flushed before a run is considered recorded.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from pydantic import BaseModel, ConfigDict

from hub.kafka_config import consumer_config, producer_config
from hub.masking import mask_text
from hub.topology import Topology


class SyncState(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    sync: str
    watermark: str | None = None  # max updated_at seen in the last drained feed
    last_run_at: datetime | None = None
    last_success_at: datetime | None = None
    consecutive_failures: int = 0
    last_error: str | None = None
    last_result: dict[str, Any] = {}  # items, pages, events, duration_ms, outcome
    updated_at: datetime | None = None

    def health(self) -> dict[str, Any]:
        """The `sync:<name>` value on the health topic."""

        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "sync": self.sync,
            "last_run_at": iso(self.last_run_at),
            "last_success_at": iso(self.last_success_at),
            "watermark": self.watermark,
            "consecutive_failures": self.consecutive_failures,
            "last_error": self.last_error,
        }


class SyncStateStore:
    def __init__(self, topology: Topology, bootstrap: str, client_id: str = "processors-sync"):
        self.topology = topology
        self.bootstrap = bootstrap
        self.state_topic = topology.system_topic("sync_state")
        self.health_topic = topology.system_topic("health")
        self._producer = Producer(producer_config(bootstrap, client_id=client_id, linger_ms=0))

    def load_all(self, timeout: float = 15.0, attempts: int = 5) -> dict[str, SyncState]:
        """Every sync's last state; retries transient broker errors (leader moves, new topic)."""
        for attempt in range(1, attempts + 1):
            try:
                return self._load_all(timeout)
            except KafkaException:
                if attempt == attempts:
                    raise
                time.sleep(0.5 * attempt)
        return {}

    def _load_all(self, timeout: float) -> dict[str, SyncState]:
        consumer = Consumer(
            consumer_config(
                self.bootstrap,
                group_id=self.topology.consumer_group("sync-state-reader"),
                client_id="processors-sync-reader",
                **{"enable.partition.eof": True},
            )
        )
        states: dict[str, SyncState] = {}
        try:
            metadata = consumer.list_topics(self.state_topic, timeout=timeout)
            partitions = list(metadata.topics[self.state_topic].partitions)
            ends: dict[int, int] = {}
            starts: list[TopicPartition] = []
            for p in partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(self.state_topic, p), timeout=timeout)
                if high > low:
                    ends[p] = high
                    starts.append(TopicPartition(self.state_topic, p, low))
            if not starts:
                return states
            consumer.assign(starts)
            deadline = time.monotonic() + timeout
            while ends and time.monotonic() < deadline:
                msg = consumer.poll(0.5)
                if msg is None:
                    continue
                if msg.error():
                    if msg.error().code() == KafkaError._PARTITION_EOF:
                        ends.pop(msg.partition(), None)
                        continue
                    raise RuntimeError(msg.error().str())
                if msg.offset() + 1 >= ends.get(msg.partition(), 0):
                    ends.pop(msg.partition(), None)
                key = (msg.key() or b"").decode(errors="replace")
                if msg.value() is None:
                    states.pop(key, None)
                    continue
                try:
                    states[key] = SyncState.model_validate_json(msg.value())
                except ValueError:
                    continue  # an unreadable state record: the sync starts from its previous one
            if ends:
                raise TimeoutError(f"could not read {self.state_topic} to its end within {timeout}s")
        finally:
            consumer.close()
        return states

    def load(self, name: str) -> SyncState:
        return self.load_all().get(name) or SyncState(sync=name)

    def save(self, state: SyncState, timeout: float = 15.0) -> None:
        errors: list[str] = []

        def on_delivery(err: Any, _msg: Any) -> None:
            if err is not None:
                errors.append(str(err))

        value = state.model_copy(update={"last_error": mask_text(state.last_error)[:500] if state.last_error else None})
        self._producer.produce(
            self.state_topic, key=state.sync.encode(), value=value.model_dump_json().encode(), on_delivery=on_delivery
        )
        self._producer.produce(
            self.health_topic,
            key=f"sync:{state.sync}".encode(),
            value=orjson.dumps(value.health()),
            on_delivery=on_delivery,
        )
        remaining = self._producer.flush(timeout)
        if remaining or errors:
            raise RuntimeError(f"sync state for {state.sync} not written: {errors or remaining}")
