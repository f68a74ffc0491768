"""librdkafka configuration for every confluent-kafka client in the hub, in one place.

Producers are idempotent with acks=all: an acknowledged write is on min.insync.replicas brokers and a
producer retry never duplicates it. Consumers never auto-commit: each service commits after the
outcome is durable.
"""

from __future__ import annotations

import logging
from typing import Any

# librdkafka's own log lines go through Python logging (JSON, masked, level-filtered) instead of raw
# stderr; confluent-kafka forwards them on the client's poll/consume calls.
KAFKA_LOG = logging.getLogger("kafka.client")


def producer_config(
    bootstrap: str, *, client_id: str, delivery_timeout_ms: int = 30_000, linger_ms: int = 5, **overrides: Any
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "client.id": client_id,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": linger_ms,
        "compression.type": "lz4",
        "delivery.timeout.ms": delivery_timeout_ms,
        # request.timeout.ms must stay below delivery.timeout.ms (librdkafka refuses otherwise).
        "request.timeout.ms": min(10_000, max(1_000, delivery_timeout_ms - 500)),
        "socket.keepalive.enable": True,
        "reconnect.backoff.max.ms": 2_000,
        "statistics.interval.ms": 0,
        "logger": KAFKA_LOG,
    }
    config.update(overrides)
    return config


def consumer_config(bootstrap: str, *, group_id: str, client_id: str, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "group.id": group_id,
        "client.id": client_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "partition.assignment.strategy": "cooperative-sticky",
        "session.timeout.ms": 10_000,
        "heartbeat.interval.ms": 2_000,
        "max.poll.interval.ms": 300_000,
        "socket.keepalive.enable": True,
        "logger": KAFKA_LOG,
    }
    config.update(overrides)
    return config


def admin_config(bootstrap: str, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {"bootstrap.servers": bootstrap, "socket.timeout.ms": 10_000, "logger": KAFKA_LOG}
    config.update(overrides)
    return config
