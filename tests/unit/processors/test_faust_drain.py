"""The fetch loop's hand-over (processors/faust_drain.py, `_fetch`): a poll's records of a laned topic
go to their lane in one call per partition, as fetched; every other record comes back as a Faust
message, in Faust's order; nothing is handed over once a rebalance began."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Hashable, Iterator, Sequence
from typing import Any

from faust.types import TP

from processors.faust_drain import _fetch
from processors.priority import PriorityLanes

P3, OTHER = TP("events.p3", 0), TP("scheduled", 0)


class Flow:
    def __init__(self) -> None:
        self.active = True

    def is_active(self) -> bool:
        return self.active


class App:
    def __init__(self) -> None:
        self.consumer_generation_id = 1
        self.flow_control = Flow()
        self.ends: dict[Any, int] = {}
        self.monitor = self

    def track_tp_end_offset(self, tp: Any, offset: int) -> None:
        self.ends[tp] = offset


class Scheduler:
    def iterate(self, records: dict[Any, list[Any]]) -> Iterator[tuple[Any, Any]]:
        for tp, batch in records.items():
            for record in batch:
                yield tp, record


class Log(logging.LoggerAdapter[logging.Logger]):
    def __init__(self) -> None:
        super().__init__(logging.getLogger(__name__))

    def dev(self, *args: Any) -> None:  # mode's logger level below debug
        self.debug(*args)


class Consumer:
    """The parts of Faust's consumer `_fetch` uses."""

    def __init__(self, records: dict[Any, list[Any]], lanes: PriorityLanes, active: set[Any] | None = None):
        self.app = App()
        self._records, self._active = records, active
        self._carinho_lane_of = {"events.p3": (lanes, 3)}
        self._buffered_partitions: set[Any] = set()
        self.flow_active = True
        self.should_stop = False
        self.scheduler = Scheduler()
        self.sought = False
        self.log = Log()

    async def _wait_next_records(self, limit: float) -> tuple[dict[Any, list[Any]], set[Any] | None]:
        return self._records, self._active

    async def perform_seek(self) -> None:
        self.sought = True

    def highwater(self, tp: Any) -> int:
        return 100

    def _to_message(self, tp: Any, record: Any) -> tuple[str, Any]:
        return ("message", record)


def fetch(consumer: Consumer) -> list[tuple[Any, Any]]:
    return list(asyncio.run(_fetch(consumer)))


def test_a_laned_partitions_records_go_to_the_lane_in_one_call_and_the_rest_come_back_as_messages() -> None:
    lanes = PriorityLanes()
    offered: list[tuple[int, Hashable, Sequence[Any]]] = []
    offer_many = lanes.offer_many

    def spy(level: int, tp: Hashable, records: Sequence[Any]) -> None:
        offered.append((level, tp, records))
        offer_many(level, tp, records)

    lanes.offer_many = spy  # type: ignore[method-assign]
    consumer = Consumer({P3: ["r0", "r1", "r2"], OTHER: ["s0"]}, lanes)
    assert fetch(consumer) == [(OTHER, ("message", "s0"))]
    assert offered == [(3, P3, ["r0", "r1", "r2"])]  # the fetch's list itself, once
    assert lanes.take(10) == (3, ["r0", "r1", "r2"])
    assert consumer.app.ends == {P3: 100, OTHER: 100}


def test_partitions_not_active_are_skipped_and_nothing_is_handed_over_during_a_rebalance() -> None:
    lanes = PriorityLanes()
    consumer = Consumer({P3: ["r0"], OTHER: ["s0"]}, lanes, active={OTHER})
    assert fetch(consumer) == [(OTHER, ("message", "s0"))]
    assert lanes.pending(3) == 0  # P3 is not active here (paused): its records are fetched again

    consumer = Consumer({P3: ["r0"], OTHER: ["s0"]}, lanes)
    consumer.app.flow_control.active = False  # the app's flow is suspended (a rebalance)
    assert fetch(consumer) == [(OTHER, ("message", "s0"))]
    assert lanes.pending(3) == 0

    consumer = Consumer({P3: ["r0"], OTHER: ["s0"]}, lanes)
    consumer.flow_active = False  # the consumer's flow: Faust seeks back to the committed offsets
    assert fetch(consumer) == [] and consumer.sought and lanes.pending(3) == 0


def test_the_other_records_stop_at_a_new_generation() -> None:
    lanes = PriorityLanes()
    consumer = Consumer({OTHER: ["s0", "s1"]}, lanes)
    messages = asyncio.run(_fetch(consumer))
    assert next(messages) == (OTHER, ("message", "s0"))
    consumer.app.consumer_generation_id = 2  # a rebalance began while the drain loop handled s0
    assert list(messages) == []
