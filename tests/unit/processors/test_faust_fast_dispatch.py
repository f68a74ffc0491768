"""Eager delivery of fetched records to Faust's conductor: same outcome as a task, without one when
nothing blocks; a blocked delivery still becomes a task Faust can race against a rebalance."""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

import pytest

from processors.faust_fast_dispatch import DELIVERED, eager, install


def test_a_delivery_that_does_not_block_runs_in_line_with_no_task() -> None:
    delivered: list[int] = []

    async def on_message(message: int) -> None:
        delivered.append(message)

    async def main() -> None:
        tasks_before = len(asyncio.all_tasks())
        assert eager(on_message)(7) is DELIVERED
        assert delivered == [7]
        assert len(asyncio.all_tasks()) == tasks_before

    asyncio.run(main())


def test_a_blocked_delivery_becomes_a_task_that_finishes_when_its_future_does() -> None:
    steps: list[str] = []

    async def on_message(message: int) -> int:
        steps.append("start")
        value = await gate  # e.g. flow control suspended during a rebalance
        await asyncio.sleep(0)  # a bare yield as well
        steps.append(f"put {message} after {value}")
        return message * 2

    async def main() -> None:
        global gate
        gate = asyncio.get_running_loop().create_future()
        pending = eager(on_message)(21)
        assert isinstance(pending, asyncio.Future)
        assert steps == ["start"]
        await asyncio.sleep(0.01)
        assert not pending.done()
        gate.set_result("resume")
        assert await pending == 42
        assert steps == ["start", "put 21 after resume"]

    asyncio.run(main())


def test_cancelling_a_blocked_delivery_cancels_the_conductor_coroutine_like_a_task() -> None:
    seen: list[str] = []

    async def on_message(message: int) -> None:
        try:
            await asyncio.get_running_loop().create_future()  # never resolves
        except asyncio.CancelledError:
            seen.append("cancelled inside")
            raise

    async def main() -> None:
        pending = eager(on_message)(1)
        await asyncio.sleep(0)
        pending.cancel()  # Faust's wait_first cancels it when the suspend event wins
        with pytest.raises(asyncio.CancelledError):
            await pending

    asyncio.run(main())
    assert seen == ["cancelled inside"]


def test_errors_propagate_in_line_and_from_the_task() -> None:
    async def at_once(message: int) -> None:
        raise ValueError("decode failed")

    async def later(message: int) -> None:
        await asyncio.sleep(0)
        raise KeyError("late")

    async def main() -> None:
        with pytest.raises(ValueError, match="decode failed"):
            eager(at_once)(1)
        with pytest.raises(KeyError):
            await eager(later)(1)

    asyncio.run(main())


def test_install_short_cuts_wait_first_only_for_records_delivered_in_line() -> None:
    calls: list[Any] = []

    class FakeConsumer:
        def __init__(self) -> None:
            self.callback = self.on_message
            self.suspend_flow = asyncio.Event()

        async def on_message(self, message: int) -> None:
            calls.append(("message", message))

        async def wait_first(self, *coros: Any, timeout: Any = None) -> str:  # noqa: ASYNC109
            calls.append(("faust wait_first", len(coros)))
            for coro in coros:
                await coro
            return "faust"

    async def main() -> None:
        consumer = FakeConsumer()
        install(consumer)
        # The fetch loop's own line: the suspend waiter must be closed, not leaked un-awaited.
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert await consumer.wait_first(consumer.callback(5), consumer.suspend_flow.wait()) is None

        async def other() -> None:
            return None

        assert await consumer.wait_first(other()) == "faust"

    asyncio.run(main())
    assert calls == [("message", 5), ("faust wait_first", 1)]


gate: asyncio.Future[str]
