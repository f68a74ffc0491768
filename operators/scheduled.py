"""Delayed messages (the feedback request 2 h after a service) as the processors hold them: read from
their schedule table's changelog, the latest state per delivery id. The payload (phone, message) is
never returned; operators see what waits, for which event and destination, and when it is due."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import orjson

from hub.topology import Topology, changelog_topic
from operators.kafka_io import RawRecord, TopicMissing, scan_topic

TABLE = "scheduled"  # processors.app.Processors' schedule table


@dataclass(frozen=True)
class ScheduledMessage:
    delivery_id: str
    state: str  # pending | fired (released to its destination)
    due_at: datetime | None
    fired_at: datetime | None
    event_id: str | None
    event_type: str | None
    destination: str | None
    message_type: str | None

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for name in ("due_at", "fired_at"):
            out[name] = out[name].isoformat() if out[name] is not None else None
        return out


def latest_states(records: Iterable[RawRecord]) -> list[ScheduledMessage]:
    """The newest entry per key of a changelog read in offset order (a tombstone drops its key), as
    ScheduledMessages sorted by due time. Entries that are not a schedule record are skipped."""
    latest: dict[bytes, dict[str, Any] | None] = {}
    for record in records:
        if record.key is None:
            continue
        try:
            value = orjson.loads(record.value) if record.value else None
        except orjson.JSONDecodeError:
            continue
        latest[record.key] = value if isinstance(value, dict) else None
    found = [message for key, value in latest.items() if value and (message := _message(key, value))]
    return sorted(found, key=lambda m: (m.due_at is None, m.due_at or datetime.min, m.delivery_id))


def _message(key: bytes, value: dict[str, Any]) -> ScheduledMessage | None:
    delivery = value.get("delivery")
    if not isinstance(delivery, dict) or value.get("state") not in ("pending", "fired"):
        return None
    return ScheduledMessage(
        delivery_id=key.decode("utf-8", "replace").strip('"'),  # raw or JSON-encoded keys
        state=str(value["state"]),
        due_at=_time(value.get("due_at")),
        fired_at=_time(value.get("fired_at")),
        event_id=_text(delivery.get("event_id")),
        event_type=_text(delivery.get("event_type")),
        destination=_text(delivery.get("destination")),
        message_type=_text(delivery.get("message_type")),
    )


def _time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _text(value: Any) -> str | None:
    return str(value) if value is not None else None


def read_scheduled(topology: Topology, bootstrap: str, timeout: float = 60.0) -> list[ScheduledMessage]:
    """Every delayed message the processors remember (pending, and released within the last 8 days)."""
    topic = changelog_topic(topology.router_group, TABLE)
    try:
        return latest_states(scan_topic(bootstrap, topic, timeout=timeout))
    except TopicMissing:  # not `carinho topics apply`'s: the processors create their tables' changelogs
        raise TopicMissing(
            f"topic {topic!r} does not exist yet: the processors create it when they first start "
            "(`make up`, `carinho processors`); until then nothing is scheduled"
        ) from None
