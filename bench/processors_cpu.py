"""The processors' routing work in process, without Kafka (not a test; for design decisions):

    .venv/bin/python -m bench.processors_cpu [--events 20000] [--passes 6]

Per event: parse and validate the record (`parse_record`), judge and write the dedupe entry, route with
transforms and automations (`Router.route`) and build every output record (`OutputBuilder.routed`),
plus the changelog entry's JSON: what the worker and both baselines of `bench.processors_routing` do
between consuming and producing. Prints the CPU µs per event of each pass and the minimum (the least
disturbed by other load on the machine). Run it in two checkouts to compare a change.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from typing import Any

import orjson

from bench.common import ROOT
from bench.processors_routing import DEDUPE_WINDOW, INPUT_LEVEL, mix
from hub.topology import load_topology
from processors import dedupe
from processors.output import OutputBuilder
from processors.routing import Router, parse_record


def one_pass(records: list[bytes], router: Router, build: OutputBuilder) -> tuple[float, int]:
    """CPU seconds for routing every record once, and the number of output records built."""
    topology = router.topology
    seen: dict[str, Any] = {}
    outputs = 0
    started = time.process_time()
    now = datetime.now(UTC)
    for offset, value in enumerate(records):
        envelope = parse_record(value, topology, {})
        key = dedupe.dedupe_key(envelope.source, envelope.idempotency_key)
        ref = dedupe.RecordRef("events.p3", 0, offset)
        verdict = dedupe.judge(seen.get(key), ref, time.time(), DEDUPE_WINDOW)
        outcome = router.route(envelope, now)
        outputs += len(
            build.routed(envelope, outcome, level=INPUT_LEVEL, redelivery=verdict is dedupe.Verdict.REDELIVERY)
        )
        fingerprint = dedupe.fingerprint(envelope.type, envelope.data)
        seen[key] = entry = dedupe.entry(ref, time.time(), str(envelope.event_id), fingerprint)
        orjson.dumps(key), orjson.dumps(entry)
    return time.process_time() - started, outputs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--passes", type=int, default=6)
    args = parser.parse_args(argv)
    topology = load_topology(ROOT / "topics.yaml")
    router, build = Router(topology), OutputBuilder(topology, "bench")
    records = [mix(i, INPUT_LEVEL).to_json() for i in range(args.events)]
    per_event = []
    for n in range(args.passes):
        seconds, outputs = one_pass(records, router, build)
        per_event.append(seconds / args.events * 1e6)
        print(f"pass {n}: {per_event[-1]:.1f} CPU us/event, {outputs / args.events:.2f} output records/event")
    print(f"min {min(per_event):.1f} CPU us/event over {args.passes} passes of {args.events} events")
    return 0


if __name__ == "__main__":
    sys.exit(main())
