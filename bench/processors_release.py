"""The delayed-message release tick of the processors worker, in process (not a test; for design
decisions):

    .venv/bin/python -m bench.processors_release [--fired 8000] [--pending 200] [--passes 20]

The `scheduled` table keeps every fired message for 8 days beside the pending ones. Side by side,
on the on-disk store (processors/state_store.py): walking the whole table in chunks (what every
once-a-second tick did before processors/due_index.py, and what a rebuild of the index does once
per rebalance) and one tick's lookup in the index (nothing due). Prints the median CPU ms per pass
of each and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import machine, save
from processors import state_store
from processors.due_index import DueIndex


def entry(state: str, due_at: datetime) -> dict[str, Any]:
    """A table entry shaped like the scheduler's (processors/app.py, `park` and `release_due`)."""
    return {
        "state": state,
        "due_at": due_at.isoformat(),
        "partition": 0,
        "at": time.time(),
        "delivery": {
            "delivery_id": str(uuid.uuid4()),
            "event_id": str(uuid.uuid4()),
            "destination": "whatsapp",
            "entity_key": "cliente:C-1",
            "payload": {"phone": "+5511999990000", "template": "feedback_request", "message": "x" * 300},
            "created_at": due_at.isoformat(),
        },
    }


def cpu_ms(run: Any, passes: int) -> float:
    samples = []
    for _ in range(passes):
        started = time.process_time()
        run()
        samples.append((time.process_time() - started) * 1000)
    return statistics.median(samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fired", type=int, default=8_000)
    parser.add_argument("--pending", type=int, default=200)
    parser.add_argument("--passes", type=int, default=20)
    args = parser.parse_args(argv)
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as tmp:
        store = state_store.RocksMapping(Path(tmp) / "scheduled.rocksdb")
        for _ in range(args.fired):
            store[str(uuid.uuid4())] = entry("fired", now - timedelta(days=1))
        for _ in range(args.pending):
            store[str(uuid.uuid4())] = entry("pending", now + timedelta(hours=2))
        store.write_pending()

        def walk() -> None:
            for chunk in state_store.chunks(store, 1_000):
                for _key, _value in chunk:
                    pass

        index = DueIndex()
        asyncio.run(index.rebuild(store, 0))
        assert len(index) == args.pending
        walk_ms = cpu_ms(walk, args.passes)
        tick_ms = cpu_ms(lambda: index.split(now, [0]), args.passes)
        store.close()
    result = {
        "benchmark": "processors_release",
        "machine": machine(),
        "args": vars(args),
        "walk_table_cpu_ms": round(walk_ms, 3),
        "index_tick_cpu_ms": round(tick_ms, 3),
        "ratio": round(walk_ms / max(tick_ms, 1e-6), 1),
    }
    print(json.dumps(result, indent=2))
    print(f"saved {save('processors_release', result)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
