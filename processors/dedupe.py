"""Dedupe by (source, idempotency key) over a window (default 7 days).

State lives in a Faust table whose changelog partition is the event's own partition, so it moves with
the partition on rebalance and is rebuilt from the changelog after a restart. Each entry remembers the
record (topic, partition, offset) that first carried the key: seeing that same record again means the
worker crashed before committing and must route it again (same delivery ids, so destinations dedupe),
while the same key in a *different* record is a real duplicate and is dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any


class Verdict(Enum):
    NEW = "new"
    DUPLICATE = "duplicate"
    REDELIVERY = "redelivery"  # the very record seen before a crash: route again


def dedupe_key(source: str, idempotency_key: str) -> str:
    return f"{source}\x1f{idempotency_key}"


@dataclass(frozen=True)
class RecordRef:
    topic: str
    partition: int
    offset: int


def entry(ref: RecordRef, now: float, event_id: str) -> dict[str, Any]:
    return {"at": now, "topic": ref.topic, "partition": ref.partition, "offset": ref.offset, "event_id": event_id}


def judge(seen: Mapping[str, Any] | None, ref: RecordRef, now: float, window_seconds: float) -> Verdict:
    if not seen or expired(seen, now, window_seconds):  # unreadable entries too: rather than drop an event
        return Verdict.NEW
    if (seen.get("topic"), seen.get("partition"), seen.get("offset")) == (ref.topic, ref.partition, ref.offset):
        return Verdict.REDELIVERY
    return Verdict.DUPLICATE


def expired(value: Any, now: float, window_seconds: float) -> bool:
    """An entry the window no longer covers (or an unreadable one)."""
    try:
        return now - float(value["at"]) >= window_seconds
    except (KeyError, TypeError, ValueError):
        return True
