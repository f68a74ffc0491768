"""The whole hub, end to end (not a test): events posted to the ingress reach their destinations
exactly once each, how fast, and what every process spends.

    .venv/bin/python -m bench.hub_end_to_end [--rates 200,500,1000] [--seconds 20] [--batch 20]

Starts a local hub with deploy/local/hub.sh in a temporary run directory: its own KRaft broker on a
free port, the sandbox destinations, the connectors, the processors and the ingress, as `make up`
runs them. The destinations' rate limits are raised for the run (topics.yaml caps them at 10-200/s,
which would be the bottleneck by design). After a warm-up at the first rate (not reported; 10 s steps
until the new broker's JIT compiler is quiet, see bench/broker_warmup.py), for each offered rate in
turn:

* posts `lead.created` events (each with its own idempotency key) to POST /v1/events/batch in
  batches of --batch, paced to the rate, for --seconds; every lead goes to crm and marketing, and
  gets a WhatsApp auto-reply: three deliveries per event;
* waits until every accepted event reached all three destinations, or --drain-timeout passes;
* checks the invariant: each accepted event delivered to each destination exactly once (by the
  event id the connectors send in X-Event-Id; the sandbox also counts repeated Idempotency-Keys),
  the auto-reply by WhatsApp or, while WhatsApp's breaker is open, by SMS (the fallback); replies
  that reached both channels are counted apart;
* reports retries, fallbacks, dead letters and breaker openings per destination (connectors' /status);
* reports the delivered rate (events whose three deliveries all arrived, per second from the first
  202 to the last delivery), the latency from the ingress's 202 to the destination's receipt (p50,
  p99, max; one clock: every process runs on this machine), the CPU per event of each process
  (and, apart, the part of the broker's that its JIT compiler took: `broker_jit`), and the
  machine's speed meanwhile (`probe_ms`, bench/machine_speed.py; higher is slower).

A rate the hub sustains drains within about its latency once the posting stops; a rate above what
it sustains shows as a drain time that grows with --seconds. Exits 1 when the invariant fails.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psutil  # type: ignore[import-untyped]
import yaml

from bench.broker_warmup import JitWatch, warm_until_settled
from bench.common import ROOT, broker_process, cpu_seconds_with_children, free_port, machine, save
from bench.machine_speed import SpeedProbe
from hub.topology import load_topology
from ingress.api_keys import ApiKeyStore

HUB_SH = ROOT / "deploy" / "local" / "hub.sh"
DESTINATIONS = ("crm", "marketing", "whatsapp")  # where a lead.created goes (topics.yaml routes + automations)
FALLBACK = "sms"  # the auto-reply's channel while WhatsApp's breaker is open
SERVICES = ("ingress", "processors", "connectors", "sandbox")
PAGE = 5000


class Hub:
    """A local hub (deploy/local/hub.sh) in its own run directory and ports."""

    def __init__(self, run_dir: Path, topology_file: Path, settings: dict[str, str] | None = None):
        self.run_dir = run_dir
        self.ports = {name: free_port() for name in ("kafka", "ingress", "sandbox", "processors", "connectors")}
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("CARINHO_", "KAFKA_"))},
            "HUB_RUN_DIR": str(run_dir),
            "KAFKA_PORT": str(self.ports["kafka"]),
            "KAFKA_HEAP": "1g",
            "CARINHO_TOPOLOGY_FILE": str(topology_file),
            "CARINHO_INGRESS_PORT": str(self.ports["ingress"]),
            "CARINHO_SANDBOX_PORT": str(self.ports["sandbox"]),
            "CARINHO_PROCESSORS_PORT": str(self.ports["processors"]),
            "CARINHO_CONNECTORS_PORT": str(self.ports["connectors"]),
            **(settings or {}),  # --env: the services' settings for an A/B
        }

    def sh(self, action: str) -> None:
        done = subprocess.run([str(HUB_SH), action], env=self.env, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"hub.sh {action} failed:\n{done.stdout}\n{done.stderr}")

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def processes(self) -> dict[str, Any]:
        found = {name: psutil.Process(int((self.run_dir / "pids" / f"{name}.pid").read_text())) for name in SERVICES}
        broker = broker_process(f"127.0.0.1:{self.ports['kafka']}")
        if broker is not None:
            found["broker"] = broker
        return found


def bench_topology(workdir: Path) -> Path:
    """topics.yaml with every destination's rate limit out of the way."""
    raw = load_topology(ROOT / "topics.yaml").model_dump(mode="json")
    for destination in raw["destinations"].values():
        destination["rate_limit"] = {"per_second": 1_000_000, "burst": 1_000_000}
    path = workdir / "topics.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True))
    return path


def lead(key: str, i: int) -> dict[str, Any]:
    return {
        "type": "lead.created",
        "idempotency_key": key,
        "data": {"name": "Maria Souza", "phone": f"+55 11 9{i % 100_000_000:08d}", "origin": "site"},
        "metadata": {"utm": {"source": "bench", "campaign": "e2e"}},
    }


