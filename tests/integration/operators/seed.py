"""Seed the topics the operator tools read, following the contracts in the brief: dead-letter
records (value = original bytes, DeadLetterInfo headers), delivery attempts, trail hops, health."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from confluent_kafka import Producer

from hub.dead_letter import DeadLetterInfo
from hub.delivery import DeliveryRecord, derive_delivery_id
from hub.envelope import EventEnvelope, new_envelope
from hub.kafka_config import producer_config
from hub.topology import Topology
from hub.trail import TrailHop

PHONE = "+55 11 98765-4321"
EMAIL = "maria.silva@example.com"
NAME = "Maria Silva"


def delivery(
    destination: str = "crm",
    event_type: str = "lead.created",
    *,
    payload: dict[str, Any] | None = None,
    event_id: uuid.UUID | None = None,
    path: str = "/api/leads",
) -> DeliveryRecord:
    event_id = event_id or uuid.uuid4()
    return DeliveryRecord(
        delivery_id=derive_delivery_id(event_id, destination),
        event_id=event_id,
        event_type=event_type,
        source="site",
        destination=destination,
        priority=2,
        entity_key=f"lead-{event_id.hex[:8]}",
        path=path,
        payload=payload if payload is not None else {"nome": NAME, "telefone": PHONE, "email": EMAIL},
        created_at=datetime.now(UTC),
    )


def envelope(event_type: str = "lead.created") -> EventEnvelope:
    return new_envelope(
        type=event_type,
        source="site",
        priority=2,
        idempotency_key=f"form-{uuid.uuid4().hex[:8]}",
        data={"name": NAME, "phone": PHONE},
    )


class Seeder:
    def __init__(self, bootstrap: str, topology: Topology) -> None:
        self.topology = topology
        self.producer = Producer(producer_config(bootstrap, client_id="tests-seed"))
        self.positions: list[str] = []

    def _produce(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
        at: datetime | None = None,
    ) -> str:
        where: list[str] = []

        def done(err: Any, msg: Any) -> None:
            assert err is None, err
            where.append(f"{msg.partition()}:{msg.offset()}")

        self.producer.produce(topic, value=value, key=key, headers=headers, on_delivery=done, timestamp=_ms(at))
        assert self.producer.flush(60) == 0
        return where[0]

    def dead_letter(
        self,
        value: DeliveryRecord | EventEnvelope | bytes,
        *,
        reason: str = "http_400",
        status: int | None = 400,
        failed_at: datetime | None = None,
        attempts: int = 6,
        stage: str = "connectors",
        error: str = "HTTP 400 from destination",
    ) -> str:
        """Produce one dead-letter record; returns its DLQ id "<partition>:<offset>"."""
        failed_at = failed_at or datetime.now(UTC)
        if isinstance(value, DeliveryRecord):
            raw, key = value.to_json(), value.entity_key.encode()
            ids: dict[str, Any] = {
                "destination": value.destination,
                "event_id": str(value.event_id),
                "delivery_id": str(value.delivery_id),
                "event_type": value.event_type,
            }
            original = self.topology.retry_topics(value.destination)[-1]
        elif isinstance(value, EventEnvelope):
            raw, key = value.to_json(), value.kafka_key()
            ids = {"event_id": str(value.event_id), "event_type": value.type}
            original = self.topology.priority_topic(value.priority)
        else:
            raw, key, ids, original = value, None, {}, self.topology.priority_topic(3)
        info = DeadLetterInfo(
            stage=stage,
            reason=reason,
            permanent=status is not None and status < 500,  # type: ignore[arg-type]
            error_class="HTTPStatusError",
            error_message=error,
            original_topic=original,
            original_partition=0,
            original_offset=7,
            failed_at=failed_at,
            first_failed_at=failed_at - timedelta(minutes=5),
            attempts=attempts,
            last_status_code=status,
            **ids,
        )
        return self._produce(self.topology.dead_letter_topic, raw, key, info.to_headers(), at=failed_at)

    def attempt(
        self,
        record: DeliveryRecord,
        *,
        outcome: str,
        status: int | None,
        at: datetime,
        attempt: int = 1,
        latency_ms: float = 50.0,
        error: str | None = None,
    ) -> None:
        value = {
            "delivery_id": str(record.delivery_id),
            "event_id": str(record.event_id),
            "event_type": record.event_type,
            "destination": record.destination,
            "attempt": attempt,
            "status": status,
            "latency_ms": latency_ms,
            "outcome": outcome,
            "error": error,
            "at": at.isoformat(),
        }
        self.producer.produce(
            self.topology.system_topic("deliveries"),
            key=str(record.delivery_id).encode(),
            value=orjson.dumps(value),
            timestamp=_ms(at),
        )

    def hop(self, hop: TrailHop) -> None:
        self.producer.produce(
            self.topology.system_topic("trail"), key=hop.kafka_key(), value=hop.to_json(), timestamp=_ms(hop.at)
        )

    def health(self, key: str, value: dict[str, Any]) -> None:
        self.producer.produce(self.topology.system_topic("health"), key=key.encode(), value=orjson.dumps(value))

    def flush(self) -> None:
        assert self.producer.flush(60) == 0


def _ms(at: datetime | None) -> int:
    """A record's Kafka timestamp as the hub's producers set it: when the record was written, which is
    when the time it carries happened (0: librdkafka stamps it now)."""
    return int(at.timestamp() * 1000) if at is not None else 0
