"""Our own at-least-once bookkeeping for events.p1..p5, independent of Faust's ack tracking.

Why: Faust decides what to commit from the offsets its streams acked; it fills holes in the offsets
it *read* as if they were compaction gaps (`Consumer._add_gap`), drops fetched records below its
last read offset, and with no committed offset yet it commits the first run of acked offsets
wherever that run starts. A record dropped inside Faust before it reaches the router (a queue
cleared around a rebalance, faust#596 and neighbours) is then committed over and never routed. The
chaos tests caught exactly that: a prefix of a partition never routed by the worker that took over.

The guard knows where each assigned partition starts (the committed offset after the post-rebalance
seek, else the log start), the next offset the router must see, and how far the router has *settled*
(outputs produced and dead letters written): the offset committed for these topics (Faust's acks are
not used for them, see processors/faust_drain.py). The priority topics are written
by idempotent, non-transactional producers and never compacted, so their offsets are contiguous: a
record arriving beyond the expected offset means records were lost inside the worker. Then
(1) no commit passes the expected offset, and (2) the router reads the missing range straight
from Kafka with its own short-lived consumer and routes it before the record in hand (`Hole`), so
the partition's order is kept. Seeking Faust's consumer back does not work: records of its fetch in
flight move Faust's read offset past the seek and it drops the re-fetched ones. Offsets the fill cannot
find (only a transactional or compacted topic would have them) are logged as an error by the router.
A hole at the very end of a partition has no later record to reveal it: it waits, uncommitted, for
the partition's next record or the next rebalance (a time-based sweep against the high watermark was
tried and misfired: a conductor blocked on Faust's full producer buffer looks exactly like a loss).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Hole:
    tp: Hashable
    expected: int  # first offset the router did not see
    got: int  # the offset that arrived instead (exclusive end of the hole)

    @property
    def size(self) -> int:
        return self.got - self.expected


class OffsetGuard:
    def __init__(self) -> None:
        self._next: dict[Hashable, int] = {}
        self._settled: dict[Hashable, int] = {}
        # The latest holes found (tests, debugging); bounded, so a worker that keeps finding holes
        # cannot grow without end. `holes_found` counts them all (/health; the metric is per topic).
        self.holes: deque[Hole] = deque(maxlen=100)
        self.holes_found = 0

    def reset(self, starts: Mapping[Hashable, int]) -> None:
        """After a rebalance: the position every assigned partition was sought to."""
        self._next = dict(starts)
        self._settled = dict(starts)

    def behind(self, tp: Hashable, offset: int) -> bool:
        """Already routed since the last reset (Faust fetched it again): skip it."""
        expected = self._next.get(tp)
        return expected is not None and offset < expected

    def expected(self, tp: Hashable) -> int | None:
        return self._next.get(tp)

    def check(self, tp: Hashable, offset: int) -> Hole | None:
        """None: route this record now (the expected one, an unknown partition, or a replay of an
        earlier offset after Faust sought back). A Hole: route the hole's records first."""
        expected = self._next.get(tp)
        if expected is None or offset <= expected:
            return None
        hole = Hole(tp, expected, offset)
        self.holes.append(hole)
        self.holes_found += 1
        return hole

    def routed(self, tp: Hashable, offset: int) -> None:
        if self._next.get(tp) == offset:
            self._next[tp] = offset + 1

    def filled(self, hole: Hole) -> None:
        """The hole's records are routed (or do not exist): the record in hand is next."""
        if self._next.get(hole.tp) == hole.expected:
            self._next[hole.tp] = hole.got

    def settle(self, tps: Iterable[Hashable]) -> None:
        """Everything routed so far on these partitions is durable enough to commit: its outputs are
        in the producer (flushed before every commit) and its dead letters are written."""
        for tp in tps:
            position = self._next.get(tp)
            if position is not None:
                self._settled[tp] = position

    def settled(self) -> dict[Hashable, int]:
        """The commit offset of every guarded partition."""
        return dict(self._settled)


__all__ = ["Hole", "OffsetGuard"]
