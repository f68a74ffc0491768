"""The dedupe table's store in process, as the router uses it (not a test; for design decisions):

    .venv/bin/python -m bench.state_store_dedupe [--keys 300000] [--variant base --variant multi_get ...]

Per new key, what `_route_one` does to the table: a `get` (a miss: the key is new) and a `put_encoded`
of a dedupe entry, on one `RocksMapping` (processors/state_store.py) in a temporary directory. The keys
are random, like the worker's (a source and 13 random characters): sequential keys made the memtable's
skip-list seeks look far cheaper than they are in the worker. Prints, per variant and per 100,000 keys,
the wall µs of the `get` alone and the process CPU µs of get + put (flushes and compactions included).
`base` is the store as the worker opens it; `no_memtable_bloom` without the bloom filter on RocksDB's
memtables (whole-key filtering; the store's default since the twenty-second session). `multi_get`
reads the keys MULTI_GET at a time with one RocksDB multi-get (what a prefetch per routed batch would
do) and counts each key's share of it. Variants run one after the other, alternating when given twice
or more.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from processors import state_store

MULTI_GET = 64  # keys per multi-get: a routed batch's worth
ENTRY = {"at": 1.0, "topic": "events.p3", "partition": 1, "offset": 0, "event_id": "x" * 36, "fp": 123}


def options(variant: str, base: Any) -> Any:
    def build() -> Any:
        opts = base()
        if variant == "no_memtable_bloom":
            opts.set_memtable_whole_key_filtering(False)
            opts.set_memtable_prefix_bloom_ratio(0.0)
        return opts

    return build


def run(variant: str, keys: int, step: int) -> list[tuple[float, float]]:
    """(get µs, get + put CPU µs) per `step` keys."""
    rng = random.Random(keys)  # the same keys for every variant
    names = [f"site\x1fb{rng.getrandbits(52):013x}" for _ in range(keys)]
    base = state_store._options
    state_store._options = options(variant, base)  # read when the mapping opens its database
    try:
        with tempfile.TemporaryDirectory(prefix="bench-dedupe-") as tmp:
            store = state_store.RocksMapping(Path(tmp) / "dedupe")
            out: list[tuple[float, float]] = []
            get_s, cpu_start = 0.0, time.process_time()
            for i in range(keys):
                key = names[i]
                if variant == "multi_get":
                    if i % MULTI_GET == 0:  # the next keys in one read, before any of them is written
                        batch: list[Any] = [state_store._key(names[n]) for n in range(i, min(i + MULTI_GET, keys))]
                        started = time.perf_counter()
                        store._db.get(batch)
                        get_s += time.perf_counter() - started
                else:
                    started = time.perf_counter()
                    store.get(key)
                    get_s += time.perf_counter() - started
                store.put_encoded(key, orjson.dumps({**ENTRY, "offset": i}))
                if (i + 1) % step == 0:
                    cpu = time.process_time() - cpu_start
                    out.append((round(get_s / step * 1e6, 2), round(cpu / step * 1e6, 2)))
                    get_s, cpu_start = 0.0, time.process_time()
            store.write_pending()
            return out
    finally:
        state_store._options = base


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, default=300_000)
    parser.add_argument("--step", type=int, default=100_000)
    parser.add_argument("--variant", action="append", choices=["base", "no_memtable_bloom", "multi_get"])
    args = parser.parse_args(argv)
    for variant in args.variant or ["base", "no_memtable_bloom", "base", "no_memtable_bloom"]:
        print(variant, "(get us, get+put CPU us) per step:", run(variant, args.keys, args.step), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
