"""Helpers for the connectors' broker tests: the real sandbox (a subprocess on a free port), the
connector service in a background thread (its own event loop), records and fast topologies."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from connectors.sandbox.server import wait_ready
from connectors.service import ConnectorService
from connectors.settings import ConnectorSettings
from hub.delivery import DeliveryRecord, derive_delivery_id
from hub.topology import Topology
from tests.kafka_support import ROOT, iter_free_ports, produce

FAST_CONSUMER = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 500}


class Sandbox:
    """The sandbox server as a subprocess (separate GIL, like production)."""

    def __init__(self, port: int):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Sandbox:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "connectors.sandbox", "--port", str(self.port), "--seed", "7"],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        wait_ready(self.url)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def reset(self) -> None:
        httpx.post(f"{self.url}/_control/reset").raise_for_status()

    def faults(self, name: str, **changes: Any) -> dict[str, Any]:
        response = httpx.post(f"{self.url}/_control/{name}", json=changes)
        response.raise_for_status()
        return dict(response.json())

    def heal(self, name: str) -> None:
        self.faults(
            name, down=False, error_rate=0.0, fail_next=0, latency_ms=0, retry_after=None, body=None, status_code=500
        )

    def received(self, name: str) -> dict[str, Any]:
        response = httpx.get(f"{self.url}/_control/{name}/received", timeout=10)
        response.raise_for_status()
        return dict(response.json())


def free_port(start: int) -> int:
    return next(iter_free_ports(start))


class ConnectorThread:
    """ConnectorService running in its own thread and event loop; stop() is a clean SIGTERM-like stop."""

    def __init__(self, settings: ConnectorSettings, topology: Topology, destinations: list[str]):
        self.settings = settings
        self.topology = topology
        self.destinations = destinations
        self.service: ConnectorService | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.error: BaseException | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True, name="connectors")

    def _main(self) -> None:
        async def amain() -> None:
            self.loop = asyncio.get_running_loop()
            self.service = ConnectorService(
                self.settings, self.topology, self.destinations, consumer_overrides=FAST_CONSUMER
            )
            self._ready.set()
            await self.service.run()

        try:
            asyncio.run(amain())
        except BaseException as exc:
            self.error = exc
            self._ready.set()

    def __enter__(self) -> ConnectorThread:
        self._thread.start()
        assert self._ready.wait(20), "connector service did not start"
        if self.error:
            raise self.error
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.loop is not None and self.service is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.service.stop)
        self._thread.join(40)
        assert not self._thread.is_alive(), "connector service did not stop"

    def worker(self, name: str) -> Any:
        assert self.service is not None
        return self.service.workers[name]

    def call(self, fn: Any) -> Any:
        """Run fn() on the service's loop thread (worker state is loop-owned) and return its result."""
        assert self.loop is not None

        async def run() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)


def settings_for(bootstrap: str, sandbox: Sandbox, **overrides: Any) -> ConnectorSettings:
    values: dict[str, Any] = {
        "kafka_bootstrap_servers": bootstrap,
        "sandbox_url": sandbox.url,
        "status_port": 0,
        "commit_interval_ms": 100,
        "health_interval_s": 2.0,
        "shutdown_grace_s": 5.0,
    }
    values.update(overrides)
    return ConnectorSettings(**values)


def fast_topology(
    hub: Topology,
    *,
    tiers: tuple[str, ...] = ("1s", "2s"),
    open_for: str = "2s",
    consecutive_failures: int = 3,
    jitter: float = 0.0,
    concurrency: int | None = None,
    rate: float = 10_000,
) -> Topology:
    """The test hub's topology with short retry tiers and breaker windows (same topics: tiers are cut to
    the destination's real number of retry topics)."""
    raw = hub.model_dump(mode="json")
    for name, dest in raw["destinations"].items():
        dest["retry"] = {"tiers": list(tiers[: len(hub.destinations[name].retry.tiers)]), "jitter": jitter}
        dest["breaker"] = {
            **dest["breaker"],
            "open_for": open_for,
            "consecutive_failures": consecutive_failures,
            "min_calls": 1000,
        }
        dest["rate_limit"] = {"per_second": rate, "burst": int(rate)}
        if concurrency is not None:
            dest["concurrency"] = concurrency
    for route in raw["routes"].values():
        for target in route["to"].values():
            target.pop("retry", None)
    return Topology.model_validate(raw)


def delivery(
    destination: str,
    *,
    key: str | None = None,
    payload: dict[str, Any] | None = None,
    path: str = "/api/leads",
    message_type: str | None = None,
    event_type: str = "lead.created",
    not_before: datetime | None = None,
) -> DeliveryRecord:
    event_id = uuid.uuid4()
    return DeliveryRecord(
        delivery_id=derive_delivery_id(event_id, destination),
        event_id=event_id,
        event_type=event_type,
        source="site",
        destination=destination,
        priority=2,
        entity_key=key or f"lead-{event_id.hex[:8]}",
        path=path,
        payload=payload if payload is not None else {"nome": "Maria", "seq": 0},
        message_type=message_type,
        created_at=datetime.now(UTC),
        not_before=not_before,
    )  # type: ignore[arg-type]


def send(bootstrap: str, topology: Topology, records: list[DeliveryRecord]) -> None:
    from confluent_kafka import Producer

    from hub.kafka_config import producer_config

    producer = Producer(producer_config(bootstrap, client_id="tests"))
    for r in records:
        producer.produce(
            topology.delivery_topic(r.destination),
            value=r.to_json(),
            key=r.entity_key.encode(),
            headers=r.kafka_headers(),
        )
    assert producer.flush(15) == 0


def wait_for(predicate: Any, timeout: float = 20.0, message: str = "condition", interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message} (last={last!r})")


__all__ = [
    "ConnectorThread",
    "Sandbox",
    "delivery",
    "fast_topology",
    "free_port",
    "os",
    "produce",
    "send",
    "settings_for",
    "wait_for",
]
