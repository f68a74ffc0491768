"""Fix for a Faust (faust-streaming 0.15.3) race that silently skips events after a rebalance.

What happens in Faust: table recovery resumes the app's flow control so changelog records can flow;
when recovery completes, `Recovery.on_recovery_completed` (and `_resume_streams`, the no-recovery
path) first *resumes the stream partitions*, then awaits `perform_seek()` (one committed-offset
request per assigned partition, ~0.8 s for 60 partitions), then calls `flow_control.resume()`, which
*clears every agent's queue*. The flow is already active during that await, so events of the just
resumed partitions reach the agents' queues, some are processed and committed, and the rest are
cleared by `resume()`: never acked, never re-fetched (the fetch position is already past them). Faust
then cannot commit past the hole, and those events are not routed until the worker restarts.
Seen in tests/chaos/test_processor_sigkill.py: offsets 124-129 of one partition skipped by the
worker that took over; the same family as faust-streaming/faust#596 (open).

The fix: seek first, then resume the stream partitions and the flow with no await in between, so
the queues clear before any event of those partitions can be delivered. Between the seek and the
resume the app's `before_streams_resume(assignment)` runs, if it has one (the offset guard learns
where every partition starts there). The two methods below are Faust 0.15.3's, reordered, with their
common tail in `_seek_then_resume`; `install()` refuses other Faust versions so an upgrade is re-checked.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import faust
from faust.tables.recovery import Recovery

FIXED_VERSION = "0.15.3"
# Faust's own method, kept only so a unit test can show the race it has (and notice when it is gone).
ORIGINAL_ON_RECOVERY_COMPLETED = Recovery.on_recovery_completed


async def on_recovery_completed(self: Any, generation_id: int = 0) -> None:
    """`Recovery.on_recovery_completed`: seek before resuming the stream partitions."""
    consumer = self.app.consumer
    self.log.info("Restore complete!")
    await self.app.on_rebalance_complete.send()
    self._set_recovery_ended()
    callback_coros = [
        asyncio.ensure_future(
            table.on_recovery_completed(self.actives_for_table[table], self.standbys_for_table[table])
        )
        for table in self.tables.values()
    ]
    if callback_coros:
        await asyncio.wait(callback_coros)
    assignment = consumer.assignment()
    if self.app.consumer_generation_id != generation_id:
        self.log.warning(f"Recovery rebalancing again app id {self.app.consumer_generation_id} param {generation_id}")
        return
    await _seek_then_resume(self, assignment, standbys_ready=not self.app.assignor.assigned_standbys())


async def _resume_streams(self: Any, generation_id: int = 0) -> None:
    """`Recovery._resume_streams`: seek before resuming the stream partitions."""
    app = self.app
    consumer = app.consumer
    await app.on_rebalance_complete.send()
    assignment = consumer.assignment()
    if self.app.consumer_generation_id != generation_id:
        self.log.warning("Recovery rebalancing again")
        return
    await _seek_then_resume(self, assignment, standbys_ready=True)


async def _seek_then_resume(self: Any, assignment: Any, *, standbys_ready: bool) -> None:
    """The part both methods share, in the fixed order: seek, the app's hook, then resume the stream
    partitions and the flow with no await in between (nothing of these partitions is delivered
    before flow_control.resume() clears the queues)."""
    app = self.app
    consumer = app.consumer
    if assignment:
        self.log.info("Seek stream partitions to committed offsets.")
        await self._wait(consumer.perform_seek(), timeout=app.conf.broker_request_timeout)
        hook = getattr(app, "before_streams_resume", None)  # the offset guard learns the starts here
        if hook is not None:
            await hook(assignment)
        consumer.resume_partitions({tp for tp in assignment if not self._is_changelog_tp(tp)})
    else:
        self.log.info("Resuming streams with empty assignment")
    self.completed.set()
    self.log.info("Resuming flow...")
    app.flow_control.resume()
    consumer.resume_flow()
    await cast(Any, app)._fetcher.maybe_start()
    self.tables.on_actives_ready()
    if standbys_ready:
        self.tables.on_standbys_ready()
    app.on_rebalance_end()
    self.log.info("Worker ready")


def install() -> None:
    """Patch Faust's Recovery (process-wide, idempotent)."""
    if faust.__version__ != FIXED_VERSION:
        raise RuntimeError(
            f"processors.faust_recovery_fix is written for faust-streaming {FIXED_VERSION}, found "
            f"{faust.__version__}: re-check Recovery.on_recovery_completed before upgrading"
        )
    Recovery.on_recovery_completed = on_recovery_completed  # type: ignore[method-assign]
    Recovery._resume_streams = _resume_streams  # type: ignore[method-assign]


__all__ = ["install"]
