"""The worker's aiokafka consumer gets the fetch sizes from the settings (Faust 0.15.3 passes
neither fetch.min.bytes nor a chosen fetch.max.wait.ms)."""

from __future__ import annotations

import asyncio

import faust

from processors.fetch_tuning import install_fetch_sizes


def test_the_worker_consumer_is_created_with_the_fetch_sizes() -> None:
    install_fetch_sizes(4096, 7)
    install_fetch_sizes(16_384, 10)  # idempotent: the last values win, the wrapper is not stacked
    app = faust.App("t-fetch-sizes", broker="kafka://127.0.0.1:9", web_enabled=False)
    thread = app.consumer._thread

    async def create() -> tuple[int, int]:
        consumer = thread._create_worker_consumer(app.consumer.transport)
        return consumer._fetch_min_bytes, consumer._fetch_max_wait_ms

    assert asyncio.run(create()) == (16_384, 10)
