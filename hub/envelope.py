"""The event envelope: the one record shape on events.p1..p5, for the ingress and internal producers.

Kafka key = idempotency key (so retries of one event land on one partition, in order); the fields
routers and operators filter on are repeated as headers. The JSON Schema published in
docs/envelope.schema.json is generated from `EventEnvelope` (tests fail if it drifts).
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, overload

import orjson
from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION: Literal[1] = 1

# Namespace for deterministic event ids: uuid5(namespace, "<source>\x1f<idempotency key>").
EVENT_ID_NAMESPACE = uuid.UUID("6f1c2b7e-4a55-5b8e-9d8e-63617269686f")

IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,200}$"  # printable ASCII, no spaces, 1-200 chars


class Utm(BaseModel):
    """Campaign attribution (analysis 3.4): travels with the lead to CRM and Marketing."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str | None = Field(default=None, max_length=200)
    medium: str | None = Field(default=None, max_length=200)
    campaign: str | None = Field(default=None, max_length=200)
    term: str | None = Field(default=None, max_length=200)
    content: str | None = Field(default=None, max_length=200)


class Metadata(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    request_id: str | None = Field(default=None, max_length=200)
    utm: Utm | None = None
    labels: dict[str, str] = Field(default_factory=dict, max_length=50)


class _EventIdText:
    """`EventEnvelope.event_id_str`: `str(event_id)`, computed once per envelope (the processors need it
    several times per event; not a field, so equality, dumps and the JSON schema are unchanged). What
    `functools.cached_property` does, without its per-instance lock on Python 3.11 (py-spy: ~3 % of the
    routing worker's samples, for a value an envelope computes once)."""

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> _EventIdText: ...
    @overload
    def __get__(self, instance: EventEnvelope, owner: type | None = None) -> str: ...
    def __get__(self, instance: EventEnvelope | None, owner: type | None = None) -> str | _EventIdText:
        if instance is None:
            return self
        text = str(instance.event_id)
        instance.__dict__["event_id_str"] = text  # found before this descriptor from now on
        return text


class EventEnvelope(BaseModel):
    """One business event as it travels through the hub."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={"$id": "https://carinho.example/schemas/event-envelope.v1.json"},
    )

    schema_version: Literal[1] = SCHEMA_VERSION
    event_id: uuid.UUID = Field(description="uuid5 of (source, idempotency_key): the same key gives the same id")
    type: str = Field(pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$", examples=["lead.created"])
    source: str = Field(pattern=r"^[a-z][a-z0-9_-]*$", examples=["site"])
    priority: int = Field(ge=1, le=5, description="1 critical .. 5 bulk; selects events.p{priority}")
    idempotency_key: str = Field(pattern=IDEMPOTENCY_KEY_PATTERN)
    occurred_at: datetime = Field(description="when it happened at the source (UTC)")
    received_at: datetime = Field(description="when the hub accepted it (UTC)")
    data: dict[str, Any]
    metadata: Metadata = Metadata()

    event_id_str: ClassVar[_EventIdText] = _EventIdText()

    def to_json(self) -> bytes:
        # Hand-built: this runs once per event on the ingress hot path, and pydantic's generic
        # serializer costs several times more. Equal to model_dump(mode="json", exclude_none=True).
        return orjson.dumps(self._as_dict(self.occurred_at, self.received_at), option=orjson.OPT_UTC_Z)

    def to_document(self) -> dict[str, Any]:
        """The envelope as its JSON reads back (`orjson.loads(self.to_json())`), without writing and
        parsing it: what the routes' transforms walk, once per routed event. `data` is the envelope's
        own (not a copy): transforms and hooks only read it (processors/transforms/hooks.py)."""
        return self._as_dict(json_time(self.occurred_at), json_time(self.received_at))

    def _as_dict(self, occurred_at: Any, received_at: Any) -> dict[str, Any]:
        metadata: dict[str, Any] = {"labels": dict(self.metadata.labels)}
        if self.metadata.request_id is not None:
            metadata["request_id"] = self.metadata.request_id
        if self.metadata.utm is not None:
            metadata["utm"] = {k: v for k, v in self.metadata.utm.__dict__.items() if v is not None}
        return {
            "schema_version": self.schema_version,
            "event_id": self.event_id_str,
            "type": self.type,
            "source": self.source,
            "priority": self.priority,
            "idempotency_key": self.idempotency_key,
            "occurred_at": occurred_at,
            "received_at": received_at,
            "data": self.data,
            "metadata": metadata,
        }

    def kafka_key(self) -> bytes:
        return self.idempotency_key.encode()

    def kafka_headers(self) -> list[tuple[str, bytes]]:
        headers = [
            ("event_id", self.event_id_str.encode()),
            ("event_type", self.type.encode()),
            ("source", self.source.encode()),
            ("priority", str(self.priority).encode()),
            ("schema_version", str(self.schema_version).encode()),
            ("content-type", b"application/json"),
        ]
        if self.metadata.request_id:
            headers.append(("request_id", self.metadata.request_id.encode()))
        return headers

    @classmethod
    def from_json(cls, raw: bytes | str) -> EventEnvelope:
        return cls.model_validate_json(raw)


def json_time(value: datetime) -> str:
    """A datetime as `to_json` writes it (orjson's own text: UTC as Z, other offsets kept; the same as
    `isoformat()` with "+00:00" written "Z", at a third of its cost)."""
    return orjson.dumps(value, option=orjson.OPT_UTC_Z)[1:-1].decode()


def derive_event_id(source: str, idempotency_key: str) -> uuid.UUID:
    """Deterministic: a retried request (same source, same key) gets the same event_id."""
    return uuid.uuid5(EVENT_ID_NAMESPACE, f"{source}\x1f{idempotency_key}")


_EVENT_ID_SHA1 = hashlib.sha1(EVENT_ID_NAMESPACE.bytes, usedforsecurity=False)


def derive_event_id_str(source: str, idempotency_key: str) -> str:
    """`str(derive_event_id(...))` without building UUID objects (the batch ingress hot path)."""
    digest = _EVENT_ID_SHA1.copy()
    digest.update(f"{source}\x1f{idempotency_key}".encode())
    raw = bytearray(digest.digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x50  # version 5
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_envelope(
    *,
    type: str,
    source: str,
    priority: int,
    idempotency_key: str,
    data: dict[str, Any],
    occurred_at: datetime | None = None,
    metadata: Metadata | None = None,
    received_at: datetime | None = None,
) -> EventEnvelope:
    """Build an envelope the way the ingress does; internal producers call this too."""
    now = received_at or utc_now()
    return EventEnvelope(
        event_id=derive_event_id(source, idempotency_key),
        type=type,
        source=source,
        priority=priority,
        idempotency_key=idempotency_key,
        occurred_at=occurred_at or now,
        received_at=now,
        data=data,
        metadata=metadata or Metadata(),
    )


def envelope_json_schema() -> dict[str, Any]:
    return EventEnvelope.model_json_schema(mode="serialization")
