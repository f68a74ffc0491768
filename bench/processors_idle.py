"""What a processors worker costs with nothing to route (not a test):

    .venv/bin/python -m bench.processors_idle [--seconds 10] [--rounds 2] [--idle-wait-ms 500 --idle-wait-ms 10]

One worker (trail index on, as in production) is started on an empty hub and left alone until it is
ready and settled; then its process CPU is counted for `--seconds`. Each `--idle-wait-ms` value
(`CARINHO_FETCH_IDLE_WAIT_MS`: how long a fetch that found nothing may be parked at the broker for its
first byte, processors/fetch_tuning.py) gets its own worker, alternating, `--rounds` times. 10 ms is
what every fetch waited before the idle wait existed. Prints one JSON summary: the share of one core
each worker used, per round and as medians.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time

from bench.common import ROOT, bench_broker, drop_hub, free_port, machine, median, save
from bench.processors_restart import ready
from bench.processors_routing import FaustWorker, cpu_seconds, hub
from hub.topology import load_topology

SETTLE_SECONDS = 10.0  # after /health says ready: the group's first commits and table timers


def run_once(bootstrap: str, idle_wait_ms: int, seconds: float) -> float:
    """The share of one core an idle worker used over `seconds`."""
    topology = hub(load_topology(ROOT / "topics.yaml"), bootstrap)
    try:
        with tempfile.TemporaryDirectory() as data_dir:
            worker = FaustWorker(
                bootstrap, topology, free_port(), data_dir, CARINHO_FETCH_IDLE_WAIT_MS=str(idle_wait_ms)
            )
            try:
                ready(worker)
                time.sleep(SETTLE_SECONDS)
                cpu0, began = cpu_seconds(worker.ps), time.monotonic()
                time.sleep(seconds)
                return round((cpu_seconds(worker.ps) - cpu0) / (time.monotonic() - began), 3)
            finally:
                worker.stop()
    finally:
        drop_hub(topology.namespace, bootstrap)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--idle-wait-ms", type=int, action="append")
    args = parser.parse_args(argv)
    waits = args.idle_wait_ms or [500, 10]
    summary: dict[str, object] = {"benchmark": "processors_idle", "machine": machine(), "args": vars(args)}
    rounds: dict[str, list[float]] = {f"idle_wait_{ms}ms": [] for ms in waits}
    with bench_broker() as bootstrap:
        for _ in range(args.rounds):
            for ms in waits:
                share = run_once(bootstrap, ms, args.seconds)
                rounds[f"idle_wait_{ms}ms"].append(share)
                print(f"idle wait {ms} ms: {share:.3f} of a core", file=sys.stderr, flush=True)
    summary["results"] = {
        "core_share_rounds": rounds,
        "median_core_share": {name: median(shares) for name, shares in rounds.items()},
    }
    print(json.dumps(summary, indent=2))
    print(f"saved {save('processors_idle', summary)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
