"""Faust's aiokafka consumer runs on the worker's own loop (processors/faust_inline_consumer.py);
`install(inline=False)` brings Faust's consumer thread back. The worker's behaviour with it (rebalances,
restarts, two workers, SIGKILL) is what tests/integration/processors and tests/chaos exercise."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import faust
import pytest
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

from processors import faust_inline_consumer
from processors.faust_inline_consumer import InlineConsumerThread


@pytest.fixture(autouse=True)
def _inline_again() -> Iterator[None]:
    yield
    faust_inline_consumer.install(inline=True)  # the worker's default, for the tests that follow


def _consumer_thread(app_id: str) -> AIOKafkaConsumerThread:
    app = faust.App(app_id, broker="kafka://127.0.0.1:9", web_enabled=False)
    return app.consumer._thread


def test_the_consumer_runs_on_the_workers_loop() -> None:
    faust_inline_consumer.install(inline=True)
    faust_inline_consumer.install(inline=True)  # idempotent: the wrapper is not stacked
    thread = _consumer_thread("t-inline-consumer")
    assert isinstance(thread, InlineConsumerThread)
    assert thread.thread_loop is thread.parent_loop

    async def called_where() -> tuple[int, asyncio.AbstractEventLoop]:
        async def where() -> tuple[int, asyncio.AbstractEventLoop]:
            return threading.get_ident(), asyncio.get_running_loop()

        return await thread.call_thread(where)

    async def main() -> None:
        ident, loop = await called_where()
        assert ident == threading.get_ident()  # no hand-over to another thread
        assert loop is asyncio.get_running_loop()

    thread.parent_loop.run_until_complete(main())


def test_a_crash_while_starting_reaches_the_caller_of_start() -> None:
    faust_inline_consumer.install(inline=True)
    thread = _consumer_thread("t-inline-crash")

    async def refuse() -> None:
        raise RuntimeError("no broker")

    thread.on_start = refuse  # type: ignore[method-assign]

    async def main() -> None:
        with pytest.raises(RuntimeError, match="no broker"):
            await thread.start()

    thread.parent_loop.run_until_complete(main())


def test_install_false_gives_faust_its_thread_back() -> None:
    faust_inline_consumer.install(inline=False)
    thread = _consumer_thread("t-threaded-consumer")
    assert not isinstance(thread, InlineConsumerThread)
    assert isinstance(thread, AIOKafkaConsumerThread)
    assert thread.thread_loop is not thread.parent_loop


def test_another_mode_version_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(faust_inline_consumer, "version", lambda name: "0.8.0")
    with pytest.raises(RuntimeError, match=r"mode-streaming 0\.7\.1, found 0\.8\.0"):
        faust_inline_consumer.install(inline=True)
    faust_inline_consumer.install(inline=False)  # Faust's own thread needs none of mode's internals
