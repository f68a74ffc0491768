"""Faust table storage on disk (RocksDB through rocksdict), so the worker's memory does not grow with
the dedupe window (7 days of keys) or the trail index (30 days of hops).

Faust's own `rocksdb://` store finds a key's partition through the event being processed
(`current_event()`); the routers read and write the tables outside Faust's event machinery (the
priority lanes, processors/faust_drain.py), so that store cannot be used as is. This one keeps one
database per table, with the same contract as Faust's in-memory store: the changelog topic is the
source of truth, the database is emptied when the worker starts and Faust replays the changelog into
it (recovery), so a restart recovers exactly what the in-memory store recovered, without holding it
in RAM.

Keys are `str` or `bytes` (the tables use both), values anything orjson writes (dicts and lists).
Memory is bounded by the RocksDB options below: small memtables and one block cache shared by every
table of the process.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from pathlib import Path
from typing import Any

import faust.stores
import orjson
from faust.stores import memory
from faust.types import EventT
from rocksdict import BlockBasedOptions, Cache, Options, Rdict, WriteBatch, WriteOptions

SCHEME = "carinho-rocksdb"
URL = f"{SCHEME}://"
MEMTABLE_BYTES = 4 * 1_048_576  # per table, two of them at most before a flush to disk
BLOCK_CACHE_BYTES = 16 * 1_048_576  # shared by all tables of the process
PENDING_WRITES = 512  # writes held before one WriteBatch (see RocksMapping)
_cache: Cache | None = None

_STR, _BYTES = b"s", b"b"


def _key(key: str | bytes) -> bytes:
    if isinstance(key, bytes):
        return _BYTES + key
    if isinstance(key, str):
        return _STR + key.encode()
    raise TypeError(f"table keys are str or bytes, not {type(key).__name__}")


def _unkey(raw: Any) -> Any:
    return raw[1:] if raw[:1] == _BYTES else raw[1:].decode()


def _options() -> Options:
    global _cache
    if _cache is None:
        _cache = Cache(BLOCK_CACHE_BYTES)
    options = Options(raw_mode=True)
    options.create_if_missing(True)
    options.set_write_buffer_size(MEMTABLE_BYTES)
    options.set_max_write_buffer_number(2)
    table = BlockBasedOptions()
    table.set_block_cache(_cache)
    table.set_bloom_filter(10, False)  # most dedupe lookups are misses (new keys): skip the disk reads
    # Index and filter blocks in the (bounded) cache too, or they stay in memory per file on disk.
    table.set_cache_index_and_filter_blocks(True)
    table.set_pin_l0_filter_and_index_blocks_in_cache(True)
    options.set_block_based_table_factory(table)
    return options


class RocksMapping(MutableMapping[Any, Any]):
    """A dict-like view of one RocksDB database: str/bytes keys, orjson values.

    Writes are held in a small dict and written as one WriteBatch every PENDING_WRITES writes (and
    before any iteration); reads look there first. Why: rocksdict releases the GIL in `put`, and
    with the worker's other threads (aiokafka's fetcher, librdkafka's callbacks) waiting for it every
    put became a thread switch: +15-23 % CPU per routed event in the worker with a put per event,
    measured (docs/benchmarks.md, sixth session). A `get` and a WriteBatch's `put` keep the GIL."""

    def __init__(self, path: Path):
        if path.exists():
            # Opening takes the database's lock: a worker still running on this directory (same
            # CARINHO_DATA_DIR and web port) makes this raise instead of losing its files.
            Rdict(str(path), _options()).close()
            shutil.rmtree(path)  # the changelog is replayed into an empty database
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = Rdict(str(path), _options())
        # No write-ahead log: the database is rebuilt from the changelog at every start, so a log
        # that survives a crash would never be read.
        writes = WriteOptions()
        writes.disable_wal = True  # type: ignore[method-assign,assignment]  # a property; the stub says method
        self._db.set_write_options(writes)
        self._pending: dict[bytes, bytes | None] = {}  # encoded key -> encoded value, None = deleted

    def _read(self, raw: bytes) -> bytes | None:
        if raw in self._pending:
            return self._pending[raw]
        return self._db.get(raw)

    def _write(self, raw: bytes, value: bytes | None) -> None:
        self._pending[raw] = value
        if len(self._pending) >= PENDING_WRITES:
            self.write_pending()

    def write_pending(self) -> None:
        if not self._pending:
            return
        batch = WriteBatch(raw_mode=True)
        for raw, value in self._pending.items():
            if value is None:
                batch.delete(raw)
            else:
                batch.put(raw, value)
        self._db.write(batch)
        self._pending.clear()

    def get(self, key: Any, default: Any = None) -> Any:
        raw = self._read(_key(key))
        return default if raw is None else orjson.loads(raw)

    def __getitem__(self, key: Any) -> Any:
        raw = self._read(_key(key))
        if raw is None:
            raise KeyError(key)
        return orjson.loads(raw)

    def __setitem__(self, key: Any, value: Any) -> None:
        self._write(_key(key), orjson.dumps(value))

    def __delitem__(self, key: Any) -> None:
        self.pop(key)

    def pop(self, key: Any, *default: Any) -> Any:
        raw = _key(key)
        value = self._read(raw)
        if value is None:
            if default:
                return default[0]
            raise KeyError(key)
        self._write(raw, None)
        return orjson.loads(value)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str | bytes) and self._read(_key(key)) is not None

    def __iter__(self) -> Iterator[Any]:
        self.write_pending()
        for raw in self._db.keys():  # noqa: SIM118 - iterating an Rdict itself fails in raw mode
            yield _unkey(raw)

    def items(self) -> Iterator[tuple[Any, Any]]:  # type: ignore[override]
        self.write_pending()
        for raw, value in self._db.items():
            yield _unkey(raw), orjson.loads(value)

    def items_after(self, key: Any | None, count: int) -> list[tuple[Any, Any]]:
        """Up to `count` items in key order, starting after `key` (None: from the start)."""
        self.write_pending()
        start = None if key is None else _key(key)
        out: list[tuple[Any, Any]] = []
        for raw, value in self._db.items(from_key=start):
            if raw == start:
                continue
            out.append((_unkey(raw), orjson.loads(value)))
            if len(out) >= count:
                break
        return out

    def __len__(self) -> int:
        self.write_pending()
        return sum(1 for _ in self._db.keys())  # noqa: SIM118 - see __iter__

    def clear(self) -> None:
        self._pending.clear()
        for raw in list(self._db.keys()):
            self._db.delete(raw)

    def close(self) -> None:
        self._db.close()


