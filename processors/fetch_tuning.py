"""How long the worker's consumer lets the broker hold a fetch (fetch.min.bytes, fetch.max.wait.ms).

Busy: Faust 0.15.3 passes neither to aiokafka (min 1 byte: every fetch returns as soon as one record
is there), so a worker that keeps up with the trail topic fetched a few records at a time and spent
more CPU on requests than on records. While there is traffic the fetches ask for `min_bytes` and wait
at most `max_wait_ms` (docs/benchmarks.md, ninth session).

Idle: with nothing to read, that short wait turned into a fetch request every `max_wait_ms` (100 a
second at 10 ms: ~19 % of a core per idle worker, bench.processors_idle). A node whose last fetch brought
nothing gets its next fetch with min 1 byte and `idle_wait_ms`, if that fetch asks for every
partition the node leads: the broker parks it and answers the moment any record arrives, so an idle
worker costs almost nothing. aiokafka sends one fetch per node at a time, so a partition left out of
a parked fetch (its prefetched records not consumed yet, or paused by a full lane) could not be
fetched again until it returns: then the busy sizes are kept, unless the records left out have not
been touched for `UNCONSUMED_SECONDS` (see `parks`).

Process-wide and idempotent; the values of the last call win.
"""

from __future__ import annotations

import time
from typing import Any

UNCONSUMED_SECONDS = 1.0  # prefetched records untouched this long are not waiting for the router
# (min_bytes, max_wait_ms, idle_wait_ms): Faust 0.15.3's own until install_fetch_sizes sets them.
_values: tuple[int, int, int] = (1, 1500, 1500)


def install_fetch_sizes(min_bytes: int, max_wait_ms: int, idle_wait_ms: int) -> None:
    from aiokafka.consumer.fetcher import Fetcher
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    global _values
    _values = (min_bytes, max_wait_ms, idle_wait_ms)
    current = AIOKafkaConsumerThread._create_worker_consumer
    if getattr(current, "_carinho_fetch_sizes", False):
        return

    def create_worker_consumer(self: Any, transport: Any) -> Any:
        consumer = current(self, transport)
        # Read by aiokafka's Fetcher when the consumer starts: the busy sizes.
        consumer._fetch_min_bytes, consumer._fetch_max_wait_ms = _values[:2]
        return consumer

    create_worker_consumer._carinho_fetch_sizes = True  # type: ignore[attr-defined]
    AIOKafkaConsumerThread._create_worker_consumer = create_worker_consumer  # type: ignore[method-assign]

    proc_fetch_request = Fetcher._proc_fetch_request

    async def proc_fetch_request_adaptive(self: Any, assignment: Any, node_id: int, request: Any) -> Any:
        if parks(self, assignment, node_id, request):
            # FetchRequest reads these when it is encoded, in the send below.
            request._min_bytes, request._max_wait_ms = 1, _values[2]
        got_records = await proc_fetch_request(self, assignment, node_id, request)
        note_outcome(self, node_id, bool(got_records))
        return got_records

    Fetcher._proc_fetch_request = proc_fetch_request_adaptive


def _quiet_nodes(fetcher: Any) -> set[int]:
    quiet: set[int] = fetcher.__dict__.setdefault("_carinho_quiet_nodes", set())
    return quiet


def note_outcome(fetcher: Any, node_id: int, got_records: bool) -> None:
    """Remember whether the last fetch from `node_id` brought records (or an error to hand out)."""
    if got_records:
        _quiet_nodes(fetcher).discard(node_id)
    else:
        _quiet_nodes(fetcher).add(node_id)


def parks(fetcher: Any, assignment: Any, node_id: int, request: Any) -> bool:
    """Whether `request`, the next fetch from `node_id`, may wait `idle_wait_ms` for its first byte:
    the node's last fetch brought nothing and the request asks for every partition the node leads
    (none left out because its prefetched records still wait to be consumed or a full lane paused it:
    such a partition could not be fetched again until this one returns). A partition whose prefetched
    records nobody took for `UNCONSUMED_SECONDS` (its position did not move) does not count: Faust
    prefetches its active tables' changelog partitions, which the routers write themselves, and reads
    them only in a recovery (a new assignment, which does not wait for a parked fetch)."""
    if node_id not in _quiet_nodes(fetcher):
        return False
    asked = {(topic, partition) for topic, partitions in request.topics for partition, *_ in partitions}
    now = time.monotonic()
    return all(
        (tp.topic, tp.partition) in asked or _unconsumed(fetcher, assignment, tp, now)
        for tp in assignment.tps
        if fetcher._select_read_replica(tp) == node_id
    )


def _unconsumed(fetcher: Any, assignment: Any, tp: Any, now: float) -> bool:
    """`tp` has prefetched records, is not paused, and its position has not moved for
    `UNCONSUMED_SECONDS` (the position of each such partition is noted at every check)."""
    if tp not in fetcher._records:
        return False
    state = assignment.state_value(tp)
    if state.paused:
        return False
    seen: dict[Any, tuple[int, float]] = fetcher.__dict__.setdefault("_carinho_positions", {})
    last = seen.get(tp)
    if last is None or last[0] != state.position:
        seen[tp] = (state.position, now)
        return False
    return bool(now - last[1] > UNCONSUMED_SECONDS)
