"""A/B of Faust workers from different checkouts on the same input (not a test; for design decisions):

    .venv/bin/python -m bench.processors_ab --bootstrap 127.0.0.1:19992 \\
        --variant base:@/path/to/worktree --variant cur: [--rounds 3] [--events 60000]

Each variant is `name:` (this checkout) or `name:@DIR` (e.g. a `git worktree` of the previous commit),
optionally with worker settings after commas: `name:CARINHO_TABLE_STORE=memory`, `name:@DIR,KEY=VALUE`,
and `python=PATH` for another interpreter (a virtualenv's `bin/python` with the project installed).
The variants take turns, round by round, on one broker: each round is `bench.processors_routing`'s
Faust round (a fresh namespace filled with the same event mix, one worker routing it all, trail index
off), so the machine's load hits them alike. Prints each round (events/s, CPU µs per event of the
whole worker process, its main thread's share on a CPU, the machine's speed `probe_ms`) and the
medians per variant, with each variant's ratio to the first one, round by round.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from typing import Any

from bench.common import ROOT, Variant, bench_broker, drop_hub, parse_variant
from bench.machine_speed import SpeedProbe
from bench.processors_routing import INPUT_LEVEL, fill, hub, run_faust
from hub.topology import load_topology


def worker_variant(text: str) -> Variant:
    variant = parse_variant(text)
    if variant.module is not None:
        raise SystemExit(f"--variant {text!r}: the worker is always `python -m processors`, no +MODULE")
    return variant


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", action="append", required=True, help="name:[@DIR][,python=PATH][,KEY=VALUE...]")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--port", type=int, default=16190)
    parser.add_argument("--bootstrap", default=None, help="an existing broker; default: start one")
    args = parser.parse_args(argv)
    variants = [worker_variant(v) for v in args.variant]
    if args.bootstrap:
        return measure(args, args.bootstrap, variants)
    with bench_broker() as bootstrap:
        return measure(args, bootstrap, variants)


def measure(args: argparse.Namespace, bootstrap: str, variants: list[Variant]) -> int:
    base = load_topology(ROOT / "topics.yaml")
    rounds: dict[str, list[dict[str, float]]] = {variant.name: [] for variant in variants}
    with tempfile.TemporaryDirectory(prefix="bench-processors-ab-") as tmp, SpeedProbe() as probe:
        for r in range(args.rounds):
            for name, cwd, env, python, _ in variants:
                topology = hub(base, bootstrap)
                fill(bootstrap, topology, args.events, INPUT_LEVEL)
                started = time.monotonic()
                try:
                    result = run_faust(
                        bootstrap, topology, args.events, args.port, f"{tmp}/{name}-{r}", cwd, env, python
                    )
                finally:
                    drop_hub(topology.namespace, bootstrap)
                result.update(probe.figures(started))
                rounds[name].append(result)
                print(f"round {r} {name}: {json.dumps({k: round(v, 3) for k, v in result.items()})}", flush=True)
    first = variants[0].name
    summary: dict[str, Any] = {"events": args.events, "rounds": args.rounds}
    for name, *_ in variants:
        runs = rounds[name]
        summary[name] = {key: round(statistics.median(run[key] for run in runs), 3) for key in runs[0]}
        summary[name]["events_per_s_rounds"] = [round(run["events_per_s"]) for run in runs]
        if name != first:
            summary[name][f"vs_{first}_rounds"] = [
                round(mine["events_per_s"] / theirs["events_per_s"], 3)
                for mine, theirs in zip(runs, rounds[first], strict=True)
            ]
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
