"""Strict priority between events.p1..p5 inside one worker.

Fetched records of events.pN wait in lane N (processors/faust_drain.py puts them there straight from
Faust's fetch loop). One router task always takes its next batch from the most urgent non-empty lane,
and a running lower-priority batch gives its unrouted rest back as soon as a more urgent record
arrives (checked every few events, when the batch also lets the fetch loop run). So a p1 event never
waits behind a p5 backlog: at most behind the few p5 events routed since the last check.
The fetcher keeps reading every partition and hands prefetched records out most urgent topic first,
the partitions of one topic in turns (install_priority_fetch), so a backlog is served across all its
partitions rather than one after the other; inside a lane the partitions take turns too, and a
partition with many records waiting pauses its own fetch.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from typing import Any

LEVELS = (1, 2, 3, 4, 5)


class PriorityLanes:
    """The fetched records of every priority level, one FIFO per partition, with back-pressure per
    partition.

    `take` serves the most urgent level with records; inside a level it serves the partitions in
    turn, one batch of one partition at a time. A partition with `partition_high_water` records
    waiting (a quarter of `high_water`, the level's budget) stops being fetched (`on_full(tp)`, Faust's
    consumer `on_buffer_full`) until it is taken down to half (`on_drop(tp)`), so one busy partition
    cannot fill its level's lane. That the fetch hands a level's partitions out in turns in the first
    place is `order_for_drain`'s job (below): these queues alone did not change the order measured in
    the latency benchmark, because the router kept pace with the fetch and the lane never filled
    (docs/processors.md#priorities). `generation` moves on every `clear()` (a rebalance): a batch taken
    before it must not go on routing.
    """

    def __init__(
        self,
        levels: Sequence[int] = LEVELS,
        high_water: int = 2048,
        on_full: Callable[[Any], None] | None = None,
        on_drop: Callable[[Any], None] | None = None,
    ):
        self.levels = tuple(sorted(levels))
        self.partition_high_water = max(1, high_water // 4)
        self.partition_low_water = self.partition_high_water // 2
        self.on_full = on_full
        self.on_drop = on_drop
        # level -> partition -> its records in offset order; dict order is the partitions' turn order.
        self._lanes: dict[int, dict[Hashable, deque[Any]]] = {level: {} for level in self.levels}
        self._counts: dict[int, int] = dict.fromkeys(self.levels, 0)
        self._paused: set[Hashable] = set()
        self._taken_from: dict[int, Hashable] = {}
        self._arrived = asyncio.Event()
        self.generation = 0

    def offer(self, level: int, tp: Hashable, record: Any) -> None:
        self.offer_many(level, tp, (record,))

    def offer_many(self, level: int, tp: Hashable, records: Sequence[Any]) -> None:
        """`offer` for a fetch's records of one partition, in offset order, at once (the fetch loop
        hands them over per partition: processors/faust_drain.py)."""
        if not records:
            return
        partitions = self._lanes[level]
        queue = partitions.get(tp)
        if queue is None:
            queue = partitions[tp] = deque()
        queue.extend(records)
        self._counts[level] += len(records)
        if len(queue) >= self.partition_high_water and tp not in self._paused:
            self._paused.add(tp)
            if self.on_full is not None:
                self.on_full(tp)
        self._arrived.set()

    def take(self, max_records: int) -> tuple[int, list[Any]] | None:
        """The next batch: up to `max_records` of the next partition in turn of the most urgent
        non-empty level, or None."""
        for level in self.levels:
            if not self._counts[level]:
                continue
            partitions = self._lanes[level]
            tp = next(iter(partitions))
            queue = partitions.pop(tp)
            n = min(max_records, len(queue))
            batch = [queue.popleft() for _ in range(n)]
            self._counts[level] -= n
            if queue:
                partitions[tp] = queue  # its next turn comes after the level's other partitions
            if len(queue) <= self.partition_low_water:
                self._release(tp)
            self._taken_from[level] = tp
            return level, batch
        return None

    def give_back(self, level: int, records: Sequence[Any]) -> None:
        """A preempted batch's unrouted rest goes back to the front of its partition, in order, and
        that partition has the next turn."""
        if not records:
            return
        tp = self._taken_from[level]
        partitions = self._lanes[level]
        queue = partitions.pop(tp, None) or deque()
        queue.extendleft(reversed(records))
        self._lanes[level] = {tp: queue, **partitions}
        self._counts[level] += len(records)

    async def wait(self) -> None:
        """Until any lane has a record."""
        while not any(self._counts.values()):
            self._arrived.clear()
            await self._arrived.wait()

    def pending(self, level: int) -> int:
        return self._counts[level]

    def higher_pending(self, level: int) -> bool:
        counts = self._counts
        return any(counts[h] for h in self.levels if h < level)

    def clear(self) -> None:
        """Rebalance: every fetched record is read again from the committed offsets."""
        for level in self.levels:
            self._lanes[level].clear()
            self._counts[level] = 0
        for tp in list(self._paused):
            self._release(tp)
        self._taken_from.clear()
        self.generation += 1

    def _release(self, tp: Hashable) -> None:
        if tp in self._paused:
            self._paused.discard(tp)
            if self.on_drop is not None:
                self.on_drop(tp)


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
    loop as the fetcher), so a fetched p1 record is always handed to Faust in the next poll. Within a
    rank the partitions take turns at the head: aiokafka drains a whole partition's prefetched buffer
    (up to 1 MB) before the next one's, so a backlog was routed one partition after the other (some
    partitions waited for all the others; docs/processors.md).
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
        if len(records) > 1 and _rank is not None:
            order_for_drain(records, _rank)
        return await current(self, partitions, timeout, max_records)

    fetched_records._carinho_priority = True  # type: ignore[attr-defined]
    Fetcher.fetched_records = fetched_records


def order_for_drain(records: dict[Any, Any], rank: Callable[[str], float]) -> None:
    """Re-order aiokafka's prefetched buffers (keyed by TopicPartition) in place before a drain: most
    urgent topic first, and within one rank the buffer that led the previous drain moves to the end,
    so the partitions take turns (a drain takes up to max_poll_records from the head)."""
    by_rank: dict[float, list[Any]] = {}
    for item in records.items():
        by_rank.setdefault(rank(item[0].topic), []).append(item)
    records.clear()
    for level in sorted(by_rank):
        same = by_rank[level]
        records.update(same[1:] + same[:1])


_rank: Callable[[str], float] | None = None


def resume_partition(consumer: Any, tp: Any) -> None:
    """A lane released `tp` (its queue went down to the low water): Faust's `consumer` may hand its
    records out again, and a poll already waiting for records is woken so that it does.

    aiokafka's `fetched_records` is given Faust's live set of active partitions, looks at the
    prefetched buffers once, then sleeps until a fetch response brings *new* records (or its 1 s
    timeout). A paused partition's prefetched records stay in those buffers, and aiokafka does not
    fetch a partition again while they are there. So when the lanes released it (Faust's
    `on_buffer_drop` puts it back in the set) its records waited for the next fetch response of some
    other partition: the router sat idle ~20 % of the time with records in memory, up to ~450 ms at
    once (docs/benchmarks.md, sixteenth session). Woken, the poll looks at the buffers again."""
    consumer.on_buffer_drop(tp)
    fetcher = getattr(getattr(getattr(consumer, "_thread", None), "_consumer", None), "_fetcher", None)
    if fetcher is None or not fetcher._fetch_waiters:
        return
    loop = fetcher._loop
    try:
        same_loop = asyncio.get_running_loop() is loop
    except RuntimeError:
        same_loop = False
    if same_loop:
        _wake(fetcher)
    else:  # CARINHO_CONSUMER_THREAD=true: aiokafka runs on the consumer thread's loop
        loop.call_soon_threadsafe(_wake, fetcher)


def _wake(fetcher: Any) -> None:
    for waiter in list(fetcher._fetch_waiters):
        fetcher._notify(waiter)
