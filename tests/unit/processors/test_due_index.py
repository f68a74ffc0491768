"""The pending delayed messages' index (processors/due_index.py)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from processors.due_index import DueIndex, pending
from processors.state_store import RocksMapping

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def entry(state: str, minutes: int, partition: int = 0) -> dict[str, Any]:
    return {"state": state, "due_at": (NOW + timedelta(minutes=minutes)).isoformat(), "partition": partition}


def test_only_pending_entries_are_indexed_and_split_by_time_and_partition() -> None:
    index = DueIndex()
    index.add("due", entry("pending", -1))
    index.add("later", entry("pending", 30))
    index.add("other-partition", entry("pending", -1, partition=3))
    index.add("fired", entry("fired", -60))
    index.add("garbage", ["not", "an", "entry"])
    assert len(index) == 3
    assert index.split(NOW, [0]) == (["due"], 1)
    assert index.split(NOW, [0, 3]) == (["due", "other-partition"], 1)
    assert index.split(NOW + timedelta(hours=1), [0]) == (["due", "later"], 0)
    index.discard("due")
    index.discard("never-there")
    assert index.split(NOW, [0]) == ([], 1)
    assert pending(entry("pending", 0)) and not pending(entry("fired", 0)) and not pending(None)


@pytest.mark.parametrize("kind", ["rocksdb", "dict"])
def test_a_rebuild_finds_every_pending_entry_also_one_parked_while_it_walks(tmp_path: Path, kind: str) -> None:
    store: Any = RocksMapping(tmp_path / "t.rocksdb") if kind == "rocksdb" else {}
    for i in range(2_500):  # three chunks
        store[f"f{i:04d}"] = entry("fired", -60)
    store["p-early"] = entry("pending", -5)
    store["p-late"] = entry("pending", 5)
    index = DueIndex()
    index.add("stale", entry("pending", -1))  # from before the rebalance: not in the table any more

    async def run() -> None:
        async def park_meanwhile() -> None:  # stands for the scheduler agent, between two chunks
            await asyncio.sleep(0)
            store["a-parked"] = value = entry("pending", -2)  # sorts before the chunk being walked
            index.add("a-parked", value)

        task = asyncio.get_running_loop().create_task(park_meanwhile())
        await index.rebuild(store, generation=7)
        await task

    asyncio.run(run())
    assert index.generation == 7
    assert sorted(index.split(NOW, [0])[0]) == ["a-parked", "p-early"]
    assert index.split(NOW, [0])[1] == 1  # p-late
    assert len(index) == 3
