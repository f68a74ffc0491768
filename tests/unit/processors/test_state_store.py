"""The on-disk table store (processors/state_store.py): dict semantics, changelog replay, restarts."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import faust.stores
import pytest
from faust.types import TP

from processors import dedupe, state_store
from processors.state_store import RocksMapping, RocksStore

ROOT = Path(__file__).resolve().parents[3]


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


def test_a_reopened_mapping_keeps_its_data_and_changelog_offsets(tmp_path: Path) -> None:
    """A restart reads only the changelog written after the offsets the database holds."""
    first = RocksMapping(tmp_path / "t.rocksdb")
    first["k"] = {"at": 1}
    first.persist(3, 41)
    first.persist(3, 42)
    first.persist(0, 7)
    first.source = "carinho-router-dedupe-changelog:uuid-1"
    first.close()  # writes what is held, flushes the memtables
    again = RocksMapping(tmp_path / "t.rocksdb")
    assert again["k"] == {"at": 1}
    assert again.persisted(3) == 42 and again.persisted(0) == 7 and again.persisted(1) is None
    assert again.persisted_offsets() == {0: 7, 3: 42}
    assert again.source == "carinho-router-dedupe-changelog:uuid-1"
    # The bookkeeping is not table data: iteration, length and chunks see only "k".
    assert list(again) == ["k"] and len(again) == 1 and dict(again.items()) == {"k": {"at": 1}}
    assert again.items_after(None, 10) == [("k", {"at": 1})]
    again.clear()  # the table's data only
    assert len(again) == 0 and again.persisted(3) == 42
    again.reset()  # everything: the changelog is then read from its start
    assert again.persisted_offsets() == {} and again.source is None
    again["after"] = {"at": 2}
    assert list(again) == ["after"]
    again.close()


_CRASHING_WRITER = """
import os, sys
from pathlib import Path
from rocksdict import WriteOptions
from processors import state_store
state_store.PENDING_WRITES = 7
m = state_store.RocksMapping(Path(sys.argv[1]))
if sys.argv[2] == "machine":  # the OS's unsynced pages are lost too: as if there were no log
    no_log = WriteOptions()
    no_log.disable_wal = True
    m._db.set_write_options(no_log)
for i in range(30_000):
    m[f"k{i:06d}"] = {"i": i, "pad": "x" * 200}  # the table write first ...
    m.persist(0, i)  # ... then, as after the broker's acknowledgement, its changelog offset
    if i == 20_000:
        m._db.flush()  # a memtable reaches the disk mid-way, as it does under load
