"""A/B of ingress variants under the same wrk load (not a test; for design decisions):

    .venv/bin/python -m bench.ingress_ab --variant off:CARINHO_GC_TUNING=false --variant on: [--rounds 4]
    .venv/bin/python -m bench.ingress_ab --variant before:@/path/to/worktree --variant after: --batch

Each variant is `name:` followed by comma-separated `VAR=value` settings for its ingress process,
`@DIR` to run the ingress from another checkout (e.g. a `git worktree` of the previous commit), or
`+MODULE` to run another server module on the same port and load instead of `carinho ingress`:
`+bench.ingress_no_kafka` (the ingress with Kafka left out) or `+bench.bare_app` (the bare endpoint),
and `python=PATH` to run it on another interpreter (a virtualenv with the project installed). All
variants run at once on one broker and take 10 s wrk rounds in turn, so the machine's load hits them
alike. Besides wrk's rate and latency, each round reports the CPU time per request of the ingress
process (all threads, and its event loop's thread alone, with the share of the round that thread
waited for a CPU) and of the broker process (figures other load on the machine barely moves), and
the seconds the ingress spent in garbage collections (`carinho_gc_pause_seconds`).
Medians per variant are printed last. Uses KAFKA_BOOTSTRAP_SERVERS or starts its own broker.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil  # type: ignore[import-untyped]

from bench.common import (
    ROOT,
    MainThreadTime,
    bench_broker,
    broker_process,
    cpu_seconds_with_children,
    drop_hub,
    free_port,
    metric_sum,
    parse_variant,
    wait_http,
)
from bench.ingress_throughput import ingress_environment, wrk
from hub.admin import apply_topics
from hub.topology import load_topology
from ingress.api_keys import ApiKeyStore


def gc_seconds(port: int) -> float:
    """Seconds the ingress has spent in garbage collections since it started (hub/gc_tuning.py's
    `carinho_gc_pause_seconds`, all generations)."""
    try:
        return metric_sum(f"http://127.0.0.1:{port}/metrics", "carinho_gc_pause_seconds_sum") or 0.0
    except ValueError:  # a server without /metrics (the bare endpoint)
        return 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", action="append", required=True, help="name:VAR=value,... or name:@DIR")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--batch", action="store_true", help="batches of 500 (4 connections) instead of single events")
    parser.add_argument("--connections", type=int, help="wrk connections (default 32 single, 4 batch)")
    args = parser.parse_args(argv)
    script, connections = ("wrk_batch.lua", 4) if args.batch else ("wrk_event.lua", 32)
    connections = args.connections or connections
    per_request = 500 if args.batch else 1
    variants = [parse_variant(v) for v in args.variant]
    with bench_broker() as bootstrap, tempfile.TemporaryDirectory() as tmp:
        namespace = f"ab{int(time.time())}"
        topology = load_topology(ROOT / "topics.yaml").with_namespace(namespace)
        apply_topics(topology, "local", bootstrap)
        key = ApiKeyStore(Path(tmp) / "keys.json").create(
            "cuidadores" if args.batch else "site", rate_limit_per_second=10**6
        )[1]
        broker = broker_process(bootstrap)
        procs: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
        for name, cwd, extra, python, module in variants:
            server = [python, "-m", *([module] if module else ["cli.main", "ingress"])]
            port = free_port()
            env = {**ingress_environment(bootstrap, Path(tmp) / "keys.json", port, namespace), **extra}
            log = open(ROOT / ".run" / f"bench-ingress-ab-{name}.log", "wb")  # noqa: SIM115 - lives with the process
            procs[name] = (
                subprocess.Popen(server, env=env, cwd=cwd, stdout=log, stderr=log),
                port,
            )
        rounds: dict[str, list[dict[str, float]]] = {name: [] for name in procs}
        load = {"BENCH_API_KEY": key, "BENCH_BATCH": "500"}
        try:
            for name, (_, port) in procs.items():
                wait_http(f"http://127.0.0.1:{port}/health")
                wrk(f"http://127.0.0.1:{port}", script, 3, connections, {**load, "BENCH_RUN": f"w{name}"})
            for r in range(args.rounds):
                for name, (proc, port) in procs.items():
                    ingress = psutil.Process(proc.pid)
                    before = (
                        cpu_seconds_with_children(ingress),
                        cpu_seconds_with_children(broker) if broker else 0.0,
                        gc_seconds(port),
                    )
                    main_thread = MainThreadTime(proc.pid)
                    result = wrk(
                        f"http://127.0.0.1:{port}",
                        script,
                        args.duration,
                        connections,
                        {**load, "BENCH_RUN": f"{name}{r}"},
                    )
                    after = (
                        cpu_seconds_with_children(ingress),
                        cpu_seconds_with_children(broker) if broker else 0.0,
                        gc_seconds(port),
                    )
                    shares, loop_cpu = main_thread.shares(), main_thread.cpu_seconds()
                    requests = result["rps"] * args.duration
                    row = {
                        "events_per_s": result["rps"] * per_request,
                        "p50_ms": result.get("p50_ms", 0.0),
                        "p99_ms": result.get("p99_ms", 0.0),
                        "ingress_cpu_us_per_request": (after[0] - before[0]) / requests * 1e6,
                        # The event loop's own thread (the rest is librdkafka's): the loop caps the rate.
                        "loop_cpu_us_per_request": loop_cpu / requests * 1e6,
                        # The share of the round the loop's thread was on a CPU: ~1 means CPU-bound.
                        "loop_on_cpu": shares["main_thread_on_cpu"],
                        "loop_runqueue_wait": shares["main_thread_runqueue_wait"],
                        "broker_cpu_us_per_request": (after[1] - before[1]) / requests * 1e6,
                        "gc_seconds": after[2] - before[2],
                        "non_2xx": result["non_2xx"],
                        "load_1m": os.getloadavg()[0],
                    }
                    rounds[name].append(row)
                    print(name, r, {k: round(v, 2) for k, v in row.items()}, flush=True)
        finally:
            for proc, _ in procs.values():
                proc.terminate()
            for proc, _ in procs.values():
                proc.wait(timeout=30)
            drop_hub(topology.namespace, bootstrap)
    for name, rows in rounds.items():
        print("median", name, {k: round(statistics.median(row[k] for row in rows), 2) for k in rows[0]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
