"""The delivery record: what processors write to deliver.<destination> (one per destination per
event) and connectors consume, retry (deliver.<destination>.retry.<n>) and dead-letter.

Kafka key = `entity_key` so deliveries about the same entity keep their order on one partition.
The HTTP `Idempotency-Key` sent to the destination is `delivery_id`, stable across retries and replays.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

DELIVERY_ID_NAMESPACE = uuid.UUID("0b6e9a4c-2f1d-5e57-8c11-64656c697672")

# WhatsApp message kinds (for the SMS fallback rules in topics.yaml destinations.whatsapp.fallback).
MessageType = Literal["lead_auto_reply", "feedback_request", "generic"]


_DELIVERY_SHA1 = hashlib.sha1(DELIVERY_ID_NAMESPACE.bytes, usedforsecurity=False)
_VERSION_5_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))
_VERSION_5_SET = (0x8000 << 48) | (5 << 76)


def derive_delivery_id(event_id: uuid.UUID | str, destination: str, variant: str = "") -> uuid.UUID:
    """Deterministic: re-routing the same event to the same destination gives the same delivery_id,
    so a processor restart that re-emits a delivery is deduplicated by the destination.

    Equal to `uuid.uuid5(DELIVERY_ID_NAMESPACE, f"{event_id}\x1f{destination}\x1f{variant}")`, built
    without UUID.__init__'s checks (this runs once per delivery on the processors' hot path)."""
    digest = _DELIVERY_SHA1.copy()
    digest.update(f"{event_id}\x1f{destination}\x1f{variant}".encode())
    value = (int.from_bytes(digest.digest()[:16]) & _VERSION_5_CLEAR) | _VERSION_5_SET
    result = _new(_UUID)
    _set(result, "int", value)
    _set(result, "is_safe", _UNKNOWN)
    return result


# Looked up once: `uuid.SafeUUID.unknown` (a module and an enum attribute) and the rest per call cost
# 2.9 -> 2.2 µs a delivery id (timeit commands in docs/benchmarks.md, twentieth session).
_new, _set, _UUID, _UNKNOWN = object.__new__, object.__setattr__, uuid.UUID, uuid.SafeUUID.unknown


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

    @classmethod
    def from_router(
        cls,
        *,
        delivery_id: uuid.UUID,
        event_id: uuid.UUID,
        event_type: str,
        source: str,
        destination: str,
        priority: int,
        entity_key: str,
        method: Literal["POST", "PUT", "PATCH"] = "POST",
        path: str,
        payload: dict[str, Any],
        message_type: MessageType | None = None,
        created_at: datetime,
        not_before: datetime | None = None,
    ) -> DeliveryRecord:
        """A record from values the processors already validated (the envelope, topics.yaml's route,
        the router's own ids), built without validating them again: 2.8 µs a delivery against 3.6 µs for
        `DeliveryRecord(...)` (and `model_construct` costs more than that; timeit commands in
        docs/benchmarks.md, twentieth session). Equal to the
        validated record (tests/unit/hub check it field by field and as JSON)."""
        record = object.__new__(cls)
        fields = {
            "schema_version": 1,
            "delivery_id": delivery_id,
            "event_id": event_id,
            "event_type": event_type,
            "source": source,
            "destination": destination,
            "priority": priority,
            "entity_key": entity_key,
            "method": method,
            "path": path,
            "payload": payload,
            "message_type": message_type,
            "created_at": created_at,
            "not_before": not_before,
        }
        object.__setattr__(record, "__dict__", fields)
        fields_set = set(_ALWAYS_SET)
        if message_type is not None:
            fields_set.add("message_type")
        if not_before is not None:
            fields_set.add("not_before")
        object.__setattr__(record, "__pydantic_fields_set__", fields_set)
        object.__setattr__(record, "__pydantic_extra__", None)
        object.__setattr__(record, "__pydantic_private__", None)
        return record

    def to_json(self) -> bytes:
        # Hand-built (once per delivery on the processors' hot path; pydantic's generic serializer costs
        # several times more). Equal to orjson.dumps(model_dump(mode="json", exclude_none=True)): orjson
        # writes UUIDs and datetimes (OPT_UTC_Z) as pydantic does; any other payload value orjson cannot
        # write natively falls back to pydantic.
        record: dict[str, Any] = {
            "schema_version": self.schema_version,
            "delivery_id": self.delivery_id,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "source": self.source,
            "destination": self.destination,
            "priority": self.priority,
            "entity_key": self.entity_key,
            "method": self.method,
            "path": self.path,
            "payload": self.payload,
        }
        if self.message_type is not None:
            record["message_type"] = self.message_type
        record["created_at"] = self.created_at
        if self.not_before is not None:
            record["not_before"] = self.not_before
        try:
            return orjson.dumps(record, option=orjson.OPT_UTC_Z)
        except TypeError:
            return orjson.dumps(self.model_dump(mode="json", exclude_none=True))

    @classmethod
    def from_json(cls, raw: bytes | str) -> DeliveryRecord:
        return cls.model_validate_json(raw)

    def kafka_headers(self, event_id: str | None = None) -> list[tuple[str, bytes]]:
        """`event_id`: the event id's text when the caller has it (the router: UUID.__str__ runs in
        Python, once per delivery otherwise)."""
        return [
            ("delivery_id", str(self.delivery_id).encode()),
            ("event_id", (event_id or str(self.event_id)).encode()),
            ("event_type", self.event_type.encode()),
            ("destination", self.destination.encode()),
            ("priority", str(self.priority).encode()),
        ]


# The fields a `from_router` record says were set: those its JSON holds, as for a record read back from
# it (the optional ones only when given).
_ALWAYS_SET = frozenset(DeliveryRecord.model_fields) - {"message_type", "not_before"}
