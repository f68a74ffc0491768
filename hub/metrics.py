"""Prometheus helpers shared by the services. Metric names are prefixed `carinho_`; labels never
carry personal data (only source, event type, destination, status, priority)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)

# Latency buckets from 1 ms to 30 s: ingress answers in ms, deliveries in 10s of ms to seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
    return Counter(f"carinho_{name}", doc, labels, registry=REGISTRY)


def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
    return Gauge(f"carinho_{name}", doc, labels, registry=REGISTRY)


def histogram(
    name: str, doc: str, labels: tuple[str, ...] = (), buckets: tuple[float, ...] = LATENCY_BUCKETS
) -> Histogram:
    return Histogram(f"carinho_{name}", doc, labels, buckets=buckets, registry=REGISTRY)


def render() -> tuple[bytes, str]:
    """Body and content type for a /metrics endpoint."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
