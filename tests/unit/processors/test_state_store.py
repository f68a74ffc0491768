"""The on-disk table store (processors/state_store.py): dict semantics, changelog replay, restarts."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import faust.stores
import pytest

from processors import dedupe, state_store
from processors.state_store import RocksMapping, RocksStore


def test_mapping_behaves_like_a_dict_for_str_and_bytes_keys(tmp_path: Path) -> None:
    m = RocksMapping(tmp_path / "t.rocksdb")
    m["k"] = {"at": 1.5, "event_id": "e"}
    m[b"k"] = [{"hop": "accepted"}]
    assert m["k"] == {"at": 1.5, "event_id": "e"}
    assert m.get(b"k") == [{"hop": "accepted"}]
    assert "k" in m and b"k" in m and "other" not in m and 3 not in m
    assert m.get("other") is None and m.get("other", 7) == 7
    assert len(m) == 2
    assert dict(m.items()) == {"k": {"at": 1.5, "event_id": "e"}, b"k": [{"hop": "accepted"}]}
    assert set(m) == {"k", b"k"}  # str and bytes keys stay distinct
    with pytest.raises(KeyError):
        m["other"]
    with pytest.raises(KeyError):
        del m["other"]
    assert m.pop("k") == {"at": 1.5, "event_id": "e"}
    assert m.pop("k", None) is None
    del m[b"k"]
    assert len(m) == 0
    with pytest.raises(TypeError):
        m[1] = "x"
    m.close()


def test_a_reopened_mapping_starts_empty(tmp_path: Path) -> None:
    """Same contract as Faust's in-memory store: the changelog, replayed at start, is the truth."""
    first = RocksMapping(tmp_path / "t.rocksdb")
    first["stale"] = {"at": 0}
    first.close()
    again = RocksMapping(tmp_path / "t.rocksdb")
    assert "stale" not in again and len(again) == 0
    again.close()


def test_the_sweeps_work_on_the_disk_store(tmp_path: Path) -> None:
    m = RocksMapping(tmp_path / "t.rocksdb")
    m["old"] = {"at": 100.0}
    m["new"] = {"at": 1_000.0}
    assert asyncio.run(state_store.sweep(m, lambda v: dedupe.expired(v, 1_000.0, 500.0))) == 1
    assert set(m) == {"new"}
    m.close()


def _changelog(key: Any, value: Any, partition: int = 0) -> Any:
    return SimpleNamespace(key=key, value=value, message=SimpleNamespace(value=value, partition=partition))


def test_changelog_replay_applies_writes_and_tombstones(tmp_path: Path) -> None:
    app = SimpleNamespace(conf=SimpleNamespace(tabledir=tmp_path))
    table = SimpleNamespace(name="trail-index")
    store = faust.stores.by_url(state_store.URL)(state_store.URL, app, table, table_name="trail-index")
    assert isinstance(store, RocksStore)
    assert (tmp_path / "trail-index.rocksdb").is_dir()
    hop = {"event_id": "e1", "hop": "accepted", "at": "2026-11-29T10:00:00Z", "service": "ingress"}
    store.apply_changelog_batch(
        [_changelog(b"e1", [hop]), _changelog(b"e2", [hop]), _changelog(b"e2", None), _changelog(b"e3", [hop])],
        to_key=lambda k: k,
        to_value=lambda v: v,
    )
    assert dict(store.data.items()) == {b"e1": [hop], b"e3": [hop]}
    assert store.get(b"e1") == [hop]  # through Faust's Store (FastUserDict) API too
    store[b"e4"] = [hop]
    assert store.data.get(b"e4") == [hop] and len(store) == 3


@pytest.mark.parametrize("kind", ["rocksdb", "dict"])
def test_chunked_sweep_removes_only_expired_entries_and_yields_between_chunks(tmp_path: Path, kind: str) -> None:
    store: Any = RocksMapping(tmp_path / "t.rocksdb") if kind == "rocksdb" else {}
    for i in range(25):
        store[f"k{i:02d}"] = {"at": float(i)}
    turns = 0

    async def run() -> int:
        nonlocal turns

        async def other_task() -> None:  # stands for the routers: runs between the chunks
            nonlocal turns
            while True:
                turns += 1
                store["k03"] = {"at": 100.0}  # rewritten meanwhile: judged on its new value
                await asyncio.sleep(0)

        task = asyncio.get_running_loop().create_task(other_task())
        await asyncio.sleep(0)
        removed = await state_store.sweep(store, lambda v: dedupe.expired(v, 20.0, 10.0), chunk=4)
        task.cancel()
        return removed

    removed = asyncio.run(run())
    assert removed == 10  # k00..k10 have at < 10.01, but k03 was rewritten
    assert sorted(store) == ["k03"] + [f"k{i:02d}" for i in range(11, 25)]
    assert turns >= 25 // 4  # the event loop ran between chunks


def test_writes_are_held_then_written_in_one_batch_and_read_back_either_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(state_store, "PENDING_WRITES", 3)
    m = RocksMapping(tmp_path / "t.rocksdb")
    m["a"], m["b"] = {"n": 1}, {"n": 2}
    on_disk = m._db  # the database itself, below the held writes
    assert on_disk.get(b"sa") is None  # held, not written yet
    assert m["a"] == {"n": 1} and m.get("b") == {"n": 2} and "a" in m
    m["c"] = {"n": 3}  # the third write sends the batch
    assert on_disk.get(b"sa") == b'{"n":1}' and on_disk.get(b"sc") == b'{"n":3}'
    assert m.pop("a") == {"n": 1}  # a held delete
    assert "a" not in m and m.get("a") is None and on_disk.get(b"sa") is not None
    m["b"] = {"n": 20}
    assert sorted(m) == ["b", "c"] and dict(m.items()) == {"b": {"n": 20}, "c": {"n": 3}}  # iteration writes first
    assert on_disk.get(b"sa") is None
    assert m.items_after("b", 5) == [("c", {"n": 3})] and len(m) == 2
    m.close()


def test_a_database_in_use_is_not_wiped_by_a_second_opener(tmp_path: Path) -> None:
    first = RocksMapping(tmp_path / "t.rocksdb")
    first["k"] = {"at": 1.0}
    first.write_pending()
    with pytest.raises(Exception, match=r"LOCK"):  # rocksdict raises a bare Exception (IO error: lock)
        RocksMapping(tmp_path / "t.rocksdb")
    assert first["k"] == {"at": 1.0}
    first["k2"] = {"at": 2.0}
    first.write_pending()  # its files are still there
    assert len(first) == 2
    first.close()
