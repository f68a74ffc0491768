"""How long the worker's consumer lets the broker hold a fetch to fill it (fetch.min.bytes and
fetch.max.wait.ms). Faust 0.15.3 passes neither to aiokafka (min 1 byte: every fetch returns as soon
as one record is there), so a worker that keeps up with the trail topic fetched a few records at a
time and its fetch thread spent more CPU on requests than on records (docs/benchmarks.md, ninth
session). Process-wide and idempotent; the values of the last call win.
"""

from __future__ import annotations

from typing import Any

_values: tuple[int, int] = (1, 1500)  # Faust 0.15.3's own; set by install_fetch_sizes before use


def install_fetch_sizes(min_bytes: int, max_wait_ms: int) -> None:
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    global _values
    _values = (min_bytes, max_wait_ms)
    current = AIOKafkaConsumerThread._create_worker_consumer
    if getattr(current, "_carinho_fetch_sizes", False):
        return

    def create_worker_consumer(self: Any, transport: Any) -> Any:
        consumer = current(self, transport)
        # Read by aiokafka's Fetcher when the consumer starts.
        consumer._fetch_min_bytes, consumer._fetch_max_wait_ms = _values
        return consumer

    create_worker_consumer._carinho_fetch_sizes = True  # type: ignore[attr-defined]
    AIOKafkaConsumerThread._create_worker_consumer = create_worker_consumer  # type: ignore[method-assign]
