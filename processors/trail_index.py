"""The event trail index: hops by event_id, built from the trail topic, served on /v1/trail/{id}.

A Faust table (changelog partition = trail partition, so it follows the trail topic's assignment and
survives restarts) with **one entry per hop**, keyed `<event_id>/<trail partition>/<trail offset>`:
indexing a hop is one write and one changelog record of that hop alone, and an event's trail is
read with a prefix scan of the table on disk. Why not one entry per event (the hop list): every hop
then read the list back, appended to it and wrote all of it again, to the store and to the changelog,
so an event's cost and changelog bytes grew with the square of its hops (a lead's ~8 hops arrive in
several indexer batches). The record's own position as the key also makes a hop re-read after a
restart overwrite itself instead of being added twice.

Personal data is masked at index time. Retention: hops older than `retention` are dropped on read
and swept from the table; the changelog topic itself is compact+delete with the same retention.
Entries written before this layout (an event's hop list under the bare event id) are still read
and swept.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from hub.masking import mask_data
from hub.trail import TrailHop
from processors.state_store import RocksMapping

MAX_HOPS_SHOWN = 500  # a runaway retry loop must not make one answer unbounded: the newest are shown


def hop_key(event_id: str, partition: int, offset: int) -> bytes:
    """Offsets zero-padded so one partition's hops sort in arrival order."""
    return f"{event_id}/{partition}/{offset:012d}".encode()


def index_entry(raw: bytes) -> tuple[str, dict[str, Any]]:
    """A trail record's event id and its table entry; raises when it is not a valid TrailHop.

    The model only validates: the entry is the record's own JSON (TrailHop.to_json writes what
    `model_dump(mode="json", exclude_none=True)` would), which costs a fraction of a model_dump."""
    hop = TrailHop.from_json(raw)
    entry = {key: value for key, value in orjson.loads(raw).items() if value is not None}
    entry["detail"] = mask_data(entry.get("detail") or {})
    return str(hop.event_id), entry


def put(store: MutableMapping[Any, Any], key: bytes, entry: dict[str, Any], encoded: bytes) -> None:
    """Write an entry whose JSON is already made (for the changelog): a table on disk stores those
    bytes instead of encoding the entry a second time."""
    if isinstance(store, RocksMapping):
        store.put_encoded(key, encoded)
    else:
        store[key] = entry


def event_hops(store: Mapping[Any, Any], event_id: str) -> list[dict[str, Any]]:
    """Every indexed hop of one event, in key order (unsorted in time)."""
    prefix = f"{event_id}/".encode()
    if isinstance(store, RocksMapping):
        found = [entry for _key, entry in store.items_with_prefix(prefix)]
    else:  # the in-memory store (tests, the memory benchmark): a walk of every key
        found = [entry for key, entry in list(store.items()) if isinstance(key, bytes) and key.startswith(prefix)]
    legacy = store.get(event_id.encode())  # an event's hop list, as indexed before one entry per hop
    return [*legacy, *found] if isinstance(legacy, list) else found


def _at(entry: Mapping[str, Any]) -> datetime:
    try:
        value = datetime.fromisoformat(str(entry["at"]))
    except (KeyError, ValueError):
        return datetime.min.replace(tzinfo=UTC)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def visible_hops(hops: Iterable[dict[str, Any]] | None, now: datetime, retention: timedelta) -> list[dict[str, Any]]:
    """Hops within retention, ordered by time (hops from several services interleave), at most the
    newest MAX_HOPS_SHOWN, masked again as a second line of defence. Every `at` is shown in one form,
    UTC with "Z" (the services write "Z" or "+00:00"; a trace mixing both reads as two clocks)."""
    cutoff = now - retention
    timed = [(_at(h), h) for h in (hops or [])]
    kept = sorted((item for item in timed if item[0] >= cutoff), key=lambda item: item[0])
    return [mask_data({**h, "at": _utc_z(at)}) for at, h in kept[-MAX_HOPS_SHOWN:]]


def _utc_z(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def expired(value: Any, cutoff: datetime) -> bool:
    """A hop older than the retention's cutoff; for an entry of the old layout (a hop list), one
    whose newest hop is (or an empty one)."""
    if isinstance(value, dict):
        return _at(value) < cutoff
    return not value or max(_at(h) for h in value) < cutoff
