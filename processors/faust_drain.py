"""events.p1..p5 (and trail) records go straight from Faust's fetch loop to their lanes.

Faust hands every fetched record to its conductor one at a time, `wait_first(callback(message),
suspend_flow.wait())` (two tasks and an `asyncio.wait` per record), then builds an Event, puts it on
the agent's stream queue, and the agent takes it (`take_events`) and acks it. That path was about a
third of the routing worker's CPU (637 -> 339-407 us per event without it, docs/benchmarks.md). The
router needs none of it: it
takes records in batches from processors.priority.PriorityLanes, and the offset guard
(processors/offset_guard.py), not Faust's acks, decides what is committed for these topics.

The trail indexer is in the same position (one trail hop per record, in batches), so the trail topic
has a lane of its own (processors/app.py, `_index_forever`).

So this is Faust 0.15.3's `Consumer._drain_messages` and `getmany` with one branch added: the
records a fetch gave for a partition of a laned topic go to its lane at once, as aiokafka's
`ConsumerRecord`s (timestamps in milliseconds; no Faust message is built), while the flow is active
(during a rebalance they are dropped: after the seek they are fetched again from the committed
offset), and Faust's read-offset bookkeeping is left to the offset guard, which also drops records
already handled. The tables' changelog records take
Faust's path, but one fetch's worth at a time in a single `wait_first`
(processors/faust_changelog_intake.py); every other record (delayed messages) takes Faust's path
unchanged. `install()` refuses other Faust versions, like processors/faust_recovery_fix.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from typing import Any

import faust
from faust.transport.consumer import CONSUMER_FETCHING

from processors.faust_changelog_intake import deliver_run
from processors.priority import PriorityLanes

FIXED_VERSION = "0.15.3"
CHANGELOG_RUN = 500  # changelog records delivered in one wait_first at most


def install(consumer: Any, lane_of: Mapping[str, tuple[PriorityLanes, int]]) -> None:
    """Replace `consumer._drain_messages` (this consumer only) with the lane-aware loop; `lane_of` maps
    a topic to its lanes and level there."""
    if faust.__version__ != FIXED_VERSION:
        raise RuntimeError(
            f"processors.faust_drain is written for faust-streaming {FIXED_VERSION}, found "
            f"{faust.__version__}: re-check Consumer._drain_messages before upgrading"
        )
    consumer._drain_messages = _drain_messages.__get__(consumer)
    consumer._carinho_lane_of = dict(lane_of)


async def _drain_messages(self: Any, fetcher: Any) -> None:
    # Faust 0.15.3's loop; the changes are the laned topics' hand-over and the changelog runs.
    callback = self.callback
    changelogs = self.app.tables._changelogs  # changelog topic -> table (filled as tables register)
    run: list[Any] = []  # changelog records of this fetch, delivered together (deliver_changelogs)

    async def deliver_changelogs() -> None:
        await self.wait_first(deliver_run(self, run), self.suspend_flow.wait())
        run.clear()

    consumer_should_stop = self._stopped.is_set
    fetcher_should_stop = fetcher._stopped.is_set

    get_read_offset = self._read_offset.__getitem__
    set_read_offset = self._read_offset.__setitem__
    flag_consumer_fetching = CONSUMER_FETCHING
    set_flag = self.diag.set_flag
    unset_flag = self.diag.unset_flag
    commit_every = self._commit_every
    acks_enabled_for = self.app.topics.acks_enabled_for

    yield_every = 100
    num_since_yield = 0
    sleep = asyncio.sleep

    try:
        while not (consumer_should_stop() or fetcher_should_stop()):
            set_flag(flag_consumer_fetching)
            await self.sleep(0)
            if not self.should_stop:
                for tp, message in await _fetch(self):
                    num_since_yield += 1
                    if num_since_yield > yield_every:
                        await sleep(0)
                        num_since_yield = 0

                    offset = message.offset
                    r_offset = get_read_offset(tp)
                    if tp.topic in changelogs:  # no acks on these: no gaps or commits to track
                        if r_offset is None or offset >= r_offset:
                            run.append(message)
                            set_read_offset(tp, offset)
                            if len(run) >= CHANGELOG_RUN:
                                await deliver_changelogs()
                        continue
                    if r_offset is None or offset >= r_offset:
                        gap = offset - (r_offset or 0)
                        if gap > 1 and r_offset:
                            acks_enabled = acks_enabled_for(message.topic)
                            if acks_enabled:
                                await self._add_gap(tp, r_offset + 1, offset)
                        if commit_every is not None and self._n_acked >= commit_every:
                            self._n_acked = 0
                            await self.commit()
                        await self.wait_first(callback(message), self.suspend_flow.wait())
                        set_read_offset(tp, offset)
                    else:
                        self.log.dev("DROPPED MESSAGE ROFF %r: k=%r v=%r", offset, message.key, message.value)
                if run:
                    await deliver_changelogs()
                unset_flag(flag_consumer_fetching)

    except self.consumer_stopped_errors:
        if self.transport.app.should_stop:
            self.log.info("Broker stopped consumer, shutting down...")
            return
        raise
    except asyncio.CancelledError:
        if self.transport.app.should_stop:
            self.log.info("Consumer shutting down for user cancel.")
            return
        raise
    except Exception as exc:
        self.log.exception("Drain messages raised: %r", exc)
        raise
    finally:
        unset_flag(flag_consumer_fetching)


async def _fetch(self: Any) -> Iterator[tuple[Any, Any]]:
    """Faust 0.15.3's `Consumer.getmany`, except that a laned topic's records go to its lane as the
    fetch gave them (aiokafka's `ConsumerRecord`s, one call per partition) while the flow is active,
    instead of one Faust message, generator step and lane call each (~5 % of the router's CPU,
    docs/processors.md). Returns an iterator of every other record, as Faust messages."""
    records, active_partitions = await self._wait_next_records(1.0)
    if records is None or self.should_stop:
        return iter(())
    if not self.flow_active:
        self.log.dev("getmany called while flow not active. Seek back to committed offsets.")
        try:
            await self.perform_seek()
        except Exception as ex:
            self.log.warning(f"exception performing seek when flow not active {ex}")
        return iter(())
    app = self.app
    generation_id = app.consumer_generation_id
    lane_of = self._carinho_lane_of.get
    flow_active = app.flow_control.is_active
    buffered = self._buffered_partitions
    track_end = app.monitor.track_tp_end_offset
    rest: dict[Any, Any] = {}
    for tp, batch in records.items():
        if not self.flow_active or app.consumer_generation_id != generation_id:
            return iter(())  # a rebalance began: what was fetched is read again after the seek
        if active_partitions is not None and tp not in active_partitions and tp not in buffered:
            continue
        lane = lane_of(tp.topic)
        if lane is None:
            rest[tp] = batch
            continue
        track_end(tp, self.highwater(tp))
        if flow_active():  # during a rebalance dropped: after the seek it is fetched again
            lane[0].offer_many(lane[1], tp, batch)
    return _messages(self, rest, generation_id) if rest else iter(())


def _messages(self: Any, records: dict[Any, Any], generation_id: int) -> Iterator[tuple[Any, Any]]:
    """The rest of `getmany`: Faust messages in Faust's order, checking before each one (the drain
    loop awaits between them) that no rebalance began."""
    app = self.app
    to_message = self._to_message
    track_end = app.monitor.track_tp_end_offset
    for tp, record in self.scheduler.iterate(records):
        if not self.flow_active or app.consumer_generation_id != generation_id:
            return
        track_end(tp, self.highwater(tp))
        yield tp, to_message(tp, record)


__all__ = ["install"]
