"""The Faust recovery fix: stream partitions are resumed only after the seek, and nothing can run
between resuming them and resuming the flow (which clears the agents' queues)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import faust
import pytest
from faust.tables.recovery import Recovery

from processors import faust_recovery_fix


class TablesBoth(dict[Any, Any]):
    """Faust's Recovery uses `self.tables` both as a mapping and as the table manager."""

    def on_actives_ready(self) -> None: ...
    def on_standbys_ready(self) -> None: ...


class FakeRecovery:
    """Just what the two methods touch, each call written to `calls`; a background task writes
    `tick` every time the event loop runs it (i.e. at every suspension of the method)."""

    def __init__(self, calls: list[str]):
        self.calls = calls
        self.log = logging.getLogger("test")
        self.log.dev = self.log.debug  # type: ignore[attr-defined]
        self.tables = TablesBoth()
        self.actives_for_table: dict[Any, Any] = {}
        self.standbys_for_table: dict[Any, Any] = {}
        record = self._record

        class Signal:
            async def send(self) -> None:
                await asyncio.sleep(0)

        class Consumer:
            def assignment(self) -> set[str]:
                return {"events.p1-0", "dedupe-changelog-0"}

            async def perform_seek(self) -> None:
                record("seek:start")
                for _ in range(3):  # one committed-offset request per partition
                    await asyncio.sleep(0)
                record("seek:end")

            def resume_partitions(self, tps: set[str]) -> None:
                record(f"resume_partitions:{sorted(tps)}")

            def resume_flow(self) -> None:
                record("resume_flow")

        class FlowControl:
            def resume(self) -> None:
                record("flow_control.resume")

        class Fetcher:
            async def maybe_start(self) -> None:
                await asyncio.sleep(0)

        class Conf:
            broker_request_timeout = 5.0

        class Assignor:
            def assigned_standbys(self) -> set[str]:
                return set()

        class App:
            consumer = Consumer()
            on_rebalance_complete = Signal()
            consumer_generation_id = 7
            flow_control = FlowControl()
            _fetcher = Fetcher()
            conf = Conf()
            assignor = Assignor()

            def on_rebalance_end(self) -> None:
                record("rebalance_end")

        self.app = App()
        self.completed = asyncio.Event()

    def _record(self, what: str) -> None:
        self.calls.append(what)

    def _set_recovery_ended(self) -> None: ...

    def _is_changelog_tp(self, tp: str) -> bool:
        return "changelog" in tp

    async def _wait(self, coro: Awaitable[None], timeout: float) -> None:  # noqa: ASYNC109
        await asyncio.wait_for(coro, timeout)


async def run_with_ticks(method: Callable[..., Awaitable[None]], recovery: FakeRecovery) -> list[str]:
    calls = recovery.calls

    async def ticker() -> None:
        while True:
            calls.append("tick")
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    try:
        await method(recovery, 7)
    finally:
        task.cancel()
    return calls


@pytest.mark.parametrize("method", [faust_recovery_fix.on_recovery_completed, faust_recovery_fix._resume_streams])
def test_streams_resume_after_the_seek_with_no_suspension_before_the_queues_clear(
    method: Callable[..., Awaitable[None]],
) -> None:
    recovery = FakeRecovery([])
    calls = asyncio.run(run_with_ticks(method, recovery))
    steps = [c for c in calls if c != "tick"]
    resume = steps.index("resume_partitions:['events.p1-0']")  # changelog partitions stay as they are
    assert steps.index("seek:end") < resume < steps.index("flow_control.resume")
    # Between resuming the stream partitions and clearing the queues the loop ran nothing else, so
    # no fetched event of those partitions can have been queued and then dropped.
    window = calls[calls.index("resume_partitions:['events.p1-0']") : calls.index("flow_control.resume")]
    assert "tick" not in window
    assert recovery.completed.is_set()


def test_faust_own_order_has_the_race_the_fix_removes() -> None:
    """The unpatched method (kept by faust_recovery_fix for nothing but this check) resumes the
    partitions before the seek: the loop runs other tasks while they are live and before the clear.
    When a Faust upgrade changes that, this test says the patch may go."""
    recovery = FakeRecovery([])
    original = faust_recovery_fix.ORIGINAL_ON_RECOVERY_COMPLETED
    calls = asyncio.run(run_with_ticks(original, recovery))
    window = calls[calls.index("resume_partitions:['events.p1-0']") : calls.index("flow_control.resume")]
    assert "tick" in window


def test_install_patches_recovery_and_refuses_other_faust_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    faust_recovery_fix.install()
    assert Recovery.on_recovery_completed is faust_recovery_fix.on_recovery_completed
    assert Recovery._resume_streams is faust_recovery_fix._resume_streams
    monkeypatch.setattr(faust, "__version__", "0.16.0")
    with pytest.raises(RuntimeError, match="re-check"):
        faust_recovery_fix.install()
