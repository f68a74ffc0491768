"""What the ingress routes share: the service state built at start-up, and the publish step
(Kafka write, ack wait, metrics, trail hop) every accepted event goes through."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from pydantic import BaseModel
from starlette.requests import Request

from hub.topology import Topology
from ingress import audit
from ingress.accept import build_envelope, check_scope, validate_event
from ingress.api_keys import ApiKeyStore, Verified
from ingress.errors import ApiError
from ingress.event_schemas import Accepted, data_models
from ingress.fast_path import FastPath
from ingress.health import HealthReporter
from ingress.metrics import EVENTS_ACCEPTED, EVENTS_REJECTED, NOTES, PUBLISH_LATENCY
from ingress.publisher import Publisher, PublishFailed
from ingress.rate_limit import RateLimiter
from ingress.settings import IngressSettings


@dataclass
class Ingress:
    """What the routes need; built once at start-up."""

    settings: IngressSettings
    topology: Topology
    keys: ApiKeyStore
    publisher: Publisher
    limiter: RateLimiter = field(default_factory=RateLimiter)
    models: dict[str, type[BaseModel]] = field(default_factory=dict)
    health: HealthReporter | None = None
    http: httpx.AsyncClient | None = None

    def __post_init__(self) -> None:
        self.models = data_models(self.topology)
        self.fast_path = FastPath(self.topology)
        self.trail_topic = self.topology.system_topic("trail")
        self.audit_topic = self.topology.system_topic("audit")
        self._accepted_children: dict[tuple[str, str, int], Any] = {}
        self._hop_details: dict[tuple[str, int, str], bytes] = {}

    async def publish(
        self,
        topic: str,
        value: bytes,
        key: bytes,
        headers: list[tuple[str, bytes]],
        *,
        source: str,
        event_type: str,
        priority: int,
        event_id: str,
    ) -> None:
        """Write one event and wait for the broker's ack (acks=all); 503 ApiError when it does not come."""
        started = time.perf_counter()
        # The hop's time is the write's start, not its ack: the processors may route the event before
        # the ack is back here, and a trail sorted by time must not show `routed` before `accepted`.
        at = _iso_now()
        try:
            await self.publisher.publish(topic, value, key, headers)
        except PublishFailed as exc:
            EVENTS_REJECTED.labels(source=source, reason="kafka_unavailable").inc()
            raise ApiError.field(
                503,
                "unavailable",
                "(broker)",
                "persisted",
                f"the event was NOT accepted: Kafka did not acknowledge it ({exc.reason}); retry with the same "
                "idempotency key",
                {"Retry-After": str(self.settings.retry_after_s)},
            ) from None
        NOTES.observe(PUBLISH_LATENCY, time.perf_counter() - started)
        self.count_accepted(source, event_type, priority)
        self.trail_accepted(event_id, event_type, priority, source, at)

    def count_accepted(self, source: str, event_type: str, priority: int, count: int = 1) -> None:
        # labels() takes a lock and builds a key each call: keep the few children around.
        child = self._accepted_children.get((source, event_type, priority))
        if child is None:
            child = EVENTS_ACCEPTED.labels(source=source, event_type=event_type, priority=str(priority))
            self._accepted_children[(source, event_type, priority)] = child
        NOTES.inc(child, count)

    def trail_accepted(self, event_id: str, event_type: str, priority: int, source: str, at: bytes) -> None:
        value = self._accepted_hop(event_id, at, event_type, priority, source)
        self.publisher.fire_and_forget(self.trail_topic, value, event_id.encode())

    def trail_accepted_many(self, accepted: list[tuple[str, str, int]], source: str, at: bytes) -> None:
        """The `accepted` hops of a batch's events ((event_id, type, priority) each), in one write."""
        hop = self._accepted_hop
        self.publisher.fire_and_forget_many(
            self.trail_topic,
            [
                (hop(event_id, at, event_type, priority, source), event_id.encode())
                for event_id, event_type, priority in accepted
            ],
        )

    def _accepted_hop(self, event_id: str, at: bytes, event_type: str, priority: int, source: str) -> bytes:
        # The TrailHop JSON built from bytes (hot path: once per accepted event); the detail object is
        # the same for every event of one type, priority and source. Tests read it back through TrailHop.
        detail = self._hop_details.get((event_type, priority, source))
        if detail is None:
            detail = orjson.dumps({"event_type": event_type, "priority": priority, "source": source})
            self._hop_details[(event_type, priority, source)] = detail
        return b'{"event_id":"%s","hop":"accepted","at":"%s","service":"ingress","detail":%s}' % (
            event_id.encode(),
            at,
            detail,
        )


def _iso_now() -> bytes:
    return iso_utc(datetime.now(UTC))


def iso_utc(moment: datetime) -> bytes:
    """An aware time as the trail writes it (ISO 8601, "Z")."""
    return orjson.dumps(moment, option=orjson.OPT_UTC_Z)[1:-1]


async def accept_event(
    ingress: Ingress, request: Request, raw: Any, verified: Verified, header_key: str | None
) -> Accepted:
    """The reference pipeline: validate (422), check scope (403), build the envelope, publish (503).

    The fast path (`ingress.fast_path`) only takes what is valid and in scope; everything else comes
    here, so the exact error for each field and rule has one implementation."""
    event = validate_event(raw, ingress.topology, ingress.models, header_key)
    check_scope(event, verified, ingress.topology)
    prepared = build_envelope(event, verified, ingress.topology, header_key, audit.request_id(request))
    env = prepared.envelope
    event_id = str(env.event_id)
    audit.note(request, event_type=env.type, event_id=event_id)
    await ingress.publish(
        prepared.topic,
        env.to_json(),
        env.kafka_key(),
        env.kafka_headers(),
        source=verified.source,
        event_type=env.type,
        priority=env.priority,
        event_id=event_id,
    )
    return Accepted(event_id=event_id, topic=prepared.topic, priority=env.priority)
