"""The event trail index: hops by event_id, built from the trail topic, served on /v1/trail/{id}.

A Faust table (changelog partition = trail partition, so it follows the trail topic's assignment and
survives restarts). Each entry is the event's hops in arrival order, personal data masked at index
time. Retention: hops older than `retention` are dropped on read and swept from memory; the
changelog topic itself is compact+delete with the same retention.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from hub.masking import mask_data
from hub.trail import TrailHop

MAX_HOPS_PER_EVENT = 500  # a runaway retry loop must not grow one entry without bound


def hop_entry(hop: TrailHop) -> dict[str, Any]:
    entry = hop.model_dump(mode="json", exclude_none=True)
    entry["detail"] = mask_data(entry.get("detail") or {})
    return entry


def append_hop(hops: list[dict[str, Any]] | None, hop: TrailHop) -> list[dict[str, Any]]:
    current = list(hops or [])
    entry = hop_entry(hop)
    if entry in current:  # the same hop re-read after a restart
        return current
    current.append(entry)
    return current[-MAX_HOPS_PER_EVENT:]


def _at(entry: Mapping[str, Any]) -> datetime:
    try:
        value = datetime.fromisoformat(str(entry["at"]))
    except (KeyError, ValueError):
        return datetime.min.replace(tzinfo=UTC)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def visible_hops(hops: list[dict[str, Any]] | None, now: datetime, retention: timedelta) -> list[dict[str, Any]]:
    """Hops within retention, ordered by time (hops from several services interleave), masked again
    as a second line of defence."""
    cutoff = now - retention
    kept = [h for h in (hops or []) if _at(h) >= cutoff]
    kept.sort(key=_at)
    return [mask_data(h) for h in kept]


def expired(hops: Any, cutoff: datetime) -> bool:
    """An entry whose newest hop is older than the retention's cutoff (or an empty one)."""
    return not hops or max(_at(h) for h in hops) < cutoff
