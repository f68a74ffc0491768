"""How the processors worker's memory grows with the traffic it has routed (not a test):

    .venv/bin/python -m bench.processors_state [--events 200000] [--step 50000] [--store rocksdb --store memory]

For each table store (`CARINHO_TABLE_STORE`), one worker with the trail index on (as in production)
routes `--events` pre-produced events of the five types; every `--step` routed events the worker's
RSS is sampled. The dedupe table keeps an entry per event for 7 days and the trail index the event's
hops for 30 days, so with the in-memory store RSS grows with the events routed; on disk
(processors/state_store.py) it should not. Prints one JSON summary: RSS at each step, the slope in MB
per 100,000 events, the CPU µs per routed event and the events routed per second.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid

import httpx
from confluent_kafka import Consumer, TopicPartition

from bench.common import ROOT, bench_broker, drop_hub, machine, save
from bench.processors_routing import INPUT_LEVEL, FaustWorker, cpu_seconds, fill, hub
from hub.kafka_config import consumer_config
from hub.topology import Topology, load_topology


def run(bootstrap: str, store: str, events: int, step: int, port: int) -> dict[str, object]:
    topology = hub(load_topology(ROOT / "topics.yaml"), bootstrap)
    try:
        fill(bootstrap, topology, events, INPUT_LEVEL)
        with tempfile.TemporaryDirectory() as data_dir:
            worker = FaustWorker(bootstrap, topology, port, data_dir, CARINHO_TABLE_STORE=store)
            try:
                samples: list[tuple[int, float]] = []
                first_cpu: float | None = None
                first_at = 0.0
                first_count = 0
                deadline = time.monotonic() + 1800
                while time.monotonic() < deadline:
                    count = worker.routed()
                    if count > 0 and first_cpu is None:
                        first_cpu, first_count, first_at = cpu_seconds(worker.ps), count, time.monotonic()
                    if count >= (len(samples) + 1) * step:
                        samples.append((count, worker.ps.memory_info().rss / 1e6))
                    if count >= events:
                        break
                    time.sleep(0.25)
                else:
                    raise TimeoutError(f"the worker routed {worker.routed()} of {events} events")
                assert first_cpu is not None
                cpu = cpu_seconds(worker.ps) - first_cpu
                elapsed = time.monotonic() - first_at
                # Routed is not done: the trail index lags behind the router (its own lane, or
                # Faust's stream before). Done is every hop on the trail topic (only this worker
                # writes there) indexed.
                hops = trail_end(bootstrap, topology)
                while time.monotonic() < deadline and indexed(worker) < hops:
                    time.sleep(0.25)
                indexed_cpu = cpu_seconds(worker.ps) - first_cpu
                indexed_elapsed = time.monotonic() - first_at
                indexed_total = indexed(worker)
            finally:
                worker.stop()
    finally:
        drop_hub(topology.namespace, bootstrap)
    (n0, rss0), (n1, rss1) = samples[0], samples[-1]
    return {
        "rss_mb_at": {str(n): round(rss, 1) for n, rss in samples},
        "rss_mb_per_100k_events": round((rss1 - rss0) / max(1, n1 - n0) * 100_000, 1),
        "cpu_us_per_event": round(cpu / max(1, samples[-1][0] - first_count) * 1e6, 1),
        "events_per_s": round((samples[-1][0] - first_count) / elapsed),
        "trail_hops": hops,
        "trail_hops_indexed": indexed_total,
        # Until the last hop is indexed (what a production worker sustains).
        "cpu_us_per_event_indexed": round(indexed_cpu / max(1, samples[-1][0] - first_count) * 1e6, 1),
        "events_per_s_indexed": round((samples[-1][0] - first_count) / indexed_elapsed),
    }


def trail_end(bootstrap: str, topology: Topology) -> int:
    """Records on the trail topic (the sum of its partitions' high watermarks)."""
    topic = topology.system_topic("trail")
    consumer = Consumer(
        consumer_config(bootstrap, group_id=f"bench-trail-{uuid.uuid4().hex[:8]}", client_id="bench-trail")
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions)
    finally:
        consumer.close()


def indexed(worker: FaustWorker) -> int:
    """Hops the worker indexed since start (its /health, like the routed count)."""
    return int(httpx.get(f"http://127.0.0.1:{worker.port}/health", timeout=10).json()["trail_indexed"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--step", type=int, default=50_000)
    parser.add_argument("--store", action="append", choices=["rocksdb", "memory"])
    parser.add_argument("--port", type=int, default=16092)
    args = parser.parse_args(argv)
    results: dict[str, object] = {}
    summary: dict[str, object] = {"benchmark": "processors_state", "machine": machine(), "args": vars(args)}
    with bench_broker() as bootstrap:
        for store in args.store or ["rocksdb", "memory"]:
            results[store] = run(bootstrap, store, args.events, args.step, args.port)
            print(store, results[store], file=sys.stderr, flush=True)
    summary["results"] = results
    print(json.dumps(summary, indent=2))
    print(f"saved {save('processors_state', summary)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
