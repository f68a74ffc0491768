"""The dead-letter record contract, shared by connectors (delivery failures), processors (invalid
records, transform failures) and the operators' `carinho dlq` tool.

Value: the original record's bytes, unchanged (a DeliveryRecord, an EventEnvelope, or whatever
garbage arrived). Key: the original key. Headers (all UTF-8): see `DeadLetterInfo`. Error messages
must not contain personal data: build them from status codes and exception classes, and pass any
free text through hub.masking.mask_text.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Literal

from hub.masking import mask_text

PREFIX = "dlq."
Stage = Literal["processors", "connectors"]


@dataclass(frozen=True)
class DeadLetterInfo:
    stage: Stage  # who dead-lettered it
    # short machine-friendly reason: "http_400", "retries_exhausted", "invalid_envelope", "transform_failed"...
    reason: str
    permanent: bool  # permanent failure (no point retrying as is) vs transient exhausted
    error_class: str  # e.g. "HTTPStatusError", "ValidationError", "ConnectTimeout"
    error_message: str  # masked, <= 500 chars
    original_topic: str
    original_partition: int
    original_offset: int
    failed_at: datetime  # last failure
    first_failed_at: datetime | None = None
    destination: str | None = None
    event_id: str | None = None
    delivery_id: str | None = None
    event_type: str | None = None
    attempts: int = 0
    last_status_code: int | None = None

    def to_headers(self) -> list[tuple[str, bytes]]:
        out: list[tuple[str, bytes]] = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if isinstance(value, datetime):
                text = value.isoformat()
            elif isinstance(value, bool):
                text = "true" if value else "false"
            elif f.name == "error_message":
                text = mask_text(str(value))[:500]
            else:
                text = str(value)
            out.append((PREFIX + f.name, text.encode()))
        return out

    @classmethod
    def from_headers(cls, headers: list[tuple[str, bytes]] | dict[str, bytes] | None) -> DeadLetterInfo:
        raw = dict(headers or {})
        values: dict[str, object] = {}
        for f in fields(cls):
            data = raw.get(PREFIX + f.name)
            if data is None:
                continue
            text = data.decode() if isinstance(data, bytes) else str(data)
            if f.name in {"failed_at", "first_failed_at"}:
                values[f.name] = datetime.fromisoformat(text)
            elif f.name == "permanent":
                values[f.name] = text == "true"
            elif f.name in {"original_partition", "original_offset", "attempts", "last_status_code"}:
                values[f.name] = int(text)
            else:
                values[f.name] = text
        return cls(**values)  # type: ignore[arg-type]
