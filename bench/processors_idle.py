"""What a processors worker costs with nothing to route (not a test):

    .venv/bin/python -m bench.processors_idle [--seconds 10] [--rounds 2] [--idle-wait-ms 500 --idle-wait-ms 10]
        [--scenario fresh --scenario after-traffic]

Two scenarios, trail index on (as in production):

- *fresh*: one worker started on an empty hub;
- *after-traffic*: two workers of one hub route `--events` events, then nothing more comes (a hub
  at night: Faust has prefetched its tables' changelog partitions, which it reads only in a recovery).

Once the workers are ready (and, after traffic, every event routed) and have settled, their process
CPU is counted for `--seconds`. Each `--idle-wait-ms` value (`CARINHO_FETCH_IDLE_WAIT_MS`: how long a
fetch that found nothing may be parked at the broker for its first byte, processors/fetch_tuning.py)
gets its own workers, alternating, `--rounds` times. 10 ms is what every fetch waited before the idle
wait existed. Prints one JSON summary: the share of one core each worker used (mean of the workers),
per round and as medians.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time

from bench.common import ROOT, bench_broker, drop_hub, free_port, machine, median, save
from bench.processors_restart import ready
from bench.processors_routing import INPUT_LEVEL, FaustWorker, cpu_seconds, fill, hub
from hub.topology import load_topology

SETTLE_SECONDS = 10.0  # after /health says ready: the group's first commits and table timers


def run_once(bootstrap: str, idle_wait_ms: int, seconds: float, workers: int, events: int) -> float:
    """The share of one core each of `workers` idle workers used over `seconds` (their mean), after
    they routed `events` events."""
    topology = hub(load_topology(ROOT / "topics.yaml"), bootstrap)
    running: list[FaustWorker] = []
    try:
        with tempfile.TemporaryDirectory() as data_dir:
            env = {"CARINHO_FETCH_IDLE_WAIT_MS": str(idle_wait_ms)}
            try:
                for _ in range(workers):
                    running.append(FaustWorker(bootstrap, topology, free_port(), data_dir, **env))
                    ready(running[-1])
                if events:
                    time.sleep(SETTLE_SECONDS)  # the group balanced over every worker
                    fill(bootstrap, topology, events, INPUT_LEVEL)
                    deadline = time.monotonic() + 600
                    while sum(max(0, w.routed()) for w in running) < events and time.monotonic() < deadline:
                        time.sleep(0.5)
                time.sleep(SETTLE_SECONDS)
                cpu0, began = sum(cpu_seconds(w.ps) for w in running), time.monotonic()
                time.sleep(seconds)
                used = sum(cpu_seconds(w.ps) for w in running) - cpu0
                return round(used / (time.monotonic() - began) / workers, 3)
            finally:
                for w in running:
                    w.stop()
    finally:
        drop_hub(topology.namespace, bootstrap)


SCENARIOS = {"fresh": (1, 0), "after-traffic": (2, 10_000)}  # (workers, events routed first)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--idle-wait-ms", type=int, action="append")
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), action="append")
    args = parser.parse_args(argv)
    waits = args.idle_wait_ms or [500, 10]
    scenarios = args.scenario or ["fresh", "after-traffic"]
    summary: dict[str, object] = {"benchmark": "processors_idle", "machine": machine(), "args": vars(args)}
    rounds: dict[str, list[float]] = {f"{name}_idle_wait_{ms}ms": [] for name in scenarios for ms in waits}
    with bench_broker() as bootstrap:
        for _ in range(args.rounds):
            for name in scenarios:
                for ms in waits:
                    share = run_once(bootstrap, ms, args.seconds, *SCENARIOS[name])
                    rounds[f"{name}_idle_wait_{ms}ms"].append(share)
                    print(f"{name}, idle wait {ms} ms: {share:.3f} of a core", file=sys.stderr, flush=True)
    summary["results"] = {
        "core_share_per_worker_rounds": rounds,
        "median_core_share_per_worker": {name: median(shares) for name, shares in rounds.items()},
    }
    print(json.dumps(summary, indent=2))
    print(f"saved {save('processors_idle', summary)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
