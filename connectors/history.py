"""Delivery history (one record per attempt on the deliveries topic, key = delivery_id) and the
TrailHop records the connectors add to an event's trail (key = event_id). Both are built as plain
dicts + orjson (this is the per-delivery hot path); tests check they parse as the shared models."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import orjson

from hub.delivery import DeliveryRecord
from hub.masking import mask_text

Outcome = Literal["delivered", "retry", "dead_letter", "fallback", "skipped_duplicate"]
SERVICE = "connectors"


def deliveries_record(record: DeliveryRecord, *, attempt: int, status: int | None, latency_ms: float | None,
                      outcome: Outcome, error: str | None, at: datetime) -> tuple[bytes, bytes]:
    """(key, value) for the deliveries topic."""
    value = {
        "delivery_id": str(record.delivery_id),
        "event_id": str(record.event_id),
        "event_type": record.event_type,
        "destination": record.destination,
        "attempt": attempt,
        "status": status,
        "latency_ms": None if latency_ms is None else round(latency_ms, 2),
        "outcome": outcome,
        "error": None if error is None else mask_text(error)[:500],
        "at": at.isoformat(),
    }
    return str(record.delivery_id).encode(), orjson.dumps(value)


def trail_hop(record: DeliveryRecord, hop: str, *, at: datetime, attempt: int | None = None,
              status: int | None = None, latency_ms: float | None = None,
              detail: dict[str, Any] | None = None) -> tuple[bytes, bytes]:
    """(key, value) of a hub.trail.TrailHop for the trail topic."""
    value: dict[str, Any] = {
        "event_id": str(record.event_id),
        "hop": hop,
        "at": at.isoformat(),
        "service": SERVICE,
        "destination": record.destination,
        "delivery_id": str(record.delivery_id),
        "detail": detail or {},
    }
    if attempt is not None:
        value["attempt"] = attempt
    if status is not None:
        value["status"] = status
    if latency_ms is not None:
        value["latency_ms"] = round(latency_ms, 2)
    return str(record.event_id).encode(), orjson.dumps(value)
