"""/health/detailed and /status: Kafka reachability, topology, per-destination checks and breaker
states (from the compacted `health` topic the connectors and syncs write), pending events per
priority (the router group's lag) and the open dead-letter records (counted like `carinho dlq stats`
and /ops: operators/dlq_state.py `dead_letter_counts`). Cached briefly so probes stay cheap."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from hub.backlog import router_and_trail_backlog
from hub.kafka_config import consumer_config
from hub.topology import Topology
from ingress.metrics import DEAD_LETTER_RECORDS, PENDING_EVENTS, TRAIL_INDEX_PENDING
from ingress.publisher import Publisher
from ingress.settings import IngressSettings
from operators.dlq_state import DeadLetterCounts, dead_letter_counts
from operators.kafka_io import KafkaUnavailable

log = logging.getLogger("ingress.health")
CACHE_S = 2.0
_COORDINATOR_MOVING = {
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError._TIMED_OUT,
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
}
REFRESH_S = 15.0


class HealthTopicView:
    """Follows the compacted health topic from the beginning; latest value per key."""

    def __init__(self, bootstrap: str, topic: str):
        self.topic = topic
        self.records: dict[str, dict[str, Any]] = {}
        self._stop = threading.Event()
        self._consumer = Consumer(
            consumer_config(bootstrap, group_id="carinho.ingress.health-view", client_id="carinho-ingress-health")
        )
        self._thread = threading.Thread(target=self._run, name="health-topic-view", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=3)

    def _run(self) -> None:
        try:
            metadata = self._consumer.list_topics(self.topic, timeout=10)
            partitions = metadata.topics[self.topic].partitions if self.topic in metadata.topics else {}
            self._consumer.assign([TopicPartition(self.topic, p, 0) for p in partitions])
            while not self._stop.is_set():
                msg = self._consumer.poll(0.5)
                if msg is None or msg.error():
                    continue
                key = (msg.key() or b"").decode(errors="replace")
                if msg.value() is None:
                    self.records.pop(key, None)  # tombstone
                    continue
                try:
                    self.records[key] = orjson.loads(msg.value())
                except orjson.JSONDecodeError:
                    log.warning("unreadable health record", extra={"key": key})
        except KafkaException as exc:
            log.warning("health topic view stopped", extra={"error": str(exc)})
        finally:
            self._consumer.close()

    def by_prefix(self, prefix: str) -> dict[str, dict[str, Any]]:
        return {k.removeprefix(prefix): v for k, v in list(self.records.items()) if k.startswith(prefix)}


class HealthReporter:
    def __init__(self, settings: IngressSettings, topology: Topology, publisher: Publisher, http: httpx.AsyncClient):
        self.settings = settings
        self.topology = topology
        self.publisher = publisher
        self.http = http
        self.view = HealthTopicView(settings.kafka_bootstrap_servers, topology.system_topic("health"))
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}

    def start(self) -> None:
        self.view.start()
        self._refresher = asyncio.get_running_loop().create_task(self._refresh_gauges())

    def stop(self) -> None:
        self._refresher.cancel()
        self.view.stop()

    async def _refresh_gauges(self) -> None:
        """Keep the backlog and dead-letter gauges current for Prometheus alerts, even unqueried."""
        while True:
            try:
                await self.status()
            except Exception:
                log.warning("status refresh failed", exc_info=True)
            await asyncio.sleep(REFRESH_S)

    async def _cached(self, name: str, build: Any) -> dict[str, Any]:
        hit = self._cache.get(name)
        if hit and time.monotonic() - hit[0] < CACHE_S:
            return hit[1]
        value: dict[str, Any] = await build()
        self._cache[name] = (time.monotonic(), value)
        return value

    async def detailed(self) -> dict[str, Any]:
        return await self._cached("detailed", self._build_detailed)

    async def _build_detailed(self) -> dict[str, Any]:
        kafka_ok = await asyncio.to_thread(self.publisher.reachable, 2.0)
        processors = await self._probe(f"{self.settings.processors_url}/health")
        connectors = await self._probe(f"{self.settings.connectors_url}/health")
        checks = self.view.by_prefix("destination:")
        # With the connectors down, the breaker states are their last report, not the present.
        stale = not connectors["reachable"]
        destinations = {
            name: {
                "breaker_state": checks.get(name, {}).get("breaker_state", "unknown"),
                "last_check_at": checks.get(name, {}).get("last_check_at"),
                "last_check_ok": checks.get(name, {}).get("last_check_ok"),
                "last_status": checks.get(name, {}).get("last_status"),
                **({"stale": True} if stale else {}),
            }
            for name in self.topology.destinations
        }
        # `status` (and the HTTP code) is about taking events: Kafka. The rest of the pipeline may be
        # down while events are still accepted (they wait in Kafka): said apart, so a load balancer
        # does not pull a working ingress, and an operator does not read "ok" as "all is well".
        problems = [
            name for name, probe in (("processors", processors), ("connectors", connectors)) if not probe["reachable"]
        ]
        return {
            "status": "ok" if kafka_ok else "degraded",
            "pipeline": "ok" if not problems and kafka_ok else "degraded",
            "unreachable": problems,
            "checked_at": datetime.now(UTC).isoformat(),
            "kafka": {"reachable": kafka_ok, "bootstrap": self.settings.kafka_bootstrap_servers},
            "topology": {
                "loaded": True,
                "version": self.topology.version,
                "event_types": len(self.topology.event_types),
                "destinations": len(self.topology.destinations),
                "routes": len(self.topology.routes),
            },
            "processors": processors,
            "connectors": connectors,
            "destinations": destinations,
        }

    async def _probe(self, url: str) -> dict[str, Any]:
        try:
            response = await self.http.get(url, timeout=1.0)
            return {"reachable": True, "status": response.status_code}
        except httpx.HTTPError as exc:
            return {"reachable": False, "error": type(exc).__name__}

    async def status(self) -> dict[str, Any]:
        return await self._cached("status", self._build_status)

    async def _build_status(self) -> dict[str, Any]:
        pending: dict[str, Any]
        dead_letters: DeadLetterCounts | None = None
        trail: int | None = None
        for attempt in range(10):
            try:
                pending, trail = await asyncio.to_thread(self._lag)
                break
            except KafkaException as exc:
                # A group coordinator moving or loading (fresh cluster, broker restart) is transient.
                if exc.args[0].code() in _COORDINATOR_MOVING and attempt < 9:
                    await asyncio.sleep(0.5)
                    continue
                pending = {"error": str(exc.args[0])}
                break
        if "error" not in pending:
            for level, count in pending.items():
                PENDING_EVENTS.labels(priority=level.removeprefix("p")).set(count)  # "1".."5" like every metric
            dead_letters = await asyncio.to_thread(self._dead_letters)
        if dead_letters is not None:
            # The alert (deploy/prometheus/alerts.yml, analysis 4.2: DLQ > 10 items) is on open items.
            DEAD_LETTER_RECORDS.set(dead_letters.open)
        if trail is not None:
            TRAIL_INDEX_PENDING.set(trail)
        breakers = {
            name: rec.get("breaker_state", "unknown") for name, rec in self.view.by_prefix("destination:").items()
        }
        return {
            "checked_at": datetime.now(UTC).isoformat(),
            "pending_per_priority": pending,
            # Open dead-letter records (pending or edited), as `carinho dlq stats` and /ops count them.
            "dead_letter_size": dead_letters.open if dead_letters is not None else None,
            # Every record on the dead-letter topic within retention, replayed/purged/archived included.
            "dead_letter_records": dead_letters.total if dead_letters is not None else None,
            # Trail records not indexed yet (null: no processors worker indexes the trail).
            "trail_index_pending": trail,
            "breakers": {name: breakers.get(name, "unknown") for name in self.topology.destinations},
            "syncs": self.view.by_prefix("sync:"),
        }

    def _lag(self) -> tuple[dict[str, Any], int | None]:
        backlog, trail = router_and_trail_backlog(self.settings.kafka_bootstrap_servers, self.topology, timeout_s=5)
        return {f"p{level}": count for level, count in backlog.items()}, trail

    def _dead_letters(self) -> DeadLetterCounts | None:
        try:
            return dead_letter_counts(self.topology, self.settings.kafka_bootstrap_servers, timeout=10.0)
        except (KafkaUnavailable, KafkaException) as exc:
            log.warning("dead-letter count failed", extra={"error": str(exc)})
            return None
