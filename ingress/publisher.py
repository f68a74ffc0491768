"""Async bridge to an idempotent confluent-kafka producer: `await publish(...)` returns only after the
broker acknowledged the write (acks=all), or raises PublishFailed. The ingress answers 202 only after
that, so an accepted event is never lost; on failure it answers 503 and the client retries with the
same idempotency key (same event_id, deduplicated downstream)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Sequence
from functools import partial
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from hub.kafka_config import producer_config

log = logging.getLogger("ingress.publisher")
Record = tuple[str, bytes, bytes | None, list[tuple[str, bytes]] | None]  # topic, value, key, headers
ACK_POLL_S = 0.001  # while writes wait for their ack
SIDE_POLL_S = 0.05  # the side producer (trail, audit): nobody waits on it


class PublishFailed(Exception):
    """The write was not acknowledged; `retryable` is False only for errors a retry cannot fix."""

    def __init__(self, reason: str, retryable: bool = True):
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


class Publisher:
    def __init__(self, bootstrap: str, *, client_id: str, timeout_s: float, linger_ms: int = 2, **overrides: Any):
        self.timeout_s = timeout_s
        # librdkafka gives up at the same bound the HTTP answer waits for: no late "success" after a 503.
        config = producer_config(
            bootstrap, client_id=client_id, linger_ms=linger_ms, delivery_timeout_ms=int(timeout_s * 1000), **overrides
        )
        config.setdefault("queue.buffering.max.messages", 200_000)
        self._producer = Producer(config)
        # Trail hops and request audit go through a second producer that batches for 50 ms: they
        # need no answer to the client, and batching them halves the broker's requests per event
        # (measured: the broker, not the ingress, was the busiest process under single-event load).
        side = producer_config(bootstrap, client_id=f"{client_id}-side", linger_ms=50, delivery_timeout_ms=120_000)
        side.setdefault("queue.buffering.max.messages", 200_000)
        self._side = Producer(side)
        self._poller: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        # Writes waiting for their ack, oldest first, with the time their backstop runs out (see publish).
        self._deadlines: deque[tuple[float, asyncio.Future[tuple[int, int]]]] = deque()
        # Side records waiting for the end of this turn of the event loop (see _flush_side).
        self._side_queued: dict[str, list[dict[str, bytes | None]]] = {}
        self._side_due = False

    def start(self) -> None:
        """Serve delivery callbacks on the event loop itself (call from the loop, at start-up).

        A poll thread would hand every ack to the loop across the GIL; on a busy 2-core box that
        hand-off cost more than the write (measured: p50 ack wait 48 ms with a thread vs a few ms here).
        """
        if self._poller is None:
            self._wake = asyncio.Event()
            self._poller = asyncio.get_running_loop().create_task(self._poll_loop(), name="kafka-producer-poll")

    async def _poll_loop(self) -> None:
        loop = asyncio.get_running_loop()
        wake = self._wake
        assert wake is not None  # set by start()
        side_due = 0.0
        deadlines = self._deadlines
        while True:
            served = self._producer.poll(0)
            now = loop.time()
            expire_overdue(deadlines, now)
            if now >= side_due:  # the side producer needs no answer: its reports are served 20x/s
                self._side.poll(0)
                side_due = now + SIDE_POLL_S
            if served:
                await asyncio.sleep(0)  # acks are flowing: stay hot
            elif len(self._producer):
                await asyncio.sleep(ACK_POLL_S)  # writes in flight, no ack yet
            else:
                # Nothing in flight: sleep until a write starts (send() wakes us) instead of spinning;
                # the timeout still serves librdkafka's log and error callbacks.
                wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), SIDE_POLL_S)

    async def publish(
        self, topic: str, value: bytes, key: bytes | None = None, headers: list[tuple[str, bytes]] | None = None
    ) -> tuple[int, int]:
        """Write one record and wait for the ack; returns (partition, offset)."""
        future = self.send(topic, value, key, headers)
        # The write's own bound is librdkafka's delivery.timeout.ms; this backstop, for a report that
        # never comes, is checked by the poll loop (writes are queued in order, all with one timeout):
        # no timer to arm and cancel per request.
        self._deadlines.append((asyncio.get_running_loop().time() + self.timeout_s + 1.0, future))
        return await future

    def send(
        self, topic: str, value: bytes, key: bytes | None = None, headers: list[tuple[str, bytes]] | None = None
    ) -> asyncio.Future[tuple[int, int]]:
        """Start a write; the future resolves on ack (or fails with PublishFailed)."""
        future: asyncio.Future[tuple[int, int]] = asyncio.get_running_loop().create_future()
        try:
            self._producer.produce(topic, value=value, key=key, headers=headers, on_delivery=partial(_report, future))
        except BufferError:
            _set_exception(future, PublishFailed("producer queue full"))
        except KafkaException as exc:
            _set_exception(future, PublishFailed(str(exc.args[0])))
        if self._wake is not None:
            self._wake.set()
        return future

    def _flush_side(self) -> None:
        """Write the side records this turn of the event loop queued, one produce_batch per topic.

        A produce() per record, between requests, cost ~4x what the same call costs in a run of
        them (cold caches): docs/benchmarks.md, seventeenth session. The events themselves are
        produced at once: deferring them to the end of the turn too measured slower."""
        self._side_due = False
        side, self._side_queued = self._side_queued, {}
        for topic, records in side.items():
            self._produce_side(topic, records)

    def _produce_side(self, topic: str, records: list[dict[str, bytes | None]]) -> None:
        try:
            queued = self._side.produce_batch(topic, records)
        except (BufferError, KafkaException):
            queued = 0
        if queued < len(records):
            log.warning("side records dropped: producer queue full or closed", extra={"count": len(records) - queued})

    async def publish_many(self, records: Sequence[Record]) -> list[bool]:
        """Write records and wait until each is acknowledged or failed; True per acknowledged record.

        One future and one counter for the whole batch instead of a future per record (the batch
        route's hot path: gathering 500 futures cost more than producing the records)."""
        loop = asyncio.get_running_loop()
        ack = _BatchAck(loop.create_future(), len(records))
        produce = self._producer.produce
        for index, (topic, value, key, headers) in enumerate(records):
            try:
                produce(topic, value=value, key=key, headers=headers, on_delivery=partial(ack.done, index))
            except (BufferError, KafkaException):
                ack.done(index, True, None)  # not written: reported as not acknowledged
        if self._wake is not None:
            self._wake.set()
        timer = loop.call_later(self.timeout_s + 1.0, ack.expire)
        try:
            return await ack.future
        finally:
            timer.cancel()

    def fire_and_forget(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        """Best-effort write (request audit, trail hops): never blocks, never raises. Written with the
        turn's other side records in one produce_batch (same partitioner as produce)."""
        records = self._side_queued.get(topic)
        if records is None:
            records = self._side_queued[topic] = []
        records.append({"value": value, "key": key})
        if not self._side_due:
            self._side_due = True
            asyncio.get_running_loop().call_soon(self._flush_side)

    def fire_and_forget_many(self, topic: str, records: list[tuple[bytes, bytes]]) -> None:
        """Best-effort writes of (value, key) records in one call (a batch's trail hops): never blocks,
        never raises. One produce_batch instead of a produce() per record; same partitioner."""
        self._produce_side(topic, [{"value": value, "key": key} for value, key in records])

    def reachable(self, timeout_s: float = 2.0) -> bool:
        try:
            self._producer.list_topics(timeout=timeout_s)
            return True
        except KafkaException:
            return False

    async def aclose(self, timeout_s: float = 10.0) -> int:
        """Flush what is in flight (callbacks still resolve); returns how many were still undelivered."""
        if self._side_queued:
            self._flush_side()
        deadline = asyncio.get_running_loop().time() + timeout_s
        while (len(self._producer) or len(self._side)) and asyncio.get_running_loop().time() < deadline:
            self._producer.poll(0)
            self._side.poll(0)
            await asyncio.sleep(0.01)
        if self._poller is not None:
            self._poller.cancel()
        return len(self._producer) + len(self._side)


def _set_result(future: asyncio.Future[tuple[int, int]], value: tuple[int, int]) -> None:
    if not future.done():
        future.set_result(value)


def _set_exception(future: asyncio.Future[tuple[int, int]], exc: Exception) -> None:
    if not future.done():
        future.set_exception(exc)


class _BatchAck:
    __slots__ = ("future", "left", "ok")

    def __init__(self, future: asyncio.Future[list[bool]], count: int):
        self.future = future
        self.ok = [False] * count
        self.left = count
        if count == 0:
            future.set_result(self.ok)

    def done(self, index: int, err: object, _msg: object) -> None:  # a delivery report, on the loop
        if err is None:
            self.ok[index] = True
        self.left -= 1
        if self.left == 0 and not self.future.done():
            self.future.set_result(self.ok)

    def expire(self) -> None:  # backstop: reports not in by now count as not acknowledged
        if not self.future.done():
            self.future.set_result(list(self.ok))


def _report(future: asyncio.Future[tuple[int, int]], err: KafkaError | None, msg: Message) -> None:
    """A record's delivery report (served on the loop: see Publisher.start)."""
    if err is not None:
        _set_exception(
            future, PublishFailed(f"{err.name()}: {err.str()}", retryable=err.retriable() or not err.fatal())
        )
    else:
        _set_result(future, (msg.partition(), msg.offset()))


def expire_overdue(deadlines: deque[tuple[float, asyncio.Future[tuple[int, int]]]], now: float) -> None:
    """Drop the answered writes from the head of the queue and fail those past their deadline (the
    queue is in write order, every write with the same timeout, so the head is the oldest)."""
    while deadlines and (deadlines[0][1].done() or deadlines[0][0] <= now):
        _expire(deadlines.popleft()[1])  # a no-op for the answered ones


def _expire(future: asyncio.Future[tuple[int, int]]) -> None:
    _set_exception(future, PublishFailed("broker did not acknowledge in time"))
