"""Strict priority between events.p1..p5 inside one worker.

Each priority level has its own Faust agent (own stream buffer, own task). Before a level processes a
batch it waits while any *more urgent* level has events pending: queued in its stream buffer or taken
into a batch that is not finished. So a p1 event never waits behind a p5 backlog: at most behind the one
p5 batch already running (batch_size events, a few ms). Lower levels resume the moment the higher ones
are empty; a running lower batch also yields between events as soon as a more urgent event is buffered.
The fetcher keeps reading every partition (aiokafka prefetches each partition once until consumed) and
hands prefetched records out most urgent topic first (install_priority_fetch); a full stream buffer
pauses only its own partition (Faust flow control).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

LEVELS = (1, 2, 3, 4, 5)


class PriorityGate:
    def __init__(self, levels: tuple[int, ...] = LEVELS, poll_interval: float = 0.002):
        self.levels = levels
        self.poll_interval = poll_interval
        self._queued: dict[int, Callable[[], int]] = {}
        self._taken = dict.fromkeys(levels, 0)
        self._done = dict.fromkeys(levels, 0)
        self._progress = asyncio.Event()
        self.waited_seconds = dict.fromkeys(levels, 0.0)

    def watch_queue(self, level: int, qsize: Callable[[], int]) -> None:
        """How many events sit in this level's stream buffer (not yet taken)."""
        self._queued[level] = qsize

    def taken(self, level: int, n: int = 1) -> None:
        self._taken[level] += n

    def done(self, level: int, n: int) -> None:
        self._done[level] += n
        self._progress.set()

    def reset(self, level: int) -> None:
        """Rebalance: buffered events of revoked partitions are discarded by Faust."""
        self._taken[level] = self._done[level] = 0

    def pending(self, level: int) -> int:
        queued = self._queued.get(level)
        in_batches = max(0, self._taken[level] - self._done[level])
        return (queued() if queued else 0) + in_batches

    def higher_pending(self, level: int) -> int:
        return sum(self.pending(h) for h in self.levels if h < level)

    async def wait_turn(self, level: int, max_wait: float | None = None) -> float:
        """Block while a more urgent level has work. Returns seconds waited. `max_wait` (None =
        forever) is a starvation guard for operators who prefer weighted to strict priority."""
        if self.higher_pending(level) == 0:
            return 0.0
        started = time.monotonic()
        while self.higher_pending(level) > 0:
            if max_wait is not None and time.monotonic() - started >= max_wait:
                break
            self._progress.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), self.poll_interval)
        waited = time.monotonic() - started
        self.waited_seconds[level] += waited
        return waited


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
