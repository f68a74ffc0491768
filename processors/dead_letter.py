"""Dead-lettering of records the processors cannot route (invalid, transform failure).

Uses its own confluent-kafka producer (lz4, large max message size) and waits for the write before the
Faust batch is acked: the dead-letter record is durable before the source offset can be committed, and
an oversized original still fits (the value must be the original bytes, unchanged).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from confluent_kafka import Producer

from hub.dead_letter import DeadLetterInfo
from hub.kafka_config import producer_config
from processors import metrics


@dataclass(frozen=True)
class Failed:
    """One record to dead-letter: the original bytes and where they came from."""

    key: bytes | None
    value: bytes | None
    topic: str
    partition: int
    offset: int
    reason: str
    error_class: str
    error_message: str
    permanent: bool = True
    event_id: str | None = None
    event_type: str | None = None
    destination: str | None = None


class DeadLetterWriter:
    def __init__(self, bootstrap: str, topic: str, client_id: str = "processors-dlq"):
        self.topic = topic
        self._producer = Producer(
            producer_config(bootstrap, client_id=client_id, linger_ms=2, **{"message.max.bytes": 16 * 1_048_576})
        )

    def _produce(self, failed: Failed, now: datetime, errors: list[str]) -> None:
        info = DeadLetterInfo(
            stage="processors",
            reason=failed.reason,
            permanent=failed.permanent,
            error_class=failed.error_class,
            error_message=failed.error_message,
            original_topic=failed.topic,
            original_partition=failed.partition,
            original_offset=failed.offset,
            failed_at=now,
            first_failed_at=now,
            destination=failed.destination,
            event_id=failed.event_id,
            event_type=failed.event_type,
            attempts=1,
        )

        def on_delivery(err: Any, _msg: Any) -> None:
            if err is not None:
                errors.append(str(err))

        self._producer.produce(
            self.topic, key=failed.key, value=failed.value or b"", headers=info.to_headers(), on_delivery=on_delivery
        )

    def write_many(self, failures: list[Failed], now: datetime, timeout: float = 30.0) -> None:
        """Produce and wait until every record is acknowledged (raises if not)."""
        errors: list[str] = []
        for failed in failures:
            self._produce(failed, now, errors)
            metrics.DEAD_LETTERS.labels(failed.reason).inc()
        remaining = self._producer.flush(timeout)
        if remaining or errors:
            raise RuntimeError(
                f"dead-letter topic {self.topic}: {remaining} record(s) not acknowledged, errors: {errors[:3]}"
            )

    async def write(self, failures: list[Failed], now: datetime) -> None:
        if failures:
            await asyncio.to_thread(self.write_many, failures, now)

    def close(self) -> None:
        self._producer.flush(10)
