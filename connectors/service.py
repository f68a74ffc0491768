"""The connectors service: one DestinationWorker per destination in one process and one event loop,
each with its own consumer group, HTTP pool, concurrency slots, token bucket, breaker and adaptive
timeout — a destination that is down or slow only ever waits on its own resources. Also publishes
breaker state to the `health` topic and serves /health, /status and /metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson

from connectors.delivery_loop import DestinationWorker
from connectors.destinations import build_sender
from connectors.http_pool import PooledClient
from connectors.kafka_io import AsyncProducer, OutRecord
from connectors.settings import ConnectorSettings
from connectors.status_server import StatusApp, embedded_server
from hub.gc_tuning import tune_gc
from hub.topology import Topology

log = logging.getLogger("connectors.service")

RESTART_BACKOFF_S = (1.0, 2.0, 5.0, 10.0)


class ConnectorService:
    def __init__(
        self,
        settings: ConnectorSettings,
        topology: Topology | None = None,
        destinations: Iterable[str] | None = None,
        consumer_overrides: dict[str, Any] | None = None,
    ):
        self.settings = settings
        self.topology = topology or settings.topology()
        names = list(destinations) if destinations else list(self.topology.destinations)
        unknown = [n for n in names if n not in self.topology.destinations]
        if unknown:
            raise ValueError(f"unknown destination(s) {unknown}; known: {sorted(self.topology.destinations)}")
        self.destinations = names
        self.producer = AsyncProducer(settings.kafka_bootstrap_servers, client_id="connectors")
        self.clients: dict[str, PooledClient] = {}
        self.workers: dict[str, DestinationWorker] = {}
        self._consumer_overrides = consumer_overrides
        self._stop = asyncio.Event()
        self._health_dirty: set[str] = set()
        self.started = asyncio.Event()
        self.status_port: int | None = None

    def _build(self) -> None:
        for name in self.destinations:
            spec = self.topology.destinations[name]
            client = PooledClient(spec.concurrency, transport=self.settings.http_transport)
            self.clients[name] = client
            sender = build_sender(name, self.topology, self.settings, client)
            self.workers[name] = DestinationWorker(
                name,
                self.topology,
                sender,
                self.producer,
                bootstrap=self.settings.kafka_bootstrap_servers,
                sms_path=self.settings.sms_path,
                max_buffered=self.settings.max_buffered,
                commit_interval_s=self.settings.commit_interval_ms / 1000,
                delivered_cache_size=self.settings.delivered_cache_size,
                on_health_change=lambda w: self._health_dirty.add(w.name),
                consumer_overrides={
                    "fetch.min.bytes": self.settings.connector_fetch_min_bytes,
                    "fetch.wait.max.ms": self.settings.connector_fetch_max_wait_ms,
                    **(self._consumer_overrides or {}),
                },
            )

    def stop(self) -> None:
        self._stop.set()
        for worker in self.workers.values():
            worker.stop()

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)

    async def run(self) -> None:
        self._build()
        poller = asyncio.create_task(self.producer.run_poller(), name="producer-poller")
        health = asyncio.create_task(self._health_loop(), name="health")
        server_task = None
        server = None
        if self.settings.status_port:
            app = StatusApp(self.status, self.healthy)
            server = embedded_server(app, self.settings.status_host, self.settings.status_port)
            server_task = asyncio.create_task(server.serve(), name="status-server")
        supervisors = [asyncio.create_task(self._supervise(w), name=f"worker-{w.name}") for w in self.workers.values()]
        self.started.set()
        log.info("connectors running", extra={"destinations": self.destinations})
        try:
            await self._stop.wait()
        finally:
            for worker in self.workers.values():
                worker.stop()
            await asyncio.gather(*supervisors, return_exceptions=True)
            self._publish_health(self.workers.values())
            if server is not None:
                server.should_exit = True
            if server_task is not None:
                await asyncio.gather(server_task, return_exceptions=True)
            health.cancel()
            left = await self.producer.flush(10.0)
            if left:
                log.warning("producer not flushed", extra={"records": left})
            poller.cancel()
            await asyncio.gather(poller, health, return_exceptions=True)
            for client in self.clients.values():
                await client.aclose()
            log.info("connectors stopped")

    async def _supervise(self, worker: DestinationWorker) -> None:
        """A crash in one destination's worker restarts that worker only."""
        failures = 0
        while not self._stop.is_set():
            try:
                await worker.run(self.settings.shutdown_grace_s)
                return
            except Exception:
                log.exception("worker crashed; restarting", extra={"destination": worker.name})
                delay = RESTART_BACKOFF_S[min(failures, len(RESTART_BACKOFF_S) - 1)]
                failures += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), timeout=delay)

    async def _health_loop(self) -> None:
        interval = self.settings.health_interval_s
        loop = asyncio.get_running_loop()
        last_full = 0.0
        while True:
            now = loop.time()
            if now - last_full >= interval:
                self._publish_health(self.workers.values())
                self._health_dirty.clear()
                last_full = now
            elif self._health_dirty:
                dirty = [self.workers[n] for n in self._health_dirty]
                self._health_dirty.clear()
                self._publish_health(dirty)
            await asyncio.sleep(0.1)

    def _publish_health(self, workers: Iterable[DestinationWorker]) -> None:
        topic = self.topology.system_topic("health")
        for worker in workers:
            self.producer.produce_nowait(
                OutRecord(topic, f"destination:{worker.name}".encode(), orjson.dumps(worker.health_record()))
            )

    def healthy(self) -> bool:
        return bool(self.workers) and all(w.running for w in self.workers.values())

    def status(self) -> dict[str, Any]:
        return {
            "service": "connectors",
            "at": datetime.now(UTC).isoformat(),
            "healthy": self.healthy(),
            "destinations": {name: w.status() for name, w in self.workers.items()},
        }


def run_forever(settings: ConnectorSettings, destinations: list[str] | None = None) -> None:
    """Entry point of `carinho connectors`: uvloop when available, SIGTERM/SIGINT stop cleanly."""

    async def main() -> None:
        service = ConnectorService(settings, destinations=destinations)
        service.install_signal_handlers()
        tune_gc(settings.gc_tuning)
        await service.run()

    try:
        import uvloop
    except ImportError:
        asyncio.run(main())
    else:
        uvloop.run(main())
