"""How long a processors worker takes to restart with a routed history behind it (not a test):

    .venv/bin/python -m bench.processors_restart [--events 100000] [--rounds 3]

One worker with the trail index on (as in production) routes `--events` pre-produced events of the
five types and indexes every hop, so the dedupe and trail-index changelogs hold one record per event
each. Then, alternating, `--rounds` times each:

- *same directory*: a worker restarted on the data directory the tables were written to (what a
  stopped or crashed worker does; its tables keep the changelog offsets they hold,
  processors/state_store.py);
- *new directory*: a worker started on an empty data directory (a new machine, and what every
  restart did before the tables kept their offsets): it reads both changelogs from their start.

Each start is timed from the process's launch until its /health says it is ready (status ok,
partitions assigned: Faust's table recovery is over), with the changelog records it read
(`recovered`). Prints one JSON summary with every round and the medians.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time

import httpx

from bench.common import ROOT, bench_broker, drop_hub, free_port, machine, median, save
from bench.processors_routing import INPUT_LEVEL, FaustWorker, fill, hub
from bench.processors_state import indexed, trail_end
from hub.topology import load_topology


def ready(worker: FaustWorker, timeout: float = 1800) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.proc.poll() is not None:
            raise RuntimeError(f"the worker exited ({worker.proc.returncode}): see {worker.log}")
        try:
            health = httpx.get(f"http://127.0.0.1:{worker.port}/health", timeout=2).json()
        except (httpx.HTTPError, ValueError):
            health = {}
        if health.get("status") == "ok" and health.get("assigned_partitions", 0) > 0:
            return dict(health)
        time.sleep(0.1)
    raise TimeoutError(f"the worker was not ready in {timeout}s: see {worker.log}")


def start(bootstrap: str, topology: object, port: int, data_dir: str, **env: str) -> tuple[float, dict[str, object]]:
    """Seconds from a worker's launch until /health says ready, and that /health; then it is stopped."""
    began = time.monotonic()
    worker = FaustWorker(bootstrap, topology, port, data_dir, **env)  # type: ignore[arg-type]
    try:
        health = ready(worker)
        return time.monotonic() - began, health
    finally:
        worker.stop()


def run(bootstrap: str, events: int, rounds: int) -> dict[str, object]:
    topology = hub(load_topology(ROOT / "topics.yaml"), bootstrap)
    port = free_port()
    try:
        fill(bootstrap, topology, events, INPUT_LEVEL)
        with tempfile.TemporaryDirectory() as data_dir:
            worker = FaustWorker(bootstrap, topology, port, data_dir)
            try:
                deadline = time.monotonic() + 1800
                while worker.routed() < events and time.monotonic() < deadline:
                    time.sleep(0.5)
                hops = trail_end(bootstrap, topology)
                while indexed(worker) < hops and time.monotonic() < deadline:
                    time.sleep(0.5)
                time.sleep(3)  # a commit and a write of the held table writes after the last batch
            finally:
                worker.stop()
            results: dict[str, list[dict[str, object]]] = {"same_directory": [], "new_directory": []}
            for _ in range(rounds):
                seconds, health = start(bootstrap, topology, port, data_dir)
                results["same_directory"].append({"seconds": round(seconds, 2), "recovered": health["recovered"]})
                print("same directory", results["same_directory"][-1], file=sys.stderr, flush=True)
                with tempfile.TemporaryDirectory() as empty:
                    seconds, health = start(bootstrap, topology, free_port(), empty)
                results["new_directory"].append({"seconds": round(seconds, 2), "recovered": health["recovered"]})
                print("new directory", results["new_directory"][-1], file=sys.stderr, flush=True)
    finally:
        drop_hub(topology.namespace, bootstrap)
    medians = {name: median([float(r["seconds"]) for r in runs]) for name, runs in results.items()}  # type: ignore[arg-type]
    return {
        "events": events,
        "trail_hops": hops,
        "rounds": results,
        "median_seconds_to_ready": medians,
        "ratio_new_over_same": round(medians["new_directory"] / medians["same_directory"], 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    summary: dict[str, object] = {"benchmark": "processors_restart", "machine": machine(), "args": vars(args)}
    with bench_broker() as bootstrap:
        summary["results"] = run(bootstrap, args.events, args.rounds)
    print(json.dumps(summary, indent=2))
    print(f"saved {save('processors_restart', summary)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
