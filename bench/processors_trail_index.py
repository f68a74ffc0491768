"""The trail indexer's own cost per hop (not a test; for design decisions):

    .venv/bin/python -m bench.processors_trail_index [--events 4000] [--cases 8:4,40:40] [--rounds 3]

Drives `Processors.index_batch` (the real indexer, its table on disk and its changelog producer, on a
real broker) with trail records laid out as a busy hub delivers them. A case HOPS:SPREAD gives each
event HOPS hops (an `accepted`, a `routed`, then attempt/delivered pairs) arriving in SPREAD waves,
between the other events' hops, cut into indexer batches of 500 records: 8:4 is a lead delivered to
three destinations within a few batches, 40:40 an event whose deliveries were retried (each hop
minutes after the last, so each in a batch of its own). `--events` is for 8 hops; a case with more
hops per event has proportionally fewer events. Reports, per round, the process CPU per
hop (all threads: the changelog's producer included) until every changelog record is acknowledged,
and the changelog bytes written per hop. The indexer is the same code in every checkout since the
seventh session (`index_batch(records)`), so run this file in two checkouts to compare a change.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from faust.types import TP

from bench.common import ROOT, bench_broker, drop_hub, machine, median, save
from bench.processors_routing import hub
from hub.topology import Topology, load_topology
from hub.trail import TrailHop
from processors.app import TRAIL_BATCH, Processors
from processors.hole_filler import FetchedRecord
from processors.settings import ProcessorSettings

DESTINATIONS = ("crm", "marketing", "whatsapp")


def event_hops(event_id: uuid.UUID, count: int, start: datetime) -> Iterator[TrailHop]:
    yield TrailHop(event_id=event_id, hop="accepted", at=start, service="ingress", detail={"source": "site"})
    yield TrailHop(
        event_id=event_id,
        hop="routed",
        at=start + timedelta(milliseconds=5),
        service="processors",
        detail={"destinations": list(DESTINATIONS), "priority": 2},
    )
    for n in range(count - 2):
        attempt, final = divmod(n, 2)
        yield TrailHop(
            event_id=event_id,
            hop="delivered" if final else "attempt",
            at=start + timedelta(milliseconds=10 + n),
            service="connectors",
            destination=DESTINATIONS[attempt % len(DESTINATIONS)],
            delivery_id=uuid.uuid5(event_id, str(attempt)),
            attempt=attempt // len(DESTINATIONS) + 1,
            status=200,
            latency_ms=12.5,
            detail={"result": "success", "error_class": None},
        )


def layout(topic: str, events: int, hops: int, spread: int) -> list[list[FetchedRecord]]:
    """Batches of one partition: the hops of every event in `spread` waves (the first hops of all
    events, then the next ones...), each wave cut into indexer batches; offsets contiguous."""
    start = datetime.now(UTC) - timedelta(minutes=1)
    ids = [uuid.uuid4() for _ in range(events)]
    per_event = [[h.to_json() for h in event_hops(event_id, hops, start)] for event_id in ids]
    keys = [str(event_id).encode() for event_id in ids]  # the trail topic's key
    ordered: list[tuple[bytes, bytes]] = []
    bounds = [round(hops * w / spread) for w in range(spread + 1)]
    for low, high in itertools.pairwise(bounds):
        for key, values in zip(keys, per_event, strict=True):
            ordered.extend((key, value) for value in values[low:high])
    records = [FetchedRecord(topic, 0, offset, key, value) for offset, (key, value) in enumerate(ordered)]
    return [records[i : i + TRAIL_BATCH] for i in range(0, len(records), TRAIL_BATCH)]


def one_round(
    bootstrap: str, topology: Topology, data_dir: Path, batches: list[list[FetchedRecord]]
) -> dict[str, float]:
    settings = ProcessorSettings(
        kafka_bootstrap_servers=bootstrap,
        topic_namespace=topology.namespace.rstrip("."),
        topology_file=ROOT / "topics.yaml",
        data_dir=data_dir,
        report_enabled=False,
    )
    processors = Processors(settings)
    processors.ensure_topics()
    processors.offset_guard.reset({TP(batches[0][0].topic, 0): 0})
    processors.app.flow_control.resume()  # as after a rebalance: the indexer stops a batch while it is off
    written = {"records": 0, "bytes": 0}
    produce = processors.outputs.produce_changelog

    def counted(topic: str, key: bytes, value: bytes, partition: int, table: Any) -> None:
        written["records"] += 1
        written["bytes"] += len(key) + len(value)
        produce(topic, key, value, partition, table)

    processors.outputs.produce_changelog = counted  # type: ignore[method-assign]
    hops = sum(len(b) for b in batches)

    async def index_all() -> None:
        for batch in batches:
            await processors.index_batch(batch)
        await processors.outputs.flush()

    started = time.process_time()
    asyncio.run(index_all())
    cpu = time.process_time() - started
    processors.outputs.close()
    return {
        "cpu_us_per_hop": round(cpu / hops * 1e6, 1),
        "changelog_records_per_hop": round(written["records"] / hops, 3),
        "changelog_bytes_per_hop": round(written["bytes"] / hops),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=4000, help="events of the 8-hop case")
    parser.add_argument("--cases", default="8:4,40:40", help="HOPS:SPREAD per event, comma-separated")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    results: dict[str, Any] = {"machine": machine(), "args": vars(args), "cases": {}}
    with bench_broker() as bootstrap:
        for case in args.cases.split(","):
            hops, spread = (int(part) for part in case.split(":"))
            events = max(1, args.events * 8 // hops)  # about the same number of hops in every case
            rounds = []
            for n in range(args.rounds):
                topology = hub(load_topology(ROOT / "topics.yaml"), bootstrap)
                try:
                    batches = layout(topology.system_topic("trail"), events, hops, spread)
                    with tempfile.TemporaryDirectory() as data_dir:
                        rounds.append(one_round(bootstrap, topology, Path(data_dir), batches))
                finally:
                    drop_hub(topology.namespace, bootstrap)
                print(f"{case} (hops:spread), round {n}: {rounds[-1]}", flush=True)
            results["cases"][case] = {
                "events": events,
                "rounds": rounds,
                "median_cpu_us_per_hop": median([r["cpu_us_per_hop"] for r in rounds]),
                "changelog_bytes_per_hop": rounds[-1]["changelog_bytes_per_hop"],
                "changelog_records_per_hop": rounds[-1]["changelog_records_per_hop"],
            }
    save("processors_trail_index", results)
    print(results["cases"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
