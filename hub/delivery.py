"""The delivery record: what processors write to deliver.<destination> (one per destination per
event) and connectors consume, retry (deliver.<destination>.retry.<n>) and dead-letter.

Kafka key = `entity_key` so deliveries about the same entity keep their order on one partition.
The HTTP `Idempotency-Key` sent to the destination is `delivery_id`, stable across retries and replays.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

DELIVERY_ID_NAMESPACE = uuid.UUID("0b6e9a4c-2f1d-5e57-8c11-64656c697672")

# WhatsApp message kinds (for the SMS fallback rules in topics.yaml destinations.whatsapp.fallback).
MessageType = Literal["lead_auto_reply", "feedback_request", "generic"]


def derive_delivery_id(event_id: uuid.UUID | str, destination: str, variant: str = "") -> uuid.UUID:
    """Deterministic: re-routing the same event to the same destination gives the same delivery_id,
    so a processor restart that re-emits a delivery is deduplicated by the destination."""
    return uuid.uuid5(DELIVERY_ID_NAMESPACE, f"{event_id}\x1f{destination}\x1f{variant}")


class DeliveryRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    delivery_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    source: str
    destination: str
    priority: int = Field(ge=1, le=5)
    entity_key: str = Field(description="Kafka key: deliveries for one entity stay in order")
    method: Literal["POST", "PUT", "PATCH"] = "POST"
    path: str = Field(pattern=r"^/")
    payload: dict[str, Any]
    message_type: MessageType | None = None  # whatsapp/sms only
    created_at: datetime
    not_before: datetime | None = Field(default=None, description="delayed messages: do not send earlier")

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json", exclude_none=True))

    @classmethod
    def from_json(cls, raw: bytes | str) -> DeliveryRecord:
        return cls.model_validate_json(raw)

    def kafka_headers(self) -> list[tuple[str, bytes]]:
        return [
            ("delivery_id", str(self.delivery_id).encode()),
            ("event_id", str(self.event_id).encode()),
            ("event_type", self.event_type.encode()),
            ("destination", self.destination.encode()),
            ("priority", str(self.priority).encode()),
        ]
