"""Ingress CPU per request, in-process (a companion to bench/ingress_throughput.py that shared, noisy
machines cannot distort much: it counts the process's CPU time, not wall time).

    .venv/bin/python -m bench.ingress_cpu [--requests 5000] [--rounds 5]

Drives the ASGI apps directly (no sockets, no load generator): POST /v1/events and a batch of 500
through the real ingress app with a publisher that acknowledges at once (so Kafka's share is left
out), and the same single request through the bare FastAPI endpoint of bench/bare_app.py. Reports the
median CPU µs per request (and per batch event) over rounds, and the ratio to the bare endpoint.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import ROOT, machine, save_and_show
from hub.logging import configure_logging
from hub.topology import load_topology
from ingress.api_keys import ApiKeyStore
from ingress.app import create_app
from ingress.settings import IngressSettings

SINGLE = (
    b'{"type":"lead.created","data":{"name":"Maria Souza","phone":"+55 11 98765-4321",'
    b'"email":"maria@example.com","origin":"site"},"metadata":{"utm":{"source":"google","campaign":"bench"}}}'
)


def batch_body(size: int) -> bytes:
    items = [
        {"type": "cuidador.updated", "idempotency_key": f"k{i}", "data": {"cuidador_id": str(i), "status": "ativo"}}
        for i in range(size)
    ]
    return json.dumps({"events": items}).encode()


class AckAtOnce:
    """The Publisher interface, acknowledging every write immediately (Kafka's share left out)."""

    def start(self) -> None:
        return None

    async def publish(self, topic: str, value: bytes, key: bytes | None = None, headers: Any = None) -> tuple[int, int]:
        return (0, 0)

    async def publish_many(self, records: Sequence[Any]) -> list[bool]:
        return [True] * len(records)

    def fire_and_forget(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        return None

    def fire_and_forget_many(self, topic: str, records: list[tuple[bytes, bytes]]) -> None:
        return None

    def reachable(self, timeout_s: float = 2.0) -> bool:
        return True

    async def aclose(self, timeout_s: float = 10.0) -> int:
        return 0


async def drive(app: Any, path: str, body: bytes, headers: list[tuple[bytes, bytes]], count: int) -> float:
    """CPU seconds per request for `count` requests; fails unless every answer is 2xx."""
    statuses: dict[int, int] = {}

    async def one(i: int) -> None:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "server": ("127.0.0.1", 8080),
            "client": ("127.0.0.1", 5555),
            "headers": [
                *headers,
                (b"idempotency-key", f"cpu-{i}".encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.sleep(3600)
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses[message["status"]] = statuses.get(message["status"], 0) + 1

        await app(scope, receive, send)

    started = time.process_time()
    for i in range(count):
        await one(i)
    spent = time.process_time() - started
    if set(statuses) - {200, 202}:
        raise RuntimeError(f"unexpected answers: {statuses}")
    return spent / count


async def measure(requests: int, rounds: int, batch: int, log: Any) -> dict[str, Any]:
    from bench.bare_app import app as bare

    with tempfile.TemporaryDirectory() as tmp:
        keys = ApiKeyStore(Path(tmp) / "keys.json")
        site = keys.create("site", rate_limit_per_second=1e9)[1]
        bulk = keys.create("cuidadores", rate_limit_per_second=1e9)[1]
        configure_logging("ingress", "INFO", log)
        settings = IngressSettings(keys_file=Path(tmp) / "keys.json", kafka_bootstrap_servers="127.0.0.1:9")
        app = create_app(settings, load_topology(ROOT / "topics.yaml"), AckAtOnce())  # type: ignore[arg-type]
        json_header = (b"content-type", b"application/json")
        single_headers = [json_header, (b"x-api-key", site.encode())]
        batch_headers = [json_header, (b"x-api-key", bulk.encode())]
        body = batch_body(batch)
        single, bare_single, per_batch = [], [], []
        async with app.router.lifespan_context(app):
            await drive(app, "/v1/events", SINGLE, single_headers, 300)  # warm-up
            await drive(bare, "/v1/events", SINGLE, single_headers, 300)
            for _ in range(rounds):  # alternating, so drift on the machine hits both alike
                single.append(await drive(app, "/v1/events", SINGLE, single_headers, requests))
                bare_single.append(await drive(bare, "/v1/events", SINGLE, single_headers, requests))
                per_batch.append(await drive(app, "/v1/events/batch", body, batch_headers, max(3, requests // 500)))
    med = statistics.median
    return {
        "single_us_per_request": round(med(single) * 1e6, 1),
        "bare_fastapi_us_per_request": round(med(bare_single) * 1e6, 1),
        "single_ratio_to_bare": round(med(single) / med(bare_single), 2),
        "batch_us_per_event": round(med(per_batch) / batch * 1e6, 1),
        "rounds_us": {
            "single": [round(x * 1e6, 1) for x in single],
            "bare": [round(x * 1e6, 1) for x in bare_single],
            "batch_per_event": [round(x / batch * 1e6, 1) for x in per_batch],
        },
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args(argv)
    result: dict[str, Any] = {
        "benchmark": "ingress_cpu",
        "machine": machine(),
        "command": "python -m bench.ingress_cpu " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    # Logs go to a file, as in production (one JSON audit line per request is part of the cost).
    with tempfile.TemporaryDirectory() as tmp, open(Path(tmp) / "ingress.log", "w") as log:
        result.update(asyncio.run(measure(args.requests, args.rounds, args.batch, log)))
    save_and_show("ingress_cpu", result)
    return result


if __name__ == "__main__":
    main()
