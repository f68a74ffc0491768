"""What the whole hub costs with nothing to do (not a test):

    .venv/bin/python -m bench.hub_idle [--settle 60] [--seconds 30] [--rounds 1]
        [--variant name:VAR=value,... --variant other:...]

Starts the hub as `make up` does (bench.hub_end_to_end.Hub: deploy/local/hub.sh in a temporary run
directory, its own broker), waits `--settle` seconds after it is ready (a new broker keeps working
for a minute or two: the figure falls with a longer settle), then counts each process's
CPU (the broker's included) for `--seconds` with no traffic: the hub at night. Each variant (the
services' environment, e.g. `--variant w100:CARINHO_CONNECTOR_FETCH_MAX_WAIT_MS=100`) gets its own
hub, alternating, `--rounds` times. Prints one JSON summary: the share of one core per process, per
round and as medians.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import cpu_seconds_with_children, machine, save_and_show
from bench.hub_end_to_end import Hub, bench_topology


def parse_variant(text: str) -> tuple[str, dict[str, str]]:
    name, _, settings = text.partition(":")
    env = dict(item.split("=", 1) for item in settings.split(",") if item)
    return name or "default", env


def idle_cores(settings: dict[str, str], settle: float, seconds: float) -> dict[str, float]:
    """Share of one core each process of an idle hub used over `seconds`."""
    with tempfile.TemporaryDirectory(prefix="carinho-idle-") as tmp:
        work = Path(tmp)
        hub = Hub(work / "run", bench_topology(work), settings)
        try:
            hub.sh("up")
            time.sleep(settle)
            procs = hub.processes()
            before = {name: cpu_seconds_with_children(p) for name, p in procs.items()}
            began = time.monotonic()
            time.sleep(seconds)
            spent = time.monotonic() - began
            used = {name: (cpu_seconds_with_children(p) - before[name]) / spent for name, p in procs.items()}
        finally:
            hub.sh("down")
    used["all"] = sum(used.values())
    return {name: round(share, 3) for name, share in used.items()}


def _medians(runs: list[dict[str, float]]) -> dict[str, float]:
    return {proc: round(statistics.median(r[proc] for r in runs), 3) for proc in runs[0]}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settle", type=float, default=60.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--variant", action="append", default=[], help="name:VAR=value,... (default: one, as is)")
    args = parser.parse_args(argv)
    variants = [parse_variant(v) for v in args.variant] or [("default", {})]
    rounds: dict[str, list[dict[str, float]]] = {name: [] for name, _ in variants}
    for round_no in range(args.rounds):
        for name, settings in variants:
            cores = idle_cores(settings, args.settle, args.seconds)
            rounds[name].append(cores)
            print(name, round_no, cores, flush=True)
    result: dict[str, Any] = {
        "benchmark": "hub_idle",
        "machine": machine(),
        "command": "python -m bench.hub_idle " + " ".join(argv if argv is not None else sys.argv[1:]),
        "variants": {name: settings for name, settings in variants},
        "rounds": rounds,
        "median_cores": {name: _medians(runs) for name, runs in rounds.items()},
    }
    save_and_show("hub_idle", result)
    return result


if __name__ == "__main__":
    main()
