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


def deliveries_record(
    record: DeliveryRecord,
    *,
    attempt: int,
    status: int | None,
    latency_ms: float | None,
    outcome: Outcome,
    error: str | None,
    at: datetime | str,
    ids: tuple[str, str] | None = None,
) -> tuple[bytes, bytes]:
    """(key, value) for the deliveries topic. `ids` = (str(delivery_id), str(event_id)) when the caller
    already has them; `at` may be given already formatted (isoformat)."""
    delivery_id, event_id = ids or (str(record.delivery_id), str(record.event_id))
    value = {
        "delivery_id": delivery_id,
        "event_id": event_id,
        "event_type": record.event_type,
        "destination": record.destination,
        "attempt": attempt,
        "status": status,
        "latency_ms": None if latency_ms is None else round(latency_ms, 2),
        "outcome": outcome,
        "error": None if error is None else mask_text(error)[:500],
        "at": at if isinstance(at, str) else at.isoformat(),
    }
    return delivery_id.encode(), orjson.dumps(value)


def trail_hop(
    record: DeliveryRecord,
    hop: str,
    *,
    at: datetime | str,
    attempt: int | None = None,
    status: int | None = None,
    latency_ms: float | None = None,
    detail: dict[str, Any] | None = None,
    ids: tuple[str, str] | None = None,
) -> tuple[bytes, bytes]:
    """(key, value) of a hub.trail.TrailHop for the trail topic (`ids`, `at`: see deliveries_record)."""
    delivery_id, event_id = ids or (str(record.delivery_id), str(record.event_id))
    value: dict[str, Any] = {
        "event_id": event_id,
        "hop": hop,
        "at": at if isinstance(at, str) else at.isoformat(),
        "service": SERVICE,
        "destination": record.destination,
        "delivery_id": delivery_id,
        "detail": detail or {},
    }
    if attempt is not None:
        value["attempt"] = attempt
    if status is not None:
        value["status"] = status
    if latency_ms is not None:
        value["latency_ms"] = round(latency_ms, 2)
    return event_id.encode(), orjson.dumps(value)


def delivered_rows(
    record: DeliveryRecord, ids: tuple[str, str], *, attempt: int, status: int | None, latency_ms: float, at: str
) -> tuple[tuple[bytes, bytes], tuple[bytes, bytes], tuple[bytes, bytes]]:
    """The three records of a successful attempt — the deliveries row, the `attempt` hop and the
    `delivered` hop — exactly as deliveries_record() and trail_hop() build them, without their generic
    argument handling (the common case, once per delivery; tests check both give the same bytes)."""
    delivery_id, event_id = ids
    latency = round(latency_ms, 2)
    destination = record.destination
    history = orjson.dumps(
        {
            "delivery_id": delivery_id,
            "event_id": event_id,
            "event_type": record.event_type,
            "destination": destination,
            "attempt": attempt,
            "status": status,
            "latency_ms": latency,
            "outcome": "delivered",
            "error": None,
            "at": at,
        }
    )
    tail: dict[str, Any] = {"attempt": attempt}
    if status is not None:
        tail["status"] = status
    tail["latency_ms"] = latency
    attempt_hop = orjson.dumps(
        {
            "event_id": event_id,
            "hop": "attempt",
            "at": at,
            "service": SERVICE,
            "destination": destination,
            "delivery_id": delivery_id,
            "detail": {"result": "success", "error_class": None},
            **tail,
        }
    )
    delivered_hop = orjson.dumps(
        {
            "event_id": event_id,
            "hop": "delivered",
            "at": at,
            "service": SERVICE,
            "destination": destination,
            "delivery_id": delivery_id,
            "detail": {},
            **tail,
        }
    )
    event_key = event_id.encode()
    return (delivery_id.encode(), history), (event_key, attempt_hop), (event_key, delivered_hop)
