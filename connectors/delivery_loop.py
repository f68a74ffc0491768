"""The delivery worker of one destination.

One consumer (group `connector.<destination>`) reads deliver.<destination> and its retry tiers. Each
record goes: [per-key turn, main topic only] -> breaker gate -> concurrency slot -> token bucket ->
HTTP attempt -> outcome. The outcome's records (history, trail, and the retry / dead-letter / SMS
fallback record) are written and acknowledged by the broker BEFORE the record's offset may be
committed; the commit position of a partition is the lowest offset whose outcome is not yet durable.
So a SIGKILL at any moment only causes a re-delivery with the same Idempotency-Key.

Non-blocking retries: a record on a retry tier that is not due yet pauses its partition and seeks back
to it; a timer resumes the partition when it is due. No task ever sleeps holding a record. While the
breaker is open the destination's partitions are paused: records wait in Kafka, no attempts are spent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from pydantic import ValidationError

from connectors import metrics
from connectors.adaptive_timeout import AdaptiveTimeout
from connectors.breaker import STATE_VALUE, CircuitBreaker, State
from connectors.classify import AttemptResult
from connectors.destinations.base import Sender
from connectors.fallback import fallback_applies, fallback_record
from connectors.history import Outcome, delivered_rows, deliveries_record, trail_hop
from connectors.kafka_io import TP, AsyncProducer, OffsetTracker, OutRecord, PauseBook
from connectors.rate_limit import TokenBucket
from connectors.retry_policy import next_retry, parking_tier
from connectors.retry_state import RetryState, epoch_ms, strip_retry_headers
from hub.dead_letter import DeadLetterInfo
from hub.delivery import DeliveryRecord
from hub.kafka_config import consumer_config
from hub.logging import event_id_var
from hub.masking import mask_text
from hub.topology import Topology

log = logging.getLogger("connectors.delivery")

BATCH = 500
# Every sleep/wake cycle of the event loop costs ~150 us of CPU on this VM (an idle worker used 6.7 % of a
# core with a 5 ms consume tick and a 1-4 ms producer poll, 2.1 % with 20 ms / 5-20 ms): a record is
# picked up at most 20 ms after it lands.
IDLE_SLEEP_S = 0.02
HOLD_S = 1.0  # a full buffer longer than this pauses the partitions (see run())
_MAIN_STATE = RetryState()  # frozen: every record read from the main topic shares it


def _utcnow() -> datetime:
    return datetime.now(UTC)


class _Turn:
    """A record's place in its key's queue (main topic): the next record with the same key waits for it.
    The future is created only when a later record actually waits (most keys have one record in flight)."""

    __slots__ = ("done", "waiter")

    def __init__(self) -> None:
        self.done = False
        self.waiter: asyncio.Future[None] | None = None

    async def wait(self) -> None:
        if not self.done:
            if self.waiter is None:
                self.waiter = asyncio.get_running_loop().create_future()
            await self.waiter

    def finish(self) -> None:
        self.done = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)


class Slots:
    """The destination's concurrency slots: asyncio.Semaphore's behaviour (FIFO, a freed slot goes to the
    longest waiter) with a synchronous fast path — `try_take()` costs no coroutine when a slot is free."""

    __slots__ = ("_loop", "_waiters", "free")

    def __init__(self, size: int):
        self.free = size
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None

    def try_take(self) -> bool:
        if self.free > 0 and not self._waiters:
            self.free -= 1
            return True
        return False

    async def take(self) -> None:
        if self.try_take():
            return
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.give()  # the slot was handed over just before the cancellation: pass it on
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            raise

    def give(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # handed over directly: `free` stays as it is
                return
        self.free += 1


class _Ids:
    """Per-record strings used by every outcome row (computed once, not per history/trail record)."""

    __slots__ = ("pair",)

    def __init__(self, record: DeliveryRecord):
        self.pair = (str(record.delivery_id), str(record.event_id))


class DestinationWorker:
    _loop: asyncio.AbstractEventLoop  # set by run()

    def __init__(
        self,
        destination: str,
        topology: Topology,
        sender: Sender,
        producer: AsyncProducer,
        *,
        bootstrap: str,
        sms_path: str = "/messages",
        max_buffered: int = 1000,
        commit_interval_s: float = 0.2,
        delivered_cache_size: int = 50_000,
        on_health_change: Callable[[DestinationWorker], None] | None = None,
        consumer_overrides: dict[str, Any] | None = None,
    ):
        spec = topology.destinations[destination]
        self.name = destination
        self.topology = topology
        self.sender = sender
        self.producer = producer
        self.bootstrap = bootstrap
        self.sms_path = sms_path
        self.max_buffered = max_buffered
        self.commit_interval_s = commit_interval_s
        self.main_topic = topology.delivery_topic(destination)
        self.retry_topics = topology.retry_topics(destination)
        self.group = topology.consumer_group(f"connector.{destination}")
        self.consumer_overrides = consumer_overrides or {}
        self.breaker = CircuitBreaker(destination, spec.breaker, on_change=self._breaker_changed)
        self.timeout = AdaptiveTimeout(spec.timeout)
        self.bucket = TokenBucket(spec.rate_limit.per_second, spec.rate_limit.burst)
        self.concurrency_limit = spec.concurrency
        self.fallback_rule = spec.fallback
        # WhatsApp keeps consuming while its breaker is open: listed message types go to SMS at once.
        self.fallback_on_open = spec.fallback is not None and "breaker_open" in spec.fallback.when
        self.on_health_change = on_health_change
        self.deliveries_topic = topology.system_topic("deliveries")
        self.trail_topic = topology.system_topic("trail")
        # Labelled metric children looked up once (labels() takes a lock and hashes the labels per call).
        self._m_outcomes = {
            o: metrics.OUTCOMES.labels(destination, o)
            for o in ("delivered", "retry", "dead_letter", "fallback", "skipped_duplicate")
        }
        self._m_attempts = {k: metrics.ATTEMPTS.labels(destination, k) for k in ("success", "transient", "permanent")}
        self._m_latency = metrics.LATENCY.labels(destination)
        metrics.precreate(destination, len(self.retry_topics))
        # Keys are UUID.int: plain ints are not tracked by the garbage collector (50,000 UUID objects were).
        self._delivered: OrderedDict[int, None] = OrderedDict()
        self._delivered_cap = delivered_cache_size
        self.stats: dict[str, int] = {
            "delivered": 0,
            "retry": 0,
            "dead_letter": 0,
            "fallback": 0,
            "skipped_duplicate": 0,
            "attempts": 0,
            "parked": 0,
            "errors": 0,
        }
        self.last_check_at: datetime | None = None
        self.last_check_ok: bool | None = None
        self.last_status: int | None = None
        self.running = False
        self._stop = asyncio.Event()
        self._generation = 0
        self._reset_partition_state()
        metrics.BREAKER_STATE.labels(destination).set(0)

    def _reset_partition_state(self) -> None:
        self.consumer: Consumer | None = None
        self.tracker = OffsetTracker()
        self.pauses = PauseBook()
        self.buffered = 0
        self._keys: dict[bytes, _Turn] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._skip_from: dict[TP, int] = {}
        self._resume_timers: dict[TP, asyncio.TimerHandle] = {}
        self._newly_assigned: list[TP] = []
        self._slots = Slots(self.concurrency_limit)
        self._unacked = 0  # records whose outcome is written but not yet acknowledged
        self._all_acked: asyncio.Future[None] | None = None

    # ---- lifecycle -------------------------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()

    async def run(self, grace_s: float = 10.0) -> None:
        loop = self._loop = asyncio.get_running_loop()
        self._reset_partition_state()
        config = consumer_config(
            self.bootstrap,
            group_id=self.group,
            client_id=f"connector-{self.name}",
            **{"queued.max.messages.kbytes": 8192, "fetch.wait.max.ms": 500, **self.consumer_overrides},
        )
        consumer = Consumer(config)
        self.consumer = consumer
        consumer.subscribe(
            [self.main_topic, *self.retry_topics],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        if self.breaker.state == "open" and not self.fallback_on_open:
            self.pauses.add_global("breaker")
        self.running = True
        last_commit = last_gauges = loop.time()
        held_since: float | None = None
        try:
            while not self._stop.is_set():
                # Backpressure: at most max_buffered records held. A full buffer first just stops taking
                # records (consume() is not called; librdkafka keeps its prefetched records), because
                # pause()/resume() made librdkafka deliver nothing for ~0.5-1 s after every resume — the
                # worker sat idle half the time at 0 ms latency. Only a buffer full for HOLD_S pauses
                # the partitions, so consume() keeps serving rebalances and group membership.
                room = self.max_buffered - self.buffered
                if room > 0:
                    held_since = None
                    messages = consumer.consume(min(BATCH, room), 0)
                else:
                    now = loop.time()
                    held_since = held_since or now
                    if now - held_since < HOLD_S:
                        messages = []
                    else:
                        if self.pauses.add_global("backpressure"):
                            self._reconcile()
                        messages = consumer.consume(BATCH, 0)
                if self._newly_assigned:
                    self._reconcile(self._newly_assigned)
                    self._newly_assigned = []
                for message in messages:
                    self._dispatch(message)
                now = loop.time()
                if now - last_commit >= self.commit_interval_s:
                    self._commit()
                    last_commit = now
                if now - last_gauges >= 0.5:
                    _ = self.breaker.state  # lazy open -> half_open transition
                    self._update_gauges()
                    last_gauges = now
                await asyncio.sleep(0 if messages else IDLE_SLEEP_S)
        finally:
            self.running = False
            await self._shutdown(grace_s)

    async def _shutdown(self, grace_s: float) -> None:
        for timer in self._resume_timers.values():
            timer.cancel()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_s
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace_s)
            for task in pending:
                task.cancel()  # not durable -> not committed -> re-delivered after restart
            if pending:
                await asyncio.wait(pending, timeout=2)
        if self._unacked > 0:  # outcomes written, acknowledgements still to come
            self._all_acked = loop.create_future()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._all_acked), max(0.0, deadline - loop.time()))
        self._generation += 1  # acknowledgements arriving from now on belong to a finished run
        consumer = self.consumer
        if consumer is None:
            return
        offsets = self.tracker.commit_due()
        if offsets:
            try:
                consumer.commit(offsets=offsets, asynchronous=False)
            except KafkaException as exc:
                log.warning("final commit failed", extra={"destination": self.name, "error": str(exc)})
        await asyncio.to_thread(consumer.close)
        self.consumer = None

    # ---- rebalance callbacks (run inside consume(), on the loop thread) --------------------------
    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        tps = [(p.topic, p.partition) for p in partitions]
        self.pauses.assign(tps)
        self._newly_assigned.extend(tps)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        tps = [(p.topic, p.partition) for p in partitions]
        offsets = self.tracker.commit_due(tps)
        if offsets:
            try:
                consumer.commit(offsets=offsets, asynchronous=False)
            except KafkaException as exc:
                log.warning("commit on revoke failed", extra={"destination": self.name, "error": str(exc)})
        self._forget(tps)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._forget([(p.topic, p.partition) for p in partitions])

    def _forget(self, tps: list[TP]) -> None:
        for tp in tps:
            self.tracker.forget(tp)
            self._skip_from.pop(tp, None)
            timer = self._resume_timers.pop(tp, None)
            if timer is not None:
                timer.cancel()
        self.pauses.revoke(tps)

    # ---- consumption -----------------------------------------------------------------------------
    def _dispatch(self, message: Message) -> None:
        error = message.error()
        if error is not None:
            if error.code() != KafkaError._PARTITION_EOF:
                log.warning("consumer error", extra={"destination": self.name, "error": error.str()})
            return
        tp: TP = (message.topic(), message.partition())
        offset = message.offset()
        skip = self._skip_from.get(tp)
        if (skip is not None and offset >= skip) or tp not in self.pauses.assigned:
            return
        on_main = tp[0] == self.main_topic
        state = _MAIN_STATE if on_main else RetryState.from_headers(message.headers())
        if not on_main:
            wait_ms = state.due_at_ms - epoch_ms()
            if wait_ms > 5:
                self._defer(tp, offset, wait_ms / 1000)
                return
        self.tracker.register(tp, offset)
        self.buffered += 1
        key = message.key()
        previous: _Turn | None = None
        mine: _Turn | None = None
        if on_main and key is not None:  # per-key order on the main path
            previous = self._keys.get(key)
            mine = self._keys[key] = _Turn()
        task = self._loop.create_task(self._process(message, tp, offset, state, previous, mine))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _defer(self, tp: TP, offset: int, wait_s: float) -> None:
        """A retry record that is not due: pause its partition, seek back to it, resume when due."""
        assert self.consumer is not None
        self._skip_from[tp] = offset
        self.pauses.add_local(tp, "not_due")
        self._reconcile([tp])
        self.consumer.seek(TopicPartition(tp[0], tp[1], offset))
        old = self._resume_timers.pop(tp, None)
        if old is not None:
            old.cancel()
        self._resume_timers[tp] = asyncio.get_running_loop().call_later(wait_s, self._undefer, tp)

    def _undefer(self, tp: TP) -> None:
        self._resume_timers.pop(tp, None)
        self._skip_from.pop(tp, None)
        self.pauses.remove_local(tp, "not_due")
        self._reconcile([tp])

    def _reconcile(self, tps: list[TP] | None = None) -> None:
        consumer = self.consumer
        if consumer is None:
            return
        to_pause, to_resume = self.pauses.reconcile(tps)
        try:
            if to_pause:
                consumer.pause([TopicPartition(t, p) for t, p in to_pause])
            if to_resume:
                consumer.resume([TopicPartition(t, p) for t, p in to_resume])
        except KafkaException as exc:  # a partition revoked in between; the next assignment re-applies
            log.warning("pause/resume failed", extra={"destination": self.name, "error": str(exc)})
        metrics.PAUSED.labels(self.name).set(len(self.pauses.paused))

    def _commit(self) -> None:
        if self.consumer is None:
            return
        offsets = self.tracker.commit_due()
        if not offsets:
            return
        try:
            self.consumer.commit(offsets=offsets, asynchronous=True)
            self.tracker.mark_committed(offsets)
        except KafkaException as exc:
            log.warning("commit failed", extra={"destination": self.name, "error": str(exc)})

    # ---- one record ------------------------------------------------------------------------------
    async def _process(
        self, message: Message, tp: TP, offset: int, state: RetryState, previous: _Turn | None, mine: _Turn | None
    ) -> None:
        try:
            if previous is not None:
                await previous.wait()
            writes = await self._decide(message, state)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # A bug here must neither lose the record nor block its partition forever: dead-letter it.
            log.exception("unexpected error delivering a record", extra={"destination": self.name})
            self.stats["errors"] += 1
            writes = [self._dead_letter_raw(message, state, "connector_error", type(exc).__name__, str(exc))]
        finally:
            if mine is not None:
                mine.finish()
                key = message.key()
                if key is not None and self._keys.get(key) is mine:
                    del self._keys[key]
        # The record counts as done when the broker acknowledged its outcome records: _durable() is called
        # from the acknowledgement (no task has to wait for it).
        self._unacked += 1
        self.producer.write_then(
            writes, partial(self._durable, self._generation, tp, offset), partial(self._abandoned, self._generation)
        )

    def _durable(self, generation: int, tp: TP, offset: int) -> None:
        if generation != self._generation:
            return  # acknowledged after a crash-restart of this worker: the new run re-reads the record
        self._unacked -= 1
        self.tracker.done(tp, offset)
        self.buffered -= 1
        if self.buffered <= self.max_buffered // 2 and self.pauses.remove_global("backpressure"):
            self._reconcile()
        if self._unacked == 0 and self._all_acked is not None and not self._all_acked.done():
            self._all_acked.set_result(None)

    def _abandoned(self, generation: int) -> None:
        """Shutting down with the broker unreachable: not durable, not committed, re-delivered later."""
        if generation == self._generation:
            self._unacked -= 1
            if self._unacked == 0 and self._all_acked is not None and not self._all_acked.done():
                self._all_acked.set_result(None)

    async def _decide(self, message: Message, state: RetryState) -> list[OutRecord]:
        raw = message.value() or b""
        try:
            record = DeliveryRecord.from_json(raw)
        except ValidationError as exc:
            return [
                self._dead_letter_raw(
                    message, state, "invalid_record", "ValidationError", f"{exc.error_count()} validation error(s)"
                )
            ]
        ids = _Ids(record)
        event_id_var.set(ids.pair[1])
        if record.not_before is not None:
            now = _utcnow()
            if record.not_before > now:
                return self._park(message, record, state, now)
        if record.delivery_id.int in self._delivered:
            self.stats["skipped_duplicate"] += 1
            self._m_outcomes["skipped_duplicate"].inc()
            now = _utcnow()
            # On the trail too: a replay the destination already had shows why nothing was sent.
            return [
                self._history(record, state.attempts, None, None, "skipped_duplicate", None, now, ids),
                self._trail(record, "duplicate_dropped", now, ids=ids, detail={"reason": "already_delivered"}),
            ]

        attempt = state.attempts + 1
        outcome = await self._attempt(record, attempt)
        if outcome is None:  # breaker open and this message type falls back to SMS
            return self._fallback(record, state.attempts, "breaker_open", None, None, _utcnow())
        result, latency_ms, now = outcome
        at = now.isoformat()
        if result.ok:
            self._remember(record.delivery_id)
            self.stats["delivered"] += 1
            self._m_outcomes["delivered"].inc()
            return [
                OutRecord(topic, key, value)
                for topic, (key, value) in zip(
                    (self.deliveries_topic, self.trail_topic, self.trail_topic),
                    delivered_rows(
                        record, ids.pair, attempt=attempt, status=result.status, latency_ms=latency_ms, at=at
                    ),
                    strict=True,
                )
            ]
        attempt_hop = self._trail(
            record,
            "attempt",
            at,
            attempt=attempt,
            status=result.status,
            latency_ms=latency_ms,
            detail={"result": result.kind, "error_class": result.error_class},
            ids=ids,
        )
        if result.kind == "permanent":
            return [
                attempt_hop,
                *self._dead_letter(message, record, state, result, attempt, latency_ms, permanent=True, now=now),
            ]
        policy = self.topology.retry_policy(self.name, record.event_type)
        step = next_retry(policy, attempt, result.retry_after_s)
        if step is not None:
            return [
                attempt_hop,
                *self._retry(message, record, state, result, attempt, latency_ms, step.tier, step.delay_s, now),
            ]
        if fallback_applies(self.fallback_rule, record, "retries_exhausted"):
            return [attempt_hop, *self._fallback(record, attempt, "retries_exhausted", result, latency_ms, now)]
        return [
            attempt_hop,
            *self._dead_letter(message, record, state, result, attempt, latency_ms, permanent=False, now=now),
        ]

    async def _attempt(self, record: DeliveryRecord, attempt: int) -> tuple[AttemptResult, float, datetime] | None:
        may_fall_back = self.fallback_on_open and fallback_applies(self.fallback_rule, record, "breaker_open")
        slots = self._slots
        while True:
            permit = self.breaker.try_acquire()  # the common case (closed) without a coroutine
            if permit is None:
                if may_fall_back:
                    return None
                permit = await self.breaker.acquire()
            if not slots.try_take():
                await slots.take()
            try:
                if not self.breaker.is_current(permit):
                    self.breaker.release(permit)  # the state changed while we queued: ask again
                    continue
                try:
                    wait_s = self.bucket.reserve()  # TokenBucket.acquire() without its coroutine
                    if wait_s > 0:
                        await asyncio.sleep(wait_s)
                    timeout_s = self.timeout.current()
                    self.breaker.mark_started(permit)
                    started = time.perf_counter()
                    result = await self.sender.send(record, timeout_s, attempt)
                    latency_s = time.perf_counter() - started
                except BaseException:
                    self.breaker.release(permit)
                    raise
            finally:
                slots.give()
            self.breaker.record(permit, failed=result.counts_against_breaker)
            # No answer by the deadline (a refused connection fails fast and is not one).
            self.timeout.observe(latency_s, timed_out=result.status is None and latency_s >= timeout_s * 0.9)
            self.stats["attempts"] += 1
            self.last_check_at = now = _utcnow()
            self.last_check_ok = not result.counts_against_breaker
            self.last_status = result.status
            self._m_attempts[result.kind].inc()
            self._m_latency.observe(latency_s)
            return result, latency_s * 1000, now

    # ---- outcomes --------------------------------------------------------------------------------
    def _retry(
        self,
        message: Message,
        record: DeliveryRecord,
        state: RetryState,
        result: AttemptResult,
        attempt: int,
        latency_ms: float,
        tier: int,
        delay_s: float,
        now: datetime,
    ) -> list[OutRecord]:
        new_state = state.with_failure(
            tier=tier,
            due_at_ms=epoch_ms(now) + int(delay_s * 1000),
            status=result.status,
            error_class=result.error_class,
            origin=(message.topic(), message.partition(), message.offset()),
            attempts=attempt,
            now=now,
        )
        topic = self.retry_topics[tier - 1]
        self.stats["retry"] += 1
        self._m_outcomes["retry"].inc()
        metrics.RETRIES.labels(self.name, str(tier)).inc()
        return [
            OutRecord(
                topic,
                message.key(),
                message.value() or b"",
                strip_retry_headers(message.headers()) + new_state.to_headers(),
            ),
            self._history(record, attempt, result.status, latency_ms, "retry", result.error_message, now),
            self._trail(
                record,
                "retry_scheduled",
                now,
                attempt=attempt,
                status=result.status,
                detail={
                    "tier": tier,
                    "delay_s": round(delay_s, 3),
                    "reason": result.reason,
                    "retry_after_s": result.retry_after_s,
                },
            ),
        ]

    def _park(self, message: Message, record: DeliveryRecord, state: RetryState, now: datetime) -> list[OutRecord]:
        """A delayed message (not_before in the future) waits on a retry tier; no attempt is spent."""
        assert record.not_before is not None
        remaining = (record.not_before - now).total_seconds()
        step = parking_tier(self.topology.destinations[self.name].retry, remaining)
        new_state = replace(state, tier=step.tier, due_at_ms=epoch_ms(now) + int(step.delay_s * 1000), parked=True)
        self.stats["parked"] += 1
        return [
            OutRecord(
                self.retry_topics[step.tier - 1],
                message.key(),
                message.value() or b"",
                strip_retry_headers(message.headers()) + new_state.to_headers(),
            )
        ]

    def _dead_letter(
        self,
        message: Message,
        record: DeliveryRecord,
        state: RetryState,
        result: AttemptResult,
        attempt: int,
        latency_ms: float | None,
        *,
        permanent: bool,
        now: datetime,
    ) -> list[OutRecord]:
        reason = result.reason if permanent else "retries_exhausted"
        origin = state.origin(message.topic(), message.partition(), message.offset())
        info = DeadLetterInfo(
            stage="connectors",
            reason=reason,
            permanent=permanent,
            error_class=result.error_class or "Error",
            error_message=result.error_message or reason,
            original_topic=origin[0],
            original_partition=origin[1],
            original_offset=origin[2],
            failed_at=now,
            first_failed_at=state.first_failed_at or now,
            destination=self.name,
            event_id=str(record.event_id),
            delivery_id=str(record.delivery_id),
            event_type=record.event_type,
            attempts=attempt,
            last_status_code=result.status,
        )
        self.stats["dead_letter"] += 1
        metrics.OUTCOMES.labels(self.name, "dead_letter").inc()
        metrics.DEAD_LETTERS.labels(self.name, reason).inc()
        log.warning(
            "dead-lettered",
            extra={
                "destination": self.name,
                "reason": reason,
                "attempts": attempt,
                "delivery_id": str(record.delivery_id),
            },
        )
        return [
            OutRecord(
                self.topology.dead_letter_topic,
                message.key(),
                message.value() or b"",
                strip_retry_headers(message.headers()) + info.to_headers(),
            ),
            self._history(record, attempt, result.status, latency_ms, "dead_letter", result.error_message, now),
            self._trail(
                record,
                "dead_lettered",
                now,
                attempt=attempt,
                status=result.status,
                detail={"reason": reason, "permanent": permanent},
            ),
        ]

    def _dead_letter_raw(
        self, message: Message, state: RetryState, reason: str, error_class: str, error_message: str
    ) -> OutRecord:
        """A record that is not a DeliveryRecord at all (or a connector bug): dead-letter it as is."""
        now = _utcnow()
        origin = state.origin(message.topic(), message.partition(), message.offset())
        info = DeadLetterInfo(
            stage="connectors",
            reason=reason,
            permanent=True,
            error_class=error_class,
            error_message=mask_text(error_message),
            original_topic=origin[0],
            original_partition=origin[1],
            original_offset=origin[2],
            failed_at=now,
            first_failed_at=state.first_failed_at or now,
            destination=self.name,
            attempts=state.attempts,
        )
        self.stats["dead_letter"] += 1
        metrics.DEAD_LETTERS.labels(self.name, reason).inc()
        return OutRecord(
            self.topology.dead_letter_topic,
            message.key(),
            message.value() or b"",
            strip_retry_headers(message.headers()) + info.to_headers(),
        )

    def _fallback(
        self,
        record: DeliveryRecord,
        attempts: int,
        reason: str,
        result: AttemptResult | None,
        latency_ms: float | None,
        now: datetime,
    ) -> list[OutRecord]:
        rule = self.fallback_rule
        assert rule is not None
        sms = fallback_record(record, rule, self.sms_path, now)
        self.stats["fallback"] += 1
        metrics.OUTCOMES.labels(self.name, "fallback").inc()
        headers = [*sms.kafka_headers(), ("fallback_from", self.name.encode()), ("fallback_reason", reason.encode())]
        return [
            OutRecord(self.topology.delivery_topic(rule.destination), sms.entity_key.encode(), sms.to_json(), headers),
            self._history(
                record,
                attempts,
                result.status if result else None,
                latency_ms,
                "fallback",
                result.error_message if result else reason,
                now,
            ),
            self._trail(
                record,
                "fallback",
                now,
                attempt=attempts or None,
                detail={"to": rule.destination, "reason": reason, "fallback_delivery_id": str(sms.delivery_id)},
            ),
        ]

    def _history(
        self,
        record: DeliveryRecord,
        attempt: int,
        status: int | None,
        latency_ms: float | None,
        outcome: Outcome,
        error: str | None,
        now: datetime | str,
        ids: _Ids | None = None,
    ) -> OutRecord:
        key, value = deliveries_record(
            record,
            attempt=attempt,
            status=status,
            latency_ms=latency_ms,
            outcome=outcome,
            error=error,
            at=now,
            ids=ids.pair if ids else None,
        )
        return OutRecord(self.deliveries_topic, key, value)

    def _trail(
        self, record: DeliveryRecord, hop: str, now: datetime | str, *, ids: _Ids | None = None, **fields: Any
    ) -> OutRecord:
        key, value = trail_hop(record, hop, at=now, ids=ids.pair if ids else None, **fields)
        return OutRecord(self.trail_topic, key, value)

    def _remember(self, delivery_id: uuid.UUID) -> None:
        if self._delivered_cap <= 0:
            return
        self._delivered[delivery_id.int] = None
        if len(self._delivered) > self._delivered_cap:
            self._delivered.popitem(last=False)

    # ---- breaker and health ----------------------------------------------------------------------
    def _breaker_changed(self, old: State, new: State) -> None:
        metrics.BREAKER_STATE.labels(self.name).set(STATE_VALUE[new])
        log.warning("breaker %s -> %s", old, new, extra={"destination": self.name})
        if new == "open":
            metrics.BREAKER_OPENED.labels(self.name).inc()
            if not self.fallback_on_open and self.pauses.add_global("breaker"):
                self._reconcile()
        elif self.pauses.remove_global("breaker"):
            self._reconcile()
        if self.on_health_change is not None:
            self.on_health_change(self)

    def _update_gauges(self) -> None:
        metrics.IN_FLIGHT.labels(self.name).set(self.buffered)
        metrics.TIMEOUT.labels(self.name).set(self.timeout.current())
        metrics.PAUSED.labels(self.name).set(len(self.pauses.paused))

    def health_record(self) -> dict[str, Any]:
        """The `health` topic contract for key destination:<name>."""
        return {
            "destination": self.name,
            "breaker_state": self.breaker.state,
            "last_check_at": self.last_check_at.isoformat() if self.last_check_at else None,
            "last_check_ok": self.last_check_ok,
            "last_status": self.last_status,
            "updated_at": _utcnow().isoformat(),
        }

    def status(self) -> dict[str, Any]:
        return {
            **self.health_record(),
            "running": self.running,
            "breaker": self.breaker.snapshot(),
            "in_flight": self.buffered,
            "assigned_partitions": len(self.pauses.assigned),
            "paused_partitions": len(self.pauses.paused),
            "pause_reasons": sorted(self.pauses.global_reasons),
            "timeout_s": round(self.timeout.current(), 4),
            "concurrency": self.concurrency_limit,
            "rate_limit_per_s": self.bucket.rate,
            "stats": dict(self.stats),
        }
