"""What the standby copies cost two processors workers (not a test):

    .venv/bin/python -m bench.processors_standby [--events 50000] [--rounds 2]

Two workers of one hub share the partitions; with `CARINHO_STANDBY_REPLICAS=1` (the default) each one
also keeps a copy of the other's tables by reading the other's changelogs (dedupe and trail index:
two records per routed event). Three variants, alternating, `--rounds` times each: `none`
(`CARINHO_STANDBY_REPLICAS=0`), `faust` (Faust's standby replicas, `CARINHO_STANDBY_MODE=faust`) and
`follower` (processors/table_follower.py, the default). Each time both workers are started and
balanced, `--events` events of the five types are produced, and the two processes' CPU is counted
until every event is routed, every trail hop indexed and both workers are idle again (the copies
caught up). Prints one JSON summary: CPU µs per event of the two workers together, per round and as
medians, and the ratios to `none`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time

import httpx

from bench.common import ROOT, bench_broker, drop_hub, free_port, machine, median, save
from bench.processors_restart import ready
from bench.processors_routing import INPUT_LEVEL, FaustWorker, cpu_seconds, fill, hub
from bench.processors_state import trail_end
from hub.topology import load_topology

IDLE_CORES = 0.05  # both workers together below this for a second: the standby copies caught up


def health(worker: FaustWorker) -> dict[str, object]:
    return dict(httpx.get(f"http://127.0.0.1:{worker.port}/health", timeout=5).json())


VARIANTS = {
    "none": {"CARINHO_STANDBY_REPLICAS": "0"},
    "faust": {"CARINHO_STANDBY_REPLICAS": "1", "CARINHO_STANDBY_MODE": "faust"},
    "follower": {"CARINHO_STANDBY_REPLICAS": "1", "CARINHO_STANDBY_MODE": "follower"},
}


def run_once(bootstrap: str, events: int, env: dict[str, str]) -> dict[str, float]:
    topology = hub(load_topology(ROOT / "topics.yaml"), bootstrap)
    workers: list[FaustWorker] = []
    try:
        with tempfile.TemporaryDirectory() as data_dir:
            for _ in range(2):
                workers.append(FaustWorker(bootstrap, topology, free_port(), data_dir, **env))
                ready(workers[-1])
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:  # both balanced: each owns partitions, none rebalancing
                states = [health(w) for w in workers]
                if all(s["status"] == "ok" and int(s["assigned_partitions"]) > 0 for s in states):  # type: ignore[call-overload]
                    break
                time.sleep(0.5)
            time.sleep(3)
            cpu0 = sum(cpu_seconds(w.ps) for w in workers)
            began = time.monotonic()
            fill(bootstrap, topology, events, INPUT_LEVEL)
            deadline = time.monotonic() + 1800
            while sum(int(health(w)["routed"]) for w in workers) < events and time.monotonic() < deadline:  # type: ignore[call-overload]
                time.sleep(0.5)
            hops = trail_end(bootstrap, topology)
            while sum(int(health(w)["trail_indexed"]) for w in workers) < hops and time.monotonic() < deadline:  # type: ignore[call-overload]
                time.sleep(0.5)
            routed_at = time.monotonic() - began
            last = sum(cpu_seconds(w.ps) for w in workers)
            while time.monotonic() < deadline:
                time.sleep(1.0)
                now = sum(cpu_seconds(w.ps) for w in workers)
                if now - last < IDLE_CORES:
                    break
                last = now
            cpu = last - cpu0
            return {
                "cpu_us_per_event": round(cpu / events * 1e6, 1),
                "seconds_until_routed_and_indexed": round(routed_at, 1),
            }
    finally:
        for w in workers:
            w.stop()
        drop_hub(topology.namespace, bootstrap)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--variant", action="append", choices=sorted(VARIANTS), help="default: all three")
    args = parser.parse_args(argv)
    summary: dict[str, object] = {"benchmark": "processors_standby", "machine": machine(), "args": vars(args)}
    rounds: dict[str, list[dict[str, float]]] = {name: [] for name in args.variant or VARIANTS}
    with bench_broker() as bootstrap:
        for _ in range(args.rounds):
            for name in rounds:
                result = run_once(bootstrap, args.events, VARIANTS[name])
                rounds[name].append(result)
                print(name, result, file=sys.stderr, flush=True)
    medians = {name: median([r["cpu_us_per_event"] for r in runs]) for name, runs in rounds.items()}
    summary["results"] = {
        "rounds": rounds,
        "median_cpu_us_per_event_both_workers": medians,
        "ratio_to_none": {name: round(m / medians["none"], 2) for name, m in medians.items() if "none" in medians},
    }
    print(json.dumps(summary, indent=2))
    print(f"saved {save('processors_standby', summary)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
