"""Faust table storage on disk (RocksDB through rocksdict), so the worker's memory does not grow with
the dedupe window (7 days of keys) or the trail index (30 days of hops).

Faust's own `rocksdb://` store finds a key's partition through the event being processed
(`current_event()`); the routers read and write the tables outside Faust's event machinery (the
priority lanes, processors/faust_drain.py), so that store cannot be used as is. This one keeps one
database per table (all its partitions), and like Faust's RocksDB store it remembers, per partition,
the offset of the last changelog record it holds (`persisted`): the changelog topic is the source of
truth, and a restart reads only the changelog written after that offset instead of all of it (7 days
of dedupe keys, 30 days of trail hops). The offsets are written in the same RocksDB write batch as
the data they cover, or after it, so they never claim more than the database holds, even when a crash
loses the newest writes (those held for the next batch, or the OS's unsynced pages of a lost machine).
`Processors.check_local_state` empties a database that belongs to another changelog topic (one
deleted and created again, another hub sharing the directory) before Faust reads the offsets.

Keys are `str` or `bytes` (the tables use both), values anything orjson writes (dicts and lists).
Memory is bounded by the RocksDB options below: small memtables and one block cache shared by every
table of the process.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from pathlib import Path
from typing import Any

import faust.stores
import orjson
from faust.stores import memory
from faust.types import TP, EventT
from rocksdict import BlockBasedOptions, Cache, Options, Rdict, WriteBatch

SCHEME = "carinho-rocksdb"
URL = f"{SCHEME}://"
MEMTABLE_BYTES = 4 * 1_048_576  # per table, two of them at most before a flush to disk
BLOCK_CACHE_BYTES = 16 * 1_048_576  # shared by all tables of the process
PENDING_WRITES = 512  # writes held before one WriteBatch (see RocksMapping)
_cache: Cache | None = None

_STR, _BYTES = b"s", b"b"
# Bookkeeping keys sort before every table key (those start with _STR or _BYTES), so iterations that
# start at _FIRST_KEY never see them.
_META = b"\x00"
_OFFSET = _META + b"offset:"  # + partition: the last changelog offset this database holds
_SOURCE = _META + b"changelog"  # which changelog topic (name and topic id) the offsets refer to
_FIRST_KEY = b"\x01"


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
    # Most dedupe lookups are misses: a bloom filter over each memtable answers them without the skip
    # list's seek (random keys: a cache miss per level), which was ~40 % of a read in the worker.
    options.set_memtable_whole_key_filtering(True)
    options.set_memtable_prefix_bloom_ratio(0.1)
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
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._pending: dict[bytes, bytes | None] = {}  # encoded key -> encoded value, None = deleted
        self._offset_keys: dict[int, bytes] = {}
        # Opening takes the database's lock: a second worker on this directory (same
        # CARINHO_DATA_DIR and web port) fails here instead of sharing the files.
        self._db = self._open()

    def _open(self) -> Rdict:
        # With RocksDB's write-ahead log (not synced: a killed process loses nothing the OS has, a lost
        # machine loses the newest writes together with their offsets), so a worker that crashed
        # restarts as fast as one that was stopped.
        return Rdict(str(self.path), _options())

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

    # ---- changelog bookkeeping -------------------------------------------------------------------
    def persisted(self, partition: int) -> int | None:
        """The offset of the last changelog record of `partition` this database holds, if known."""
        raw = self._read(self._offset_key(partition))
        return None if raw is None else int(raw)

    def persist(self, partition: int, offset: int) -> None:
        """Note that the changelog record at `offset` is in the database. Call it only once the record's
        own write went through this mapping (it then lands in the same write batch or an earlier one)."""
        self._write(self._offset_key(partition), b"%d" % offset)

    def _offset_key(self, partition: int) -> bytes:
        key = self._offset_keys.get(partition)
        if key is None:
            key = self._offset_keys[partition] = _OFFSET + b"%d" % partition
        return key

    def persisted_offsets(self) -> dict[int, int]:
        self.write_pending()
        offsets: dict[int, int] = {}
        for raw, value in self._db.items(from_key=_OFFSET):
            if not (isinstance(raw, bytes) and raw.startswith(_OFFSET)):
                break  # past the bookkeeping keys (they sort first): the table's data
            offsets[int(raw[len(_OFFSET) :])] = int(value)
        return offsets

    @property
    def source(self) -> str | None:
        raw = self._read(_SOURCE)
        return None if raw is None else raw.decode()

    @source.setter
    def source(self, value: str) -> None:
        self._write(_SOURCE, value.encode())
        self.write_pending()

    def reset(self) -> None:
        """Empty the database, bookkeeping included (the changelog is then read from its start)."""
        self._pending.clear()
        self._db.close()
        shutil.rmtree(self.path)
        self._db = self._open()

    # ---- the table's data -------------------------------------------------------------------------
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

    def put_encoded(self, key: Any, encoded: bytes) -> None:
        """`self[key] = value` for a value already encoded with orjson (the caller needed the JSON)."""
        self._write(_key(key), encoded)

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
        for raw in self._db.keys(from_key=_FIRST_KEY):
            yield _unkey(raw)

    def items(self) -> Iterator[tuple[Any, Any]]:  # type: ignore[override]
        self.write_pending()
        for raw, value in self._db.items(from_key=_FIRST_KEY):
            yield _unkey(raw), orjson.loads(value)

    def items_after(self, key: Any | None, count: int) -> list[tuple[Any, Any]]:
        """Up to `count` items in key order, starting after `key` (None: from the start)."""
        self.write_pending()
        start = _FIRST_KEY if key is None else _key(key)
        out: list[tuple[Any, Any]] = []
        for raw, value in self._db.items(from_key=start):
            if raw == start:
                continue
            out.append((_unkey(raw), orjson.loads(value)))
            if len(out) >= count:
                break
        return out

    def items_with_prefix(self, prefix: str | bytes) -> list[tuple[Any, Any]]:
        """Every item whose key starts with `prefix` (of the key's type), in key order."""
        self.write_pending()
        start = _key(prefix)
        out: list[tuple[Any, Any]] = []
        for raw, value in self._db.items(from_key=start):
            if not (isinstance(raw, bytes) and raw.startswith(start)):
                break
            out.append((_unkey(raw), orjson.loads(value)))
        return out

    def __len__(self) -> int:
        self.write_pending()
        return sum(1 for _ in self._db.keys(from_key=_FIRST_KEY))

    def clear(self) -> None:
        """Delete the table's data (its changelog bookkeeping stays: see `reset`)."""
        for raw in list(self):
            self._write(_key(raw), None)
        self.write_pending()

    def close(self) -> None:
        self.write_pending()
        self._db.close()  # flushes the memtables: the next start reads no write-ahead log


class RocksStore(memory.Store[Any, Any]):
    """Faust's in-memory store with its dict replaced by a RocksMapping (see the module docstring), and
    the changelog offsets Faust's recovery starts from."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # the in-memory store's __post_init__ made self.data a dict
        path = Path(self.app.conf.tabledir) / f"{self.table_name}.rocksdb"
        self.data: RocksMapping = RocksMapping(path)
        self.recovered = 0  # changelog records applied since start (a restart reads only the tail)

    def apply_changelog_batch(
        self, batch: Iterable[EventT[Any]], to_key: Callable[[Any], Any], to_value: Callable[[Any], Any]
    ) -> None:
        data = self.data
        last: dict[int, int] = {}
        for event in batch:
            key = to_key(event.key)
            if event.message.value is None:  # a tombstone
                data.pop(key, None)
            else:
                data[key] = to_value(event.value)
            last[event.message.partition] = event.message.offset
            self.recovered += 1
        for partition, offset in last.items():  # after the records' writes: see RocksMapping.persist
            data.persist(partition, offset)

    def apply_encoded_batch(self, records: Iterable[tuple[Any, bytes | None, int, int]]) -> None:
        """`apply_changelog_batch` for records read outside Faust (processors/changelog_catch_up.py):
        (key, the value's JSON as the changelog holds it or None for a tombstone, partition, offset)."""
        data = self.data
        last: dict[int, int] = {}
        for key, value, partition, offset in records:
            if value is None:
                data.pop(key, None)
            else:
                data.put_encoded(key, value)
            last[partition] = offset
            self.recovered += 1
        for partition, offset in last.items():  # after the records' writes: see RocksMapping.persist
            data.persist(partition, offset)

    def persisted_offset(self, tp: TP) -> int | None:
        """Where Faust's recovery (and a standby) starts reading this partition's changelog."""
        return self.data.persisted(tp.partition)

    def set_persisted_offset(self, tp: TP, offset: int) -> None:
        # Called once the broker has one of this table's changelog records: by Faust for the ones its
        # producer writes (`scheduled`), by processors.output for the routers' (dedupe, trail index).
        self.data.persist(tp.partition, offset)

    def reset_state(self) -> None:
        self.data.reset()

    async def on_recovery_completed(self, active_tps: Any, standby_tps: Any) -> None:
        # The in-memory store drops the keys of partitions this worker no longer owns, which needs a
        # partition per key in RAM (what this store avoids). The keys stay here instead: the routers
        # only read keys of partitions they own, a partition that comes back is brought up to date
        # from its persisted offset, and the hourly sweep (Processors.sweep_state) removes expired ones.
        return None

    async def on_stop(self) -> None:
        self.data.close()


def mapping(table: Any) -> MutableMapping[Any, Any]:
    """The mapping under a table's Faust store (a dict or a RocksMapping), for the routers' hot path:
    Faust's `Store.get` goes through `__getitem__` and a KeyError for every miss."""
    return table.data.data  # type: ignore[no-any-return]


def stale_reason(store: RocksMapping, source: str, watermarks: Mapping[int, tuple[int, int]]) -> str | None:
    """Why the database cannot be trusted for the changelog `source` ("topic:topic id") whose
    partitions keep the offsets `watermarks` (start, end), or None if it can: Faust's recovery would
    start from offsets that belong to another topic (or, past a partition's end, refuse to start), or
    would skip records the changelog's retention deleted before this database read them (an update or
    tombstone among them would be missed: a delayed message marked fired, then sent again)."""
    if store.source is None:
        return "no changelog recorded (new, or written by a version that did not record one)"
    if store.source != source:
        return f"written from {store.source}, the changelog is now {source}"
    for partition, offset in sorted(store.persisted_offsets().items()):
        start, end = watermarks.get(partition, (0, 0))
        if offset >= end:
            return f"partition {partition} holds offset {offset}, the changelog ends at {end}"
        if offset + 1 < start:
            return (
                f"partition {partition} holds offset {offset}, the changelog now starts at {start}: "
                "records after it were deleted before they were read"
            )
    return None


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
