"""The worker's aiokafka consumer gets the fetch sizes from the settings (Faust 0.15.3 passes
neither fetch.min.bytes nor a chosen fetch.max.wait.ms), and a quiet node's next fetch is parked for
its first byte instead of polling every fetch.max.wait.ms."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import faust
from aiokafka.consumer.fetcher import Fetcher
from aiokafka.protocol.fetch import FetchRequest
from aiokafka.structs import TopicPartition

from processors import fetch_tuning
from processors.fetch_tuning import UNCONSUMED_SECONDS, install_fetch_sizes, note_outcome, parks


def test_the_worker_consumer_is_created_with_the_fetch_sizes() -> None:
    install_fetch_sizes(4096, 7, 300)
    install_fetch_sizes(16_384, 10, 500)  # idempotent: the last values win, the wrapper is not stacked
    app = faust.App("t-fetch-sizes", broker="kafka://127.0.0.1:9", web_enabled=False)
    thread = app.consumer._thread

    async def create() -> tuple[int, int]:
        consumer = thread._create_worker_consumer(app.consumer.transport)
        return consumer._fetch_min_bytes, consumer._fetch_max_wait_ms

    assert asyncio.run(create()) == (16_384, 10)


class _Assignment:
    def __init__(self, position: int = 0, paused: frozenset[TopicPartition] = frozenset()) -> None:
        self.tps = [TopicPartition("a", 0), TopicPartition("a", 1), TopicPartition("b", 0)]
        self.position, self.paused = position, paused

    def state_value(self, tp: TopicPartition) -> Any:
        return SimpleNamespace(paused=tp in self.paused, position=self.position)


class _Fetcher:
    """What `parks` reads of aiokafka's Fetcher: partition "b"/0 is led by node 2."""

    def __init__(self) -> None:
        self._records: dict[TopicPartition, Any] = {}

    def _select_read_replica(self, tp: TopicPartition) -> int:
        return 2 if tp.topic == "b" else 1


def _request(*tps: tuple[str, int]) -> FetchRequest:
    by_topic: dict[str, list[tuple[int, int, int]]] = {}
    for topic, partition in tps:
        by_topic.setdefault(topic, []).append((partition, 0, 1_048_576))
    return FetchRequest(10, 16_384, 52_428_800, 0, list(by_topic.items()))


def test_only_a_quiet_node_asked_for_all_its_partitions_parks_its_fetch() -> None:
    fetcher: Any = _Fetcher()
    assignment = _Assignment()
    everything_of_node_1 = _request(("a", 0), ("a", 1))
    assert not parks(fetcher, assignment, 1, everything_of_node_1)  # nothing known yet: the busy sizes
    note_outcome(fetcher, 1, got_records=False)
    assert parks(fetcher, assignment, 1, everything_of_node_1)
    # a/1 left out (its prefetched records wait, or a full lane paused it): it must not wait behind
    assert not parks(fetcher, assignment, 1, _request(("a", 0)))
    assert not parks(fetcher, assignment, 2, _request(("b", 0)))  # per node: node 2 is not quiet
    note_outcome(fetcher, 1, got_records=True)
    assert not parks(fetcher, assignment, 1, everything_of_node_1)  # records came: busy again


def test_records_nobody_took_for_a_while_do_not_keep_a_quiet_node_polling(monkeypatch: Any) -> None:
    """Faust prefetches its own tables' changelog partitions and reads them only in a recovery."""
    clock = [100.0]
    monkeypatch.setattr(fetch_tuning.time, "monotonic", lambda: clock[0])
    fetcher: Any = _Fetcher()
    note_outcome(fetcher, 1, got_records=False)
    a1 = TopicPartition("a", 1)
    without_a1 = _request(("a", 0))
    fetcher._records[a1] = object()
    assignment = _Assignment(position=5)
    assert not parks(fetcher, assignment, 1, without_a1)  # first seen: the router may want more soon
    clock[0] += UNCONSUMED_SECONDS / 2
    assignment.position = 7  # the router took some: still being consumed
    assert not parks(fetcher, assignment, 1, without_a1)
    clock[0] += UNCONSUMED_SECONDS + 0.1
    assert parks(fetcher, assignment, 1, without_a1)  # untouched since: nobody reads it
    paused = _Assignment(position=7, paused=frozenset({a1}))
    assert not parks(fetcher, paused, 1, without_a1)  # a full lane: it will be read again


def test_the_parked_fetch_asks_for_one_byte_and_the_idle_wait() -> None:
    install_fetch_sizes(16_384, 10, 500)
    sent: list[tuple[int, int]] = []

    class _Client:
        async def send(self, node_id: int, request: FetchRequest) -> Any:
            sent.append((request._min_bytes, request._max_wait_ms))
            raise asyncio.CancelledError  # aiokafka's path for a fetch nobody waits for: no records

    fetcher: Any = Fetcher.__new__(Fetcher)
    fetcher._client, fetcher._records = _Client(), {}
    fetcher._select_read_replica = lambda tp: 1
    assignment = _Assignment()

    async def fetch_twice() -> None:
        for _ in range(2):
            request = _request(("a", 0), ("a", 1), ("b", 0))
            assert await Fetcher._proc_fetch_request(fetcher, assignment, 1, request) is False

    asyncio.run(fetch_twice())
    assert sent == [(16_384, 10), (1, 500)]