async def post_at_rate(
    client: httpx.AsyncClient, url: str, api_key: str, rate: float, seconds: float, batch: int, run: str
) -> tuple[dict[str, float], int]:
    """Posts leads at `rate` events/s; returns {event_id: time of its 202} and the count refused."""
    accepted: dict[str, float] = {}
    refused = 0
    interval = batch / rate
    started = time.monotonic()
    in_flight: set[asyncio.Task[None]] = set()
    limit = asyncio.Semaphore(16)  # a slow ingress shows as lag, not as unbounded client tasks

    async def one(n: int) -> None:
        nonlocal refused
        async with limit:
            items = [lead(f"{run}-{n}-{j}", n * batch + j) for j in range(batch)]
            try:
                response = await client.post(url, json={"events": items}, headers={"X-API-Key": api_key})
            except httpx.HTTPError:
                refused += batch
                return
            now = time.time()
            if response.status_code not in (200, 202, 207):
                refused += batch
                return
            for result in response.json()["results"]:
                if result.get("status") == 202:
                    accepted[result["event_id"]] = now
                else:
                    refused += 1

    n = 0
    while time.monotonic() - started < seconds:
        due = started + n * interval
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(n))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
        n += 1
    await asyncio.gather(*in_flight)
    return accepted, refused


def received(hub: Hub, destination: str) -> dict[str, Any]:
    """Everything the sandbox destination took (paged), with its duplicate count."""
    items: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    while True:
        response = httpx.get(
            f"{hub.url('sandbox')}/_control/{destination}/received",
            params={"offset": len(items), "limit": PAGE},
            timeout=60,
        )
        response.raise_for_status()
        summary = response.json()
        items.extend(summary["items"])
        if len(summary["items"]) < PAGE:
            break
    summary["items"] = items
    return summary


def unique_count(hub: Hub, destination: str) -> int:
    response = httpx.get(f"{hub.url('sandbox')}/_control/{destination}/received", params={"limit": 0}, timeout=30)
    response.raise_for_status()
    return int(response.json()["unique"])


