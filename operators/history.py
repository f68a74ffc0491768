"""Readers of the records other services write: delivery attempts (deliveries topic) and health
states (health topic). Tolerant: a record that does not follow the contract is skipped, not fatal."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

OUTCOMES = frozenset({"delivered", "retry", "dead_letter", "fallback", "skipped_duplicate"})
SUCCESS_OUTCOMES = frozenset({"delivered", "skipped_duplicate"})
FAILED_ATTEMPT_OUTCOMES = frozenset({"retry", "dead_letter", "fallback"})


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Attempt:
    delivery_id: str
    event_id: str
    event_type: str | None
    destination: str
    attempt: int
    status: int | None
    latency_ms: float | None
    outcome: str
    error: str | None
    at: datetime

    @property
    def failure_label(self) -> str:
        """What went wrong, without personal data: the HTTP status or 'no response'."""
        return f"http_{self.status}" if self.status is not None else "no_response"


def parse_attempt(value: bytes | None) -> Attempt | None:
    if not value:
        return None
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    at = parse_time(data.get("at"))
    outcome = data.get("outcome")
    if at is None or outcome not in OUTCOMES or not data.get("delivery_id") or not data.get("destination"):
        return None
    status = data.get("status")
    latency = data.get("latency_ms")
    attempt = data.get("attempt")
    return Attempt(
        delivery_id=str(data["delivery_id"]),
        event_id=str(data.get("event_id") or ""),
        event_type=data.get("event_type") if isinstance(data.get("event_type"), str) else None,
        destination=str(data["destination"]),
        attempt=attempt if isinstance(attempt, int) else 0,
        status=status if isinstance(status, int) else None,
        latency_ms=float(latency) if isinstance(latency, int | float) else None,
        outcome=outcome,
        error=data.get("error") if isinstance(data.get("error"), str) else None,
        at=at,
    )


def parse_health(key: bytes | None, value: bytes | None) -> tuple[str, str, dict[str, Any]] | None:
    """("destination"|"sync", name, state) from a health record; None for tombstones and junk."""
    if key is None or value is None:
        return None
    kind, _, name = key.decode("utf-8", "replace").partition(":")
    if kind not in {"destination", "sync"} or not name:
        return None
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    return (kind, name, data) if isinstance(data, dict) else None
