"""processors.priority.resume_partition without a broker: the partition goes back to Faust's active
set, and a waiting poll is woken on the loop that runs aiokafka. Against the real broker and
aiokafka's fetcher: tests/integration/processors/test_partition_resume.py."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from aiokafka import TopicPartition

from processors.priority import resume_partition
from tests.kafka_support import wait_until


class FaustConsumer:
    """`on_buffer_drop` and `_thread._consumer` (aiokafka's consumer, None before it starts)."""

    def __init__(self, aiokafka_consumer: Any = None):
        self._thread = self
        self._consumer = aiokafka_consumer
        self.active: set[TopicPartition] = set()

    def on_buffer_drop(self, tp: TopicPartition) -> None:
        self.active.add(tp)


def test_without_a_started_consumer_the_partition_is_only_put_back() -> None:
    consumer = FaustConsumer()
    resume_partition(consumer, TopicPartition("t", 3))
    assert consumer.active == {TopicPartition("t", 3)}


def test_a_poll_on_another_threads_loop_is_woken_there() -> None:
    """CARINHO_CONSUMER_THREAD=true: aiokafka runs on the consumer thread's loop, not the router's."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:

        class Fetcher:
            def __init__(self) -> None:
                self._loop = loop
                self._fetch_waiters: set[asyncio.Future[None]] = set()
                self.woken_on: list[threading.Thread] = []

            def _notify(self, future: asyncio.Future[None]) -> None:
                self.woken_on.append(threading.current_thread())
                future.set_result(None)

        fetcher = Fetcher()
        waiter = asyncio.run_coroutine_threadsafe(_create_future(loop), loop).result(5)
        fetcher._fetch_waiters.add(waiter)
        consumer = FaustConsumer(type("Aio", (), {"_fetcher": fetcher})())

        async def from_the_router_loop() -> None:
            resume_partition(consumer, TopicPartition("t", 0))

        asyncio.run(from_the_router_loop())
        wait_until(lambda: waiter.done(), timeout=5, message="waiter woken")
        assert fetcher.woken_on == [thread]
        assert consumer.active == {TopicPartition("t", 0)}
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


async def _create_future(loop: asyncio.AbstractEventLoop) -> asyncio.Future[None]:
    return loop.create_future()