os._exit(0)  # killed: no close
"""


@pytest.mark.parametrize("lost", ["process", "machine"])
def test_after_a_crash_the_offsets_never_claim_more_than_the_database_holds(tmp_path: Path, lost: str) -> None:
    """A crash loses the newest writes (those held for the next batch; with the machine, what was not
    on disk yet); their offsets must go with them, or a restart would skip changelog records the
    database does not have."""
    path = tmp_path / "t.rocksdb"
    subprocess.run([sys.executable, "-c", _CRASHING_WRITER, str(path), lost], check=True, cwd=ROOT, timeout=120)
    m = RocksMapping(path)
    offset = m.persisted(0)
    assert offset is not None
    if lost == "process":
        assert offset >= 30_000 - 1 - 7  # the write-ahead log kept all but the held writes
    else:
        assert 20_000 - 7 <= offset < 30_000 - 1 - 7  # the flushed memtable survived, the rest did not
    assert all(f"k{i:06d}" in m for i in range(offset + 1))  # every record up to the offset is there
    m.close()


def test_stale_local_state_is_recognised(tmp_path: Path) -> None:
    m = RocksMapping(tmp_path / "t.rocksdb")
    assert state_store.stale_reason(m, "t:id1", {0: (0, 10)}) is not None  # nothing recorded yet
    m.source = "t:id1"
    m.persist(0, 9)
    assert state_store.stale_reason(m, "t:id1", {0: (0, 10), 1: (0, 0)}) is None  # offset 9 < end 10: usable
    assert state_store.stale_reason(m, "t:id1", {0: (10, 10)}) is None  # retention took 0-9: all read here
    assert "t:id2" in str(state_store.stale_reason(m, "t:id2", {0: (0, 10)}))  # the topic was created again
    assert "ends at 5" in str(state_store.stale_reason(m, "t:id1", {0: (0, 5)}))  # past the end: another life
    assert "ends at 0" in str(state_store.stale_reason(m, "t:id1", {}))
    # Retention deleted offset 10 before this database read it: an update there would be missed.
    assert "starts at 11" in str(state_store.stale_reason(m, "t:id1", {0: (11, 20)}))
    m.close()


def test_the_sweeps_work_on_the_disk_store(tmp_path: Path) -> None:
    m = RocksMapping(tmp_path / "t.rocksdb")
    m["old"] = {"at": 100.0}
    m["new"] = {"at": 1_000.0}
    assert asyncio.run(state_store.sweep(m, lambda v: dedupe.expired(v, 1_000.0, 500.0))) == 1
    assert set(m) == {"new"}
    m.close()


def _changelog(key: Any, value: Any, partition: int = 0, offset: int = 0) -> Any:
    return SimpleNamespace(
        key=key, value=value, message=SimpleNamespace(value=value, partition=partition, offset=offset)
    )


def test_changelog_replay_applies_writes_and_tombstones(tmp_path: Path) -> None:
    app = SimpleNamespace(conf=SimpleNamespace(tabledir=tmp_path))
    table = SimpleNamespace(name="trail-index")
    store = faust.stores.by_url(state_store.URL)(state_store.URL, app, table, table_name="trail-index")
    assert isinstance(store, RocksStore)
    assert (tmp_path / "trail-index.rocksdb").is_dir()
    hop = {"event_id": "e1", "hop": "accepted", "at": "2026-11-29T10:00:00Z", "service": "ingress"}
    store.apply_changelog_batch(
        [
            _changelog(b"e1", [hop], partition=0, offset=10),
            _changelog(b"e2", [hop], partition=1, offset=4),
            _changelog(b"e2", None, partition=1, offset=5),
            _changelog(b"e3", [hop], partition=0, offset=11),
        ],
        to_key=lambda k: k,
        to_value=lambda v: v,
    )
    assert dict(store.data.items()) == {b"e1": [hop], b"e3": [hop]}
    assert store.get(b"e1") == [hop]  # through Faust's Store (FastUserDict) API too
    store[b"e4"] = [hop]
    assert store.data.get(b"e4") == [hop] and len(store) == 3
    # Where Faust's recovery starts next time: the last record applied per partition.
    assert store.persisted_offset(TP("c", 0)) == 11 and store.persisted_offset(TP("c", 1)) == 5
    assert store.persisted_offset(TP("c", 2)) is None and store.recovered == 4
    store.set_persisted_offset(TP("c", 2), 3)  # Faust, after its producer wrote a changelog record
    assert store.persisted_offset(TP("c", 2)) == 3
    store.reset_state()
    assert len(store) == 0 and store.persisted_offset(TP("c", 0)) is None


def test_encoded_replay_stores_the_json_as_read_and_notes_the_same_offsets(tmp_path: Path) -> None:
    """What the changelog catch-up (processors/changelog_catch_up.py) writes: the same entries,
    tombstones, persisted offsets and `recovered` count as Faust's replay of the same records."""
    app = SimpleNamespace(conf=SimpleNamespace(tabledir=tmp_path))
    store = faust.stores.by_url(state_store.URL)(
        state_store.URL, app, SimpleNamespace(name="dedupe"), table_name="dedupe"
    )
    assert isinstance(store, RocksStore)
    store.data["gone"] = {"at": 0.5}
    store.apply_encoded_batch(
        [
            ("a", b'{"at": 1.0, "event_id": "e1"}', 0, 3),  # JSON as another writer spaced it
            ("b", b'{"at":2.0}', 2, 8),
            ("a", b'{"at":3.0}', 0, 4),  # a later record of the same key wins
            ("gone", None, 2, 9),  # a tombstone
            (b"raw", b"[1,2]", 1, 0),  # the trail index's bytes keys
        ]
    )
    assert dict(store.data.items()) == {"a": {"at": 3.0}, "b": {"at": 2.0}, b"raw": [1, 2]}
    assert store.persisted_offset(TP("c", 0)) == 4 and store.persisted_offset(TP("c", 2)) == 9
    assert store.persisted_offset(TP("c", 1)) == 0 and store.recovered == 5
    store.data.close()


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