def connector_stats(hub: Hub) -> dict[str, dict[str, int]]:
    """Per destination: retries, fallbacks, dead letters so far, and how often its breaker opened."""
    response = httpx.get(f"{hub.url('connectors')}/status", timeout=30)
    response.raise_for_status()
    out = {}
    for name, state in response.json()["destinations"].items():
        out[name] = {k: int(state["stats"][k]) for k in ("retry", "fallback", "dead_letter")}
        out[name]["opened"] = int(state["breaker"]["opened_count"])
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def run_rate(hub: Hub, api_key: str, rate: float, seconds: float, batch: int, drain_timeout: float) -> dict[str, Any]:
    httpx.post(f"{hub.url('sandbox')}/_control/reset", timeout=10).raise_for_status()
    procs = hub.processes()
    cpu_before = {name: cpu_seconds_with_children(p) for name, p in procs.items()}
    jit = JitWatch(procs["broker"].pid) if "broker" in procs else None
    jit_before = jit.cpu_seconds() if jit is not None else 0.0
    stats_before = connector_stats(hub)
    run = uuid.uuid4().hex[:8]

    async def send() -> tuple[dict[str, float], int]:
        async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=16)) as client:
            return await post_at_rate(
                client, f"{hub.url('ingress')}/v1/events/batch", api_key, rate, seconds, batch, run
            )

    sent_at = time.time()
    accepted, refused = asyncio.run(send())
    posting_ended = time.time()
    deadline = time.monotonic() + drain_timeout
    while time.monotonic() < deadline:
        counts = {d: unique_count(hub, d) for d in (*DESTINATIONS, FALLBACK)}
        counts["whatsapp"] += counts.pop(FALLBACK)
        if all(n >= len(accepted) for n in counts.values()):
            break
        time.sleep(0.5)
    time.sleep(2.0)  # anything delivered twice would arrive now
    cpu = {name: cpu_seconds_with_children(p) - cpu_before[name] for name, p in procs.items()}
    jit_seconds = jit.cpu_seconds() - jit_before if jit is not None else None
    result: dict[str, Any] = {
        "offered_events_per_s": rate,
        "posted_seconds": round(posting_ended - sent_at, 1),
        "accepted": len(accepted),
        "refused": refused,
        "destinations": {},
    }
    last_delivery = 0.0
    violations = 0
    complete = set(accepted)
    first_at: dict[str, dict[str, float]] = {}  # destination -> event id -> first receipt
    for destination in (*DESTINATIONS, FALLBACK):
        got = received(hub, destination)
        per_event: dict[str, list[float]] = {}
        for item in got["items"]:
            event_id = item.get("headers", {}).get("x-event-id")
            if event_id in accepted:
                per_event.setdefault(event_id, []).append(item["received_at"])
        first_at[destination] = {e: times[0] for e, times in per_event.items()}
        twice = [e for e, times in per_event.items() if len(times) > 1]
        violations += len(twice)
        latencies = [(times[0] - accepted[e]) * 1000 for e, times in per_event.items()]
        last_delivery = max([last_delivery, *first_at[destination].values()])
        result["destinations"][destination] = {
            "delivered_once": len(per_event) - len(twice),
            "delivered_more_than_once": len(twice),
            "repeated_idempotency_keys_at_sandbox": got["duplicates"],
            "latency_ms_p50": round(percentile(latencies, 0.50), 1),
            "latency_ms_p99": round(percentile(latencies, 0.99), 1),
            "latency_ms_max": round(max(latencies, default=0.0), 1),
        }
    # The auto-reply goes to WhatsApp, or to SMS when WhatsApp's breaker is open (the fallback).
    reached = {d: set(first_at[d]) for d in DESTINATIONS}
    reached["whatsapp"] |= set(first_at[FALLBACK])
    for destination, events in reached.items():
        missing = len(accepted) - len(events & set(accepted))
        result["destinations"][destination]["missing"] = missing
        violations += missing
        complete &= events
    result["auto_reply_by_sms_fallback"] = len(first_at[FALLBACK])
    result["auto_reply_on_both_channels"] = len(set(first_at[FALLBACK]) & set(first_at["whatsapp"]))
    after = connector_stats(hub)
    result["connectors"] = {
        d: {k: after[d][k] - stats_before[d][k] for k in ("retry", "fallback", "dead_letter", "opened")}
        for d in (*DESTINATIONS, FALLBACK)
    }
    first_accept = min(accepted.values(), default=sent_at)
    result["events_complete"] = len(complete)
    result["delivered_events_per_s"] = round(len(complete) / max(last_delivery - first_accept, 1e-6), 1)
    result["drain_seconds_after_posting"] = round(max(last_delivery - posting_ended, 0.0), 2)
    result["cpu_us_per_event"] = {name: round(s / max(len(accepted), 1) * 1e6, 1) for name, s in cpu.items()}
    result["cpu_us_per_event"]["all"] = round(sum(cpu.values()) / max(len(accepted), 1) * 1e6, 1)
    if jit_seconds is not None:  # the broker's figure includes it: a JIT still compiling shows here
        result["cpu_us_per_event"]["broker_jit"] = round(jit_seconds / max(len(accepted), 1) * 1e6, 1)
    result["invariant_violations"] = violations
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="200,500,1000", help="offered events/s, comma-separated, run in turn")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long each rate is offered")
    parser.add_argument("--batch", type=int, default=20, help="events per POST /v1/events/batch")
    parser.add_argument("--drain-timeout", type=float, default=180.0)
    parser.add_argument(
        "--warm-up-max", type=float, default=180.0, help="seconds the warm-up may take at most (until the JIT settles)"
    )
    parser.add_argument("--env", action="append", default=[], help="VAR=value for every hub service (repeatable)")
    args = parser.parse_args(argv)
    rates = [float(r) for r in args.rates.split(",")]
    summary: dict[str, Any] = {"machine": machine(), "command": " ".join(sys.argv), "rates": []}
    # The machine's speed during each rate (bench/machine_speed.py): compare runs taken at similar speeds.
    with tempfile.TemporaryDirectory(prefix="carinho-e2e-") as tmp, SpeedProbe() as probe:
        settings = dict(item.split("=", 1) for item in args.env)
        hub = Hub(Path(tmp) / "run", bench_topology(Path(tmp)), settings)
        started = time.monotonic()
        try:
            hub.sh("up")  # inside the try: a start that fails half-way is stopped too
            summary["hub_up_seconds"] = round(time.monotonic() - started, 1)
            api_key = ApiKeyStore(hub.run_dir / "api-keys.json").create("site", rate_limit_per_second=1e6)[1]
            time.sleep(2.0)  # the ingress reloads its key file every second
            # Warm-up, not reported: the services' first connections and the new broker's JIT would
            # otherwise land on the first rate's figures. The JIT took ~80 s of this load on a 2-core
            # machine (bench/broker_warmup.py): 10 s steps at the first rate until it is quiet.
            summary["warm_up"] = warm_until_settled(
                f"127.0.0.1:{hub.ports['kafka']}",
                lambda: run_rate(hub, api_key, rates[0], 10.0, args.batch, args.drain_timeout),
                max_seconds=args.warm_up_max,
            )
            for rate in rates:
                rate_started = time.monotonic()
                row = run_rate(hub, api_key, rate, args.seconds, args.batch, args.drain_timeout)
                row["probe_ms"] = probe.median_ms(rate_started)
                print(json.dumps(row), flush=True)
                summary["rates"].append(row)
        finally:
            hub.sh("down")
    ok = all(row["invariant_violations"] == 0 and row["accepted"] > 0 for row in summary["rates"])
    summary["invariant_holds"] = ok
    save("hub_end_to_end", summary)
    print(json.dumps(summary, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
