"""The event trail: every hop of every event, on the trail topic (keyed by event_id so one event's
hops are ordered on one partition). Written by the ingress, processors and connectors; read by
`GET /v1/events/{event_id}` and `carinho trace`. Details never carry personal data."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict

Hop = Literal[
    "accepted",  # ingress: persisted on events.p{n}
    "duplicate_dropped",  # processors: same (source, idempotency key) seen in the dedupe window;
    # connectors: this delivery_id was already delivered (detail.reason "already_delivered")
    "invalid",  # processors: not a valid envelope -> dead letter
    "routed",  # processors: deliveries emitted (detail.destinations)
    "scheduled",  # processors: delayed message parked until not_before
    "attempt",  # connectors: one HTTP attempt (status, latency)
    "retry_scheduled",  # connectors: moved to a retry tier
    "fallback",  # connectors: WhatsApp -> SMS
    "delivered",  # connectors: destination answered 2xx
    "dead_lettered",  # connectors/processors: moved to the dead-letter topic
    "replayed",  # operators: replayed from the dead-letter topic
]


class TrailHop(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: uuid.UUID
    hop: Hop
    at: datetime
    service: str
    destination: str | None = None
    delivery_id: uuid.UUID | None = None
    attempt: int | None = None
    status: int | None = None
    latency_ms: float | None = None
    detail: dict[str, Any] = {}

    def to_json(self) -> bytes:
        # Hand-built (every hop of every event is one of these). Equal to
        # orjson.dumps(model_dump(mode="json", exclude_none=True)); see DeliveryRecord.to_json.
        record: dict[str, Any] = {"event_id": self.event_id, "hop": self.hop, "at": self.at, "service": self.service}
        for name in ("destination", "delivery_id", "attempt", "status", "latency_ms"):
            value = getattr(self, name)
            if value is not None:
                record[name] = value
        record["detail"] = self.detail
        try:
            return orjson.dumps(record, option=orjson.OPT_UTC_Z)
        except TypeError:
            return orjson.dumps(self.model_dump(mode="json", exclude_none=True))

    def kafka_key(self) -> bytes:
        return str(self.event_id).encode()

    @classmethod
    def from_json(cls, raw: bytes | str) -> TrailHop:
        return cls.model_validate_json(raw)
