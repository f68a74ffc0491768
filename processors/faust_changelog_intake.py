"""Faster reading of the tables' changelogs: table recovery at start and the standby replicas.

Faust 0.15.3 reads a changelog record with the same per-record machinery it uses for stream events,
twice over:
- the consumer's drain loop hands each record to the conductor through `wait_first(callback(message),
  suspend_flow.wait())`: two tasks and an `asyncio.wait` per record;
- `Recovery._slurp_changelogs` takes each record from the changelog queue with
  `asyncio.wait_for(queue.get(), 5.0)` (a task per record) and, after each record, recomputes the
  remaining records of every active partition (`need_recovery`) and of every standby partition.
py-spy on a worker reading 120,000 changelog records (bench.processors_restart's "new directory"
case): ~330 µs of CPU per record, almost all of it that machinery; applying the records to the store
was 2 %. A standby replica pays the same for every record the active worker writes (two per routed
event: dedupe and trail index).

Two changes, same order and same outcome per record:
- `deliver_run`: processors/faust_drain.py collects the changelog records of one fetch and delivers
  them in one `wait_first` (one pair of tasks per run, not per record);
- `_slurp_changelogs` below is Faust's with one change: after a record is taken from the queue, every
  record already waiting is taken too (up to CHUNK), each handled exactly as Faust does, and the
  end-of-recovery and standby checks run once per chunk instead of once per record.
`install()` refuses other Faust versions, like the other Faust patches here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from time import monotonic
from typing import Any

import faust
from faust.tables.recovery import Recovery
from faust.utils.tracing import finish_span
from mode import Service

FIXED_VERSION = "0.15.3"
CHUNK = 1_000  # records taken from the changelog queue before the recovery checks run again
logger = logging.getLogger("faust.tables.recovery")


async def deliver_run(consumer: Any, messages: Sequence[Any]) -> None:
    """Hand a run of changelog records to Faust's conductor in order, as its drain loop does one by one
    (the caller races this against the consumer's suspend_flow, once for the whole run)."""
    callback = consumer.callback
    for message in messages:
        await callback(message)


async def _slurp_changelogs(self: Any) -> None:
    changelog_queue = self.tables.changelog_queue
    tp_to_table = self.tp_to_table

    active_tps = self.active_tps
    standby_tps = self.standby_tps
    active_offsets = self.active_offsets
    standby_offsets = self.standby_offsets
    active_events_received_at = self._active_events_received_at
    standby_events_received_at = self._standby_events_received_at

    buffers = self.buffers
    buffer_sizes = self.buffer_sizes
    processing_times = self._processing_times

    async def _maybe_signal_recovery_end() -> None:
        # Faust also checks for aborted transactions here when the app uses them; the hub does not
        # (processing guarantee at least once), so that branch is left out.
        if self.in_recovery and not self.need_recovery():
            self.flush_buffers()
            self._set_recovery_ended()
            if self._actives_span is not None:
                self._actives_span.set_tag("Actives-Ready", True)
            logger.debug("Setting recovery end")
            self.signal_recovery_end.set()

    async def handle(event: Any) -> None:
        # Faust's per-record body, unchanged.
        now = monotonic()
        message = event.message
        tp = message.tp
        offset = message.offset
        bufsize = buffer_sizes.get(tp)
        is_active = False
        if tp in active_tps:
            is_active = True
            table = tp_to_table[tp]
            offsets = active_offsets
            if bufsize is None:
                bufsize = buffer_sizes[tp] = table.recovery_buffer_size
            active_events_received_at[tp] = now
        elif tp in standby_tps:
            table = tp_to_table[tp]
            offsets = standby_offsets
            if bufsize is None:
                bufsize = buffer_sizes[tp] = table.standby_buffer_size
                standby_events_received_at[tp] = now
        else:
            # Faust logs and goes on with the previous record's table (its own XXX note); a record
            # of a partition this worker no longer reads is skipped here instead.
            logger.warning(f"recovery unknown topic {tp} offset {offset}")
            return
        seen_offset = offsets.get(tp, None)
        if seen_offset is None or offset > seen_offset:
            offsets[tp] = offset
            buf = buffers[table]
            buf.append(event)
            await table.on_changelog_event(event)
            if len(buf) >= bufsize:
                table.apply_changelog_batch(buf)
                buf.clear()
                self._last_flush_at = now
            now_after = monotonic()
            if is_active:
                last_processed_at = self._last_active_event_processed_at
                if last_processed_at is not None:
                    processing_times.append(now_after - last_processed_at)
                    if len(processing_times) > self.num_samples_required_for_estimate:
                        processing_times.popleft()
                self._last_active_event_processed_at = now_after

    while not self.should_stop:
        try:
            self.signal_recovery_end.clear()
            try:
                event = await asyncio.wait_for(changelog_queue.get(), timeout=5.0)
            except TimeoutError:
                if self.should_stop:
                    return
                await _maybe_signal_recovery_end()
                continue
            events = [event]
            while len(events) < CHUNK and not changelog_queue.empty():
                events.append(changelog_queue.get_nowait())
            for event in events:
                try:
                    await handle(event)
                except Exception as ex:  # Faust's loop logs and goes on, per record
                    logger.warning(f"Error in recovery {ex}")

            await _maybe_signal_recovery_end()

            standby_ready = self._standbys_span is None and self.tables.standbys_ready
            if not standby_ready and not self.standby_remaining_total():
                logger.debug("Completed standby partition fetch")
                if self._standbys_span:
                    finish_span(self._standbys_span)
                    self._standbys_span = None
                self.tables.on_standbys_ready()
        except Exception as ex:
            logger.warning(f"Error in recovery {ex}")


def install() -> None:
    """Patch Recovery (the class: before the app exists)."""
    if faust.__version__ != FIXED_VERSION:
        raise RuntimeError(
            f"processors.faust_changelog_intake is written for faust-streaming {FIXED_VERSION}, found "
            f"{faust.__version__}: re-check Recovery._slurp_changelogs and Consumer._drain_messages"
        )
    Recovery._slurp_changelogs = Service.task(_slurp_changelogs)  # type: ignore[method-assign]


__all__ = ["CHUNK", "deliver_run", "install"]
