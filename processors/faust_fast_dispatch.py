"""Hand each fetched record to Faust's conductor without a task per record when nothing blocks.

Faust's fetch loop (`Consumer._drain_messages`, faust-streaming 0.15.3) delivers every record with
`await self.wait_first(callback(message), self.suspend_flow.wait())`: four tasks (the callback, the
suspend event, the service's stopped and crashed events), an `asyncio.wait`, a loop iteration and three
cancellations per record. py-spy on the routing benchmark: 8.6 % of the worker's samples, more than
the dedupe and the output producer together. The callback (`Conductor.on_message`) almost never
blocks: it waits only while the flow is suspended (rebalance), the producer buffer is full, or a
stream buffer is full.

`install(consumer)` wraps the consumer's callback so it runs the conductor's coroutine eagerly, in
line: if that finishes without suspending (the common case) the record is delivered with no task at
all; if it suspends, the rest of it becomes a task and Faust's own `wait_first` races it against the
suspend event exactly as before (so a rebalance still interrupts a blocked delivery).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator
from typing import Any

import faust

FIXED_VERSION = "0.15.3"


class _Delivered:
    """Returned instead of an awaitable when the conductor finished in line."""


DELIVERED = _Delivered()


async def _resume(coro: Coroutine[Any, Any, Any], awaiting: Any) -> Any:
    """Continue a coroutine that suspended on `awaiting` (what it yielded) inside a task of its own:
    wait for it here, then resume the coroutine the way a Task would (send None, or throw)."""
    while True:
        try:
            if awaiting is None:
                await asyncio.sleep(0)  # a bare `yield`: give the loop one turn
            else:
                await _Yielded(awaiting)
        except BaseException as exc:  # this task was cancelled: the suspend event won the race
            try:
                awaiting = coro.throw(exc)
            except StopIteration as stop:
                return stop.value
            continue
        try:
            awaiting = coro.send(None)
        except StopIteration as stop:
            return stop.value


class _Yielded:
    """Awaits a future the coroutine already yielded; its outcome is read by the coroutine itself
    when resumed (Future.__await__ returns or raises its result), as inside a Task."""

    def __init__(self, future: Any):
        self.future = future

    def __await__(self) -> Generator[Any, None, None]:
        if not self.future.done():
            self.future._asyncio_future_blocking = True
            yield self.future


def eager(callback: Any) -> Any:
    """`callback(message)` as Faust's fetch loop calls it, run in line until it first suspends."""

    def deliver(message: Any) -> Any:
        coro = callback(message)
        try:
            awaiting = coro.send(None)
        except StopIteration:
            return DELIVERED
        return asyncio.ensure_future(_resume(coro, awaiting))

    return deliver


def install(consumer: Any) -> None:
    """Wrap this Faust consumer's record callback and `wait_first` (see the module docstring)."""
    if faust.__version__ != FIXED_VERSION:
        raise RuntimeError(
            f"processors.faust_fast_dispatch is written for faust-streaming {FIXED_VERSION}, found "
            f"{faust.__version__}: re-check Consumer._drain_messages before upgrading"
        )
    consumer.callback = eager(consumer.callback)
    faust_wait_first = consumer.wait_first

    async def wait_first(*coros: Any, timeout: Any = None) -> Any:  # noqa: ASYNC109 (mode's signature)
        if coros and coros[0] is DELIVERED:
            for other in coros[1:]:
                if asyncio.iscoroutine(other):
                    other.close()  # the suspend-event waiter nobody needs
            return None  # _drain_messages ignores the result
        return await faust_wait_first(*coros, timeout=timeout)

    consumer.wait_first = wait_first


__all__ = ["DELIVERED", "eager", "install"]
