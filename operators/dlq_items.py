"""One dead-letter record as the operator tools see it: its DLQ id ("<partition>:<offset>" of the
dead-letter topic), the DeadLetterInfo headers and the original value, parsed when it is a
DeliveryRecord (connectors) or an EventEnvelope (processors)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, Literal

import orjson
from pydantic import ValidationError

from hub.dead_letter import DeadLetterInfo
from hub.delivery import DeliveryRecord
from hub.envelope import EventEnvelope
from hub.masking import mask_data, mask_sent_values, mask_text
from operators.kafka_io import RawRecord

_DLQ_ID = re.compile(r"^(\d{1,6}):(\d{1,19})$")

ValueKind = Literal["delivery", "envelope", "json", "bytes"]


class BadDlqId(ValueError):
    pass


@dataclass(frozen=True, order=True)
class DlqId:
    partition: int
    offset: int

    @classmethod
    def parse(cls, text: str) -> DlqId:
        match = _DLQ_ID.match(text.strip())
        if not match:
            raise BadDlqId(f"{text!r} is not a DLQ id: use <partition>:<offset>, e.g. 0:42 (see `carinho dlq list`)")
        return cls(int(match.group(1)), int(match.group(2)))

    def __str__(self) -> str:
        return f"{self.partition}:{self.offset}"


def parse_value(value: bytes | None) -> tuple[ValueKind, DeliveryRecord | EventEnvelope | Any]:
    """Recognise what was dead-lettered; anything else stays raw (it can still be edited)."""
    if value is None:
        return "bytes", b""
    try:
        return "delivery", DeliveryRecord.from_json(value)
    except ValidationError:
        pass
    try:
        return "envelope", EventEnvelope.from_json(value)
    except ValidationError:
        pass
    try:
        return "json", orjson.loads(value)
    except orjson.JSONDecodeError:
        return "bytes", value


@dataclass(frozen=True)
class DlqItem:
    record: RawRecord

    @property
    def id(self) -> DlqId:
        return DlqId(self.record.partition, self.record.offset)

    @cached_property
    def info(self) -> DeadLetterInfo | None:
        """None when the headers do not follow the contract (then the item can still be listed)."""
        try:
            return DeadLetterInfo.from_headers(list(self.record.headers))
        except (TypeError, ValueError):
            return None

    @cached_property
    def parsed(self) -> tuple[ValueKind, Any]:
        return parse_value(self.record.value)

    @property
    def kind(self) -> ValueKind:
        return self.parsed[0]

    @property
    def delivery(self) -> DeliveryRecord | None:
        kind, value = self.parsed
        return value if kind == "delivery" else None

    @property
    def envelope(self) -> EventEnvelope | None:
        kind, value = self.parsed
        return value if kind == "envelope" else None

    @property
    def destination(self) -> str | None:
        if self.info and self.info.destination:
            return self.info.destination
        return self.delivery.destination if self.delivery else None

    @property
    def event_type(self) -> str | None:
        if self.info and self.info.event_type:
            return self.info.event_type
        if self.delivery:
            return self.delivery.event_type
        return self.envelope.type if self.envelope else None

    @property
    def event_id(self) -> str | None:
        if self.info and self.info.event_id:
            return self.info.event_id
        if self.delivery:
            return str(self.delivery.event_id)
        return str(self.envelope.event_id) if self.envelope else None

    @property
    def delivery_id(self) -> str | None:
        if self.info and self.info.delivery_id:
            return self.info.delivery_id
        return str(self.delivery.delivery_id) if self.delivery else None

    @property
    def reason(self) -> str:
        return self.info.reason if self.info else "unknown"

    @property
    def status_code(self) -> int | None:
        return self.info.last_status_code if self.info else None

    @property
    def failed_at(self) -> datetime:
        if self.info:
            at = self.info.failed_at
            return at if at.tzinfo else at.replace(tzinfo=UTC)
        return datetime.fromtimestamp(self.record.timestamp_ms / 1000, UTC)

    def summary(self) -> dict[str, Any]:
        """The list view: identifiers, routing and failure; no payload, nothing personal."""
        info = self.info
        return {
            "id": str(self.id),
            "failed_at": self.failed_at.isoformat(),
            "destination": self.destination,
            "event_type": self.event_type,
            "event_id": self.event_id,
            "delivery_id": self.delivery_id,
            "reason": self.reason,
            "status_code": self.status_code,
            "attempts": info.attempts if info else None,
            "stage": info.stage if info else None,
            "kind": self.kind,
        }

    def detail(self, *, reveal: bool) -> dict[str, Any]:
        """The show view: summary + headers + the value; personal data masked unless `reveal`."""
        info = self.info
        out = self.summary()
        out.update(
            {
                "original": {
                    "topic": info.original_topic,
                    "partition": info.original_partition,
                    "offset": info.original_offset,
                }
                if info
                else None,
                "first_failed_at": info.first_failed_at.isoformat() if info and info.first_failed_at else None,
                "permanent": info.permanent if info else None,
                "error_class": info.error_class if info else None,
                "error_message": self.error_text(),
                "key": self.key_text(reveal=reveal),
                "value": value_view(self.record.value, reveal=reveal),
            }
        )
        return out

    def error_text(self) -> str | None:
        """The last error, masked: its patterns (phones, e-mails, CPFs), and the names and free text of
        the record's own value, which destinations echo back ("contact Maria Souza already exists")
        and a dead letter written before the connectors masked them may still hold."""
        info = self.info
        if info is None:
            return None
        text = mask_text(info.error_message)
        try:
            sent = orjson.loads(self.record.value) if self.record.value else None
        except orjson.JSONDecodeError:
            return text
        return mask_sent_values(text, sent)

    def key_text(self, *, reveal: bool) -> str | None:
        if self.record.key is None:
            return None
        text = self.record.key.decode("utf-8", "replace")
        return text if reveal else mask_text(text)


def value_view(value: bytes | None, *, reveal: bool) -> Any:
    """A JSON value as JSON (masked unless reveal); undecodable bytes as a short description."""
    if value is None:
        return None
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError:
        if reveal:
            return {"raw": value.decode("utf-8", "replace")}
        return {"raw": f"[{len(value)} bytes, not JSON]"}
    return data if reveal else mask_data(data)