class RocksStore(memory.Store[Any, Any]):
    """Faust's in-memory store with its dict replaced by a RocksMapping (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # the in-memory store's __post_init__ made self.data a dict
        path = Path(self.app.conf.tabledir) / f"{self.table_name}.rocksdb"
        self.data: MutableMapping[Any, Any] = RocksMapping(path)

    def apply_changelog_batch(
        self, batch: Iterable[EventT[Any]], to_key: Callable[[Any], Any], to_value: Callable[[Any], Any]
    ) -> None:
        data = self.data
        for event in batch:
            key = to_key(event.key)
            if event.message.value is None:  # a tombstone
                data.pop(key, None)
            else:
                data[key] = to_value(event.value)

    async def on_recovery_completed(self, active_tps: Any, standby_tps: Any) -> None:
        # The in-memory store drops the keys of partitions this worker no longer owns, which needs a
        # partition per key in RAM (what this store avoids). The keys stay here instead: the routers
        # only read keys of partitions they own, a reassigned partition's changelog is replayed over
        # them, and the hourly sweep (processors.app.Processors.sweep_state) removes expired ones.
        return None

    async def on_stop(self) -> None:
        self.data.close()  # type: ignore[attr-defined]  # a RocksMapping (set in __init__)


def mapping(table: Any) -> MutableMapping[Any, Any]:
    """The mapping under a table's Faust store (a dict or a RocksMapping), for the routers' hot path:
    Faust's `Store.get` goes through `__getitem__` and a KeyError for every miss."""
    return table.data.data  # type: ignore[no-any-return]


def chunks(store: MutableMapping[Any, Any], size: int) -> Iterator[list[tuple[Any, Any]]]:
    """A table's items (`mapping(table)`), `size` at a time. Each chunk's values are read when the
    chunk is made, so a caller that awaits only between chunks acts on current values although the
    routers write to the table meanwhile."""
    if isinstance(store, RocksMapping):
        last: Any = None
        while chunk := store.items_after(last, size):
            yield chunk
            last = chunk[-1][0]
    else:  # a dict: its keys now, each chunk's values later (it must not change size while iterated)
        keys = list(store)
        for begin in range(0, len(keys), size):
            yield [(key, store[key]) for key in keys[begin : begin + size] if key in store]


async def sweep(store: MutableMapping[Any, Any], is_expired: Callable[[Any], bool], chunk: int = 2_000) -> int:
    """Delete the entries `is_expired` judges stale, yielding to the event loop between chunks: a
    table on disk takes seconds to walk, and the routers (p1 included) must not wait for it."""
    removed = 0
    for items in chunks(store, chunk):
        for key, value in items:
            if is_expired(value):
                store.pop(key, None)
                removed += 1
        await asyncio.sleep(0)
    return removed


faust.stores.STORES.aliases[SCHEME] = f"{__name__}:RocksStore"
