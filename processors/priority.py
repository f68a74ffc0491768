"""Strict priority between events.p1..p5 inside one worker.

Fetched records of events.pN wait in lane N (processors/faust_drain.py puts them there straight from
Faust's fetch loop). One router task always takes its next batch from the most urgent non-empty lane,
and a running lower-priority batch gives its unrouted rest back as soon as a more urgent record
arrives (checked every few events, when the batch also lets the fetch loop run). So a p1 event never
waits behind a p5 backlog: at most behind the few p5 events routed since the last check.
The fetcher keeps reading every partition and hands prefetched records out most urgent topic first
(install_priority_fetch); a full lane pauses the fetch of only the partitions feeding it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from typing import Any

LEVELS = (1, 2, 3, 4, 5)


class PriorityLanes:
    """One FIFO of fetched records per priority level, with back-pressure per partition.

    `on_full(tp)` / `on_drop(tp)` pause and resume the fetch of one partition (Faust's consumer
    `on_buffer_full` / `on_buffer_drop`): a lane at `high_water` stops growing, and its partitions
    flow again when the router has taken it down to half. `generation` moves on every `clear()`
    (a rebalance): a batch taken before it must not go on routing.
    """

    def __init__(
        self,
        levels: Sequence[int] = LEVELS,
        high_water: int = 2048,
        on_full: Callable[[Any], None] | None = None,
        on_drop: Callable[[Any], None] | None = None,
    ):
        self.levels = tuple(sorted(levels))
        self.high_water = high_water
        self.low_water = high_water // 2
        self.on_full = on_full
        self.on_drop = on_drop
        self._lanes: dict[int, deque[Any]] = {level: deque() for level in self.levels}
        self._paused: dict[int, set[Hashable]] = {level: set() for level in self.levels}
        self._arrived = asyncio.Event()
        self.generation = 0

    def offer(self, level: int, tp: Hashable, record: Any) -> None:
        lane = self._lanes[level]
        lane.append(record)
        if len(lane) >= self.high_water:
            paused = self._paused[level]
            if tp not in paused:
                paused.add(tp)
                if self.on_full is not None:
                    self.on_full(tp)
        self._arrived.set()

    def take(self, max_records: int) -> tuple[int, list[Any]] | None:
        """The next batch: up to `max_records` from the most urgent non-empty lane, or None."""
        for level in self.levels:
            lane = self._lanes[level]
            if lane:
                n = min(max_records, len(lane))
                batch = [lane.popleft() for _ in range(n)]
                if len(lane) <= self.low_water:
                    self._release(level)
                return level, batch
        return None

    def give_back(self, level: int, records: Sequence[Any]) -> None:
        """A preempted batch's unrouted rest goes back to the front of its lane, in order."""
        self._lanes[level].extendleft(reversed(records))

    async def wait(self) -> None:
        """Until any lane has a record."""
        while not any(self._lanes.values()):
            self._arrived.clear()
            await self._arrived.wait()

    def pending(self, level: int) -> int:
        return len(self._lanes[level])

    def higher_pending(self, level: int) -> bool:
        lanes = self._lanes
        return any(lanes[h] for h in self.levels if h < level)

    def clear(self) -> None:
        """Rebalance: every fetched record is read again from the committed offsets."""
        for level in self.levels:
            self._lanes[level].clear()
            self._release(level)
        self.generation += 1

    def _release(self, level: int) -> None:
        paused = self._paused[level]
        if paused:
            if self.on_drop is not None:
                for tp in paused:
                    self.on_drop(tp)
            paused.clear()


def topic_rank(topology_levels: dict[str, int], default: float = 2.5) -> Callable[[str], float]:
    """Rank of a topic for the fetcher: events.pN -> N; other topics (trail, scheduled, changelogs)
    `default`, i.e. after p1-p2 but before the bulk levels."""

    def rank(topic: str) -> float:
        return topology_levels.get(topic, default)

    return rank


def install_priority_fetch(rank: Callable[[str], float]) -> None:
    """Make aiokafka hand out prefetched records most urgent topic first.

    aiokafka prefetches every assigned partition into one ordered buffer and `fetched_records` drains
    it in insertion order up to max_records. With a p5 backlog, six full p5 partition buffers sit in
    front of a p1 record that arrived later: p1 would wait for ~the whole prefetched p5 backlog. We
    re-order the buffer by topic rank before each drain (a handful of entries; same thread and event
    loop as the fetcher), so a fetched p1 record is always handed to Faust in the next poll.
    Process-wide and idempotent; the rank function of the last call wins.
    """
    from aiokafka.consumer.fetcher import Fetcher

    global _rank
    _rank = rank
    current = Fetcher.fetched_records
    if getattr(current, "_carinho_priority", False):
        return

    async def fetched_records(
        self: Any,
        partitions: Any,
        timeout: float = 0,  # noqa: ASYNC109 (aiokafka's API)
        max_records: int | None = None,
    ) -> Any:
        records = self._records
        rank_of = _rank
        if len(records) > 1 and rank_of is not None:
            ordered = sorted(records.items(), key=lambda item: rank_of(item[0].topic))
            records.clear()
            records.update(ordered)
        return await current(self, partitions, timeout, max_records)

    fetched_records._carinho_priority = True  # type: ignore[attr-defined]
    Fetcher.fetched_records = fetched_records


_rank: Callable[[str], float] | None = None
