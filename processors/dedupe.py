"""Dedupe by (source, idempotency key) over a window (default 7 days).

State lives in a Faust table whose changelog partition is the event's own partition, so it moves with
the partition on rebalance and is rebuilt from the changelog after a restart. Each entry remembers the
record (topic, partition, offset) that first carried the key: seeing that same record again means the
worker crashed before committing and must route it again (same delivery ids, so destinations dedupe),
while the same key in a *different* record is a real duplicate and is dropped.

The entry also keeps a fingerprint of what the first record asked for (its type and data), so a
duplicate that carries something else — a client that reused an idempotency key for new data — is
told apart from a retry: it is still dropped (the first body wins), but visibly (`conflicts`).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from enum import Enum
from typing import Any, NamedTuple

import orjson


class Verdict(Enum):
    NEW = "new"
    DUPLICATE = "duplicate"
    REDELIVERY = "redelivery"  # the very record seen before a crash: route again


def dedupe_key(source: str, idempotency_key: str) -> str:
    return f"{source}\x1f{idempotency_key}"


class RecordRef(NamedTuple):
    """Where a record was read (a tuple: built once per routed event, at a third of a frozen
    dataclass's cost)."""

    topic: str
    partition: int
    offset: int


def entry(ref: RecordRef, now: float, event_id: str, fingerprint: int) -> dict[str, Any]:
    return {
        "at": now,
        "topic": ref.topic,
        "partition": ref.partition,
        "offset": ref.offset,
        "event_id": event_id,
        "fp": fingerprint,
    }


def fingerprint(event_type: str, data: Any) -> int:
    """What a client asked for under its key: the type and the data (not the times, ids or metadata a
    retry may change), as a CRC-32 of the data's JSON with sorted keys (a retry may order them
    differently). A checksum, not a secret: it only tells a retry from a reused key."""
    return zlib.crc32(orjson.dumps(data, option=orjson.OPT_SORT_KEYS, default=str), zlib.crc32(event_type.encode()))


def conflicts(seen: Mapping[str, Any], fingerprint: int) -> bool:
    """A duplicate whose first record asked for something else (entries from before fingerprints: no)."""
    first = seen.get("fp")
    return first is not None and first != fingerprint


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
