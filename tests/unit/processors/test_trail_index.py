"""The trail index's entries (processors/trail_index.py): one per hop, keyed by the trail record's
position, masked, read back per event from the table on disk and from the in-memory store."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from hub.trail import TrailHop
from processors import trail_index
from processors.state_store import RocksMapping

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def hop(event_id: uuid.UUID, name: str, seconds: float, **fields: Any) -> TrailHop:
    return TrailHop(event_id=event_id, hop=name, at=NOW + timedelta(seconds=seconds), service="test", **fields)


def test_an_entry_is_the_model_dump_of_the_hop_with_its_detail_masked() -> None:
    record = hop(
        uuid.uuid4(),
        "attempt",
        1,
        destination="crm",
        delivery_id=uuid.uuid4(),
        attempt=2,
        status=503,
        latency_ms=12.5,
        detail={"phone": "+5511999990000", "email": "ana@example.com", "reason": "timeout"},
    )
    event_id, entry = trail_index.index_entry(record.to_json())
    assert event_id == str(record.event_id)
    expected = record.model_dump(mode="json", exclude_none=True)
    assert {k: v for k, v in entry.items() if k != "detail"} == {k: v for k, v in expected.items() if k != "detail"}
    assert entry["detail"]["reason"] == "timeout"
    assert "+5511999990000" not in orjson.dumps(entry).decode()
    assert "ana@example.com" not in orjson.dumps(entry).decode()
    # A hop without optional fields has no None values in its entry.
    _, bare = trail_index.index_entry(hop(record.event_id, "accepted", 0).to_json())
    assert None not in bare.values() and set(bare) == {"event_id", "hop", "at", "service", "detail"}


@pytest.mark.parametrize(
    "raw",
    [
        b"\x00not json",
        b'{"event_id": "not-a-uuid", "hop": "accepted", "at": "2026-03-01T12:00:00Z", "service": "x"}',
        b'{"event_id": "%s", "hop": "teleported", "at": "2026-03-01T12:00:00Z", "service": "x"}'
        % str(uuid.uuid4()).encode(),
        b'{"event_id": "%s", "hop": "accepted", "at": "2026-03-01T12:00:00Z", "service": "x", "extra": 1}'
        % str(uuid.uuid4()).encode(),
    ],
)
def test_a_record_that_is_not_a_trail_hop_is_refused(raw: bytes) -> None:
    with pytest.raises(ValueError):
        trail_index.index_entry(raw)


def test_keys_sort_by_offset_within_a_partition_and_stay_under_their_event() -> None:
    event_id = str(uuid.uuid4())
    keys = [trail_index.hop_key(event_id, 3, offset) for offset in (9, 10, 100, 2_000_000)]
    assert sorted(keys) == keys
    assert all(k.startswith(f"{event_id}/".encode()) for k in keys)


@pytest.mark.parametrize("store_kind", ["rocksdb", "memory"])
def test_an_events_hops_are_read_back_by_prefix_in_time_order_with_old_layout_entries(
    store_kind: str, tmp_path: Path
) -> None:
    store: Any = RocksMapping(tmp_path / "trail.rocksdb") if store_kind == "rocksdb" else {}
    first, other = uuid.uuid4(), uuid.uuid4()
    # Hops of `first` on two offsets, written out of time order; a hop of another event between.
    for offset, record in (
        (12, hop(first, "delivered", 3)),
        (10, hop(first, "routed", 1)),
        (11, hop(other, "accepted", 0)),
    ):
        event_id, entry = trail_index.index_entry(record.to_json())
        trail_index.put(store, trail_index.hop_key(event_id, 0, offset), entry, orjson.dumps(entry))
    # The same record indexed again (re-read after a restart) overwrites its own entry.
    event_id, entry = trail_index.index_entry(hop(first, "delivered", 3).to_json())
    trail_index.put(store, trail_index.hop_key(event_id, 0, 12), entry, orjson.dumps(entry))
    # An event's hop list under its bare id, as indexed before one entry per hop.
    store[str(first).encode()] = [trail_index.index_entry(hop(first, "accepted", 0).to_json())[1]]

    found = trail_index.event_hops(store, str(first))
    assert len(found) == 3
    shown = trail_index.visible_hops(found, NOW + timedelta(seconds=10), timedelta(days=30))
    assert [h["hop"] for h in shown] == ["accepted", "routed", "delivered"]
    assert [h["hop"] for h in trail_index.event_hops(store, str(other))] == ["accepted"]
    assert trail_index.event_hops(store, str(uuid.uuid4())) == []


def test_retention_drops_old_hops_on_read_and_expires_entries_of_both_layouts() -> None:
    event_id = uuid.uuid4()
    old, new = (trail_index.index_entry(hop(event_id, "accepted", s).to_json())[1] for s in (0, 3600))
    now = NOW + timedelta(days=30, minutes=30)
    assert [h["hop"] for h in trail_index.visible_hops([new, old], now, timedelta(days=30))] == [new["hop"]]
    assert trail_index.visible_hops([old], now, timedelta(days=30)) == []
    cutoff = now - timedelta(days=30)
    assert trail_index.expired(old, cutoff) and not trail_index.expired(new, cutoff)
    assert not trail_index.expired([old, new], cutoff) and trail_index.expired([old], cutoff)
    assert trail_index.expired([], cutoff)


def test_hop_times_are_shown_in_one_form_whatever_each_service_wrote() -> None:
    event_id = str(uuid.uuid4())
    written = [
        {"event_id": event_id, "hop": "accepted", "at": "2026-03-01T12:00:00.100000Z"},
        {"event_id": event_id, "hop": "routed", "at": "2026-03-01T12:00:00.200000+00:00"},
        {"event_id": event_id, "hop": "delivered", "at": "2026-03-01T09:00:00.300000-03:00"},
    ]
    shown = trail_index.visible_hops(written, NOW + timedelta(hours=1), timedelta(days=30))
    assert [h["at"] for h in shown] == [
        "2026-03-01T12:00:00.100000Z",
        "2026-03-01T12:00:00.200000Z",
        "2026-03-01T12:00:00.300000Z",
    ]


def test_a_runaway_event_shows_its_newest_hops_only() -> None:
    event_id = uuid.uuid4()
    hops = [trail_index.index_entry(hop(event_id, "attempt", s).to_json())[1] for s in range(600)]
    shown = trail_index.visible_hops(hops, NOW + timedelta(hours=1), timedelta(days=30))
    assert len(shown) == trail_index.MAX_HOPS_SHOWN
    assert shown[-1]["at"] == hops[-1]["at"] and shown[0]["at"] == hops[100]["at"]
