"""What a worker on an empty data directory pays to recover the trail index, by changelog layout
(not a test):

    .venv/bin/python -m bench.processors_trail_recovery [--events 20000] [--hops 8] [--rounds 3]

The trail index keeps one entry per hop (processors/trail_index.py). Its changelog is compacted, so
after compaction it holds one record per hop; the layout before held one record per event (the
event's hop list), each record larger. A worker started on an empty directory (a new machine, a
failover without a standby copy) reads the whole compacted changelog before it is ready. This
benchmark writes the compacted changelog of `--events` events with `--hops` hops each (the hops a
hub writes for a lead: accepted, routed, attempts and deliveries; bench.processors_trail_index's
layout), once in each layout, each in its own hub, and times workers started on an empty directory,
alternating the layouts round by round, from launch until /health says ready, with the changelog
records they read. Both layouts are read by the same, current code (the old one is still read and
swept). Each layout is read both ways in every round: by Faust's recovery alone
(CARINHO_CHANGELOG_CATCH_UP=false) and with the bulk catch-up before it (the default,
processors/changelog_catch_up.py). Prints one JSON summary.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import uuid
import zlib
from datetime import UTC, datetime, timedelta

import orjson
from confluent_kafka import Producer

from bench.common import ROOT, bench_broker, drop_hub, free_port, machine, median, save
from bench.processors_restart import start
from bench.processors_routing import hub
from bench.processors_trail_index import event_hops
from hub.kafka_config import producer_config
from hub.topology import Topology, changelog_topic, load_topology
from processors.trail_index import hop_key, index_entry

LAYOUTS = ("per_hop", "hop_list")
READERS = {"faust_recovery": "false", "catch_up": "true"}  # CARINHO_CHANGELOG_CATCH_UP


def write_changelog(bootstrap: str, topology: Topology, layout: str, events: int, hops: int) -> dict[str, int]:
    """The trail index's changelog as compaction leaves it, in one layout; records and bytes written."""
    topic = changelog_topic(topology.router_group, "trail-index")
    partitions = topology.system_topics.trail.partitions
    producer = Producer(producer_config(bootstrap, client_id="bench-trail-changelog", linger_ms=50))
    start_at = datetime.now(UTC) - timedelta(hours=1)
    offsets = [0] * partitions
    records = size = 0
    for n in range(events):
        event_id = uuid.uuid4()
        entries = [index_entry(hop.to_json())[1] for hop in event_hops(event_id, hops, start_at)]
        partition = zlib.crc32(event_id.bytes) % partitions  # as the trail topic's key spreads events
        if layout == "per_hop":
            pairs = []
            for entry in entries:
                pairs.append((hop_key(str(event_id), partition, offsets[partition]), orjson.dumps(entry)))
                offsets[partition] += 1
        else:
            pairs = [(str(event_id).encode(), orjson.dumps(entries))]
        for key, value in pairs:
            producer.produce(topic, value, key, partition=partition)
            records += 1
            size += len(key) + len(value)
        if n % 1000 == 0:
            producer.poll(0)
    assert producer.flush(120) == 0
    return {"records": records, "bytes": size}


def run(bootstrap: str, events: int, hops: int, rounds: int) -> dict[str, object]:
    hubs = {layout: hub(load_topology(ROOT / "topics.yaml"), bootstrap) for layout in LAYOUTS}
    written: dict[str, dict[str, int]] = {}
    cells = [(layout, reader) for layout in LAYOUTS for reader in READERS]
    results: dict[str, list[dict[str, object]]] = {f"{layout}/{reader}": [] for layout, reader in cells}
    try:
        for layout, topology in hubs.items():
            with tempfile.TemporaryDirectory() as data_dir:
                start(bootstrap, topology, free_port(), data_dir)  # creates the changelog topics, empty
            written[layout] = write_changelog(bootstrap, topology, layout, events, hops)
            print(layout, "written", written[layout], file=sys.stderr, flush=True)
        for _ in range(rounds):
            for layout, reader in cells:
                with tempfile.TemporaryDirectory() as empty:
                    seconds, health = start(
                        bootstrap, hubs[layout], free_port(), empty, CARINHO_CHANGELOG_CATCH_UP=READERS[reader]
                    )
                cell = f"{layout}/{reader}"
                results[cell].append({"seconds": round(seconds, 2), "recovered": health["recovered"]})
                print(cell, results[cell][-1], file=sys.stderr, flush=True)
    finally:
        for topology in hubs.values():
            drop_hub(topology.namespace, bootstrap)
    medians = {cell: median([float(r["seconds"]) for r in runs]) for cell, runs in results.items()}  # type: ignore[arg-type]
    return {
        "events": events,
        "hops_per_event": hops,
        "changelog": written,
        "rounds": results,
        "median_seconds_to_ready": medians,
        "per_hop_over_hop_list": {
            reader: round(medians[f"per_hop/{reader}"] / medians[f"hop_list/{reader}"], 2) for reader in READERS
        },
        "faust_recovery_over_catch_up": {
            layout: round(medians[f"{layout}/faust_recovery"] / medians[f"{layout}/catch_up"], 2) for layout in LAYOUTS
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--hops", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    summary: dict[str, object] = {"benchmark": "processors_trail_recovery", "machine": machine(), "args": vars(args)}
    with bench_broker() as bootstrap:
        summary["results"] = run(bootstrap, args.events, args.hops, args.rounds)
    print(json.dumps(summary, indent=2))
    print(f"saved {save('processors_trail_recovery', summary)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
