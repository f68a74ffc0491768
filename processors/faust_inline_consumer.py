"""Faust's aiokafka consumer on the worker's own event loop instead of a thread of its own.

Faust 0.15.3 runs aiokafka in a `mode.ServiceThread` with a second event loop: every poll, commit
and seek is a method-queue hand-over between the two loops (`call_soon_threadsafe` both ways), and
the thread's Python (fetch requests, decoding) competes with the router for the GIL. The router
already takes its records in batches from a prefetched buffer, so one loop does both jobs with less
CPU per event (docs/benchmarks.md, tenth session). Setting `CARINHO_CONSUMER_THREAD=true` brings
Faust's thread back.

What changes, and why each piece:

* `start()` runs the service's `_serve()` as a task on the worker's loop instead of a new thread's
  `run_until_complete` (the rest of `ServiceThread`'s start/stop handshake is kept as it is: its
  events and futures are set with `call_soon_threadsafe`, which is also correct on one loop).
* `call_thread()`/`cast_thread()` await the consumer's method directly: there is no thread to queue
  it for.
* `_gather_remaining_tasks()` does nothing: it cancels every task of the thread's loop at shutdown,
  which here is the worker's whole loop. aiokafka's `consumer.stop()` (in `on_thread_stop`) ends its
  own tasks.
* The thread-liveness watchdog (`_keepalive2`) is not started: there is no thread to watch.

Process-wide and idempotent, like the other Faust patches here (faust_drain, fetch_tuning). Written
for mode-streaming 0.7.1's `ServiceThread` (pinned in pyproject.toml); `install()` refuses another.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from importlib.metadata import version
from typing import Any

from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from mode.utils.futures import maybe_async


class InlineConsumerThread(AIOKafkaConsumerThread):
    """`AIOKafkaConsumerThread` whose "thread" is a task on the worker's loop."""

    _serve_task: asyncio.Task[None] | None = None

    def __init__(self, consumer: Any, *, loop: asyncio.AbstractEventLoop, **kwargs: Any) -> None:
        super().__init__(consumer, loop=loop, thread_loop=loop, **kwargs)

    async def start(self) -> None:
        assert not self._thread_started.is_set()
        self._thread_started.set()
        self._thread_running = self.parent_loop.create_future()
        self._serve_task = self.parent_loop.create_task(self._serve())
        self._serve_task.add_done_callback(_reported)
        try:
            if not self.should_stop:
                await self._thread_running  # set by _serve once the consumer started (or its crash)
        finally:
            self._thread_running = None

    async def stop(self) -> None:
        await super().stop()
        if self._serve_task is not None:
            await asyncio.wait([self._serve_task])  # its on_thread_stop stops aiokafka's consumer; a crash was reported

    async def call_thread(self, fun: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
        return await maybe_async(fun(*args, **kwargs))

    async def cast_thread(self, fun: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> None:
        await self.call_thread(fun, *args, **kwargs)

    async def _gather_remaining_tasks(self) -> None:
        return None


def _reported(task: asyncio.Task[None]) -> None:
    """A crash of `_serve` was already reported (printed, the caller of start() or the app crashed):
    mark the task's exception as retrieved so asyncio does not log it again when the task is freed."""
    if not task.cancelled():
        task.exception()


FIXED_MODE_VERSION = "0.7.1"
_inline = True  # set by install(); read when Faust builds a consumer


def install(inline: bool = True) -> None:
    """From now on Faust's aiokafka consumer runs on the worker's loop (`inline`) or, as Faust
    ships it, in a thread of its own. Process-wide; the last call wins."""
    global _inline
    if inline and version("mode-streaming") != FIXED_MODE_VERSION:
        raise RuntimeError(
            f"processors.faust_inline_consumer is written for mode-streaming {FIXED_MODE_VERSION}, found "
            f"{version('mode-streaming')}: re-check ServiceThread.start/_serve before upgrading"
        )
    _inline = inline
    if getattr(AIOKafkaConsumer._new_consumer_thread, "_carinho_inline", False):
        return
    threaded = AIOKafkaConsumer._new_consumer_thread

    def new_consumer_thread(self: Any) -> AIOKafkaConsumerThread:
        if not _inline:
            return threaded(self)
        return InlineConsumerThread(self, loop=self.loop, beacon=self.beacon)

    new_consumer_thread._carinho_inline = True  # type: ignore[attr-defined]
    AIOKafkaConsumer._new_consumer_thread = new_consumer_thread  # type: ignore[method-assign]
