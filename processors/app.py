"""The processors' Faust app: dedupe, priority-aware routing, dead-lettering, delayed messages,
the trail index and scheduled syncs, plus /v1/trail/{event_id}, /metrics and /health on the web port.

Delivery guarantee: at least once. Every output of the routers (deliveries, scheduled messages, trail
hops, the dedupe changelog) goes through a confluent-kafka producer (processors/output.py) that `App`
flushes together with Faust's own producer (the other tables' changelogs) before Faust commits source
offsets; dead-letter records are acknowledged before their batch is acked. A crash before the commit re-reads
the records: delivery ids are deterministic and dedupe recognises the very same record (see dedupe.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import sys
import time
import uuid
import zlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import faust
import orjson
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic
from faust.types import TP
from faust.web import Request, Response, View

from hub.admin import topic_ids
from hub.backlog import watermarks
from hub.delivery import DeliveryRecord
from hub.envelope import EventEnvelope
from hub.gc_tuning import tune_gc
from hub.kafka_config import admin_config
from hub.kafka_retry import retry_transient
from hub.masking import mask_text
from hub.metrics import render
from hub.topology import Topology, changelog_topic
from hub.trail import Hop
from processors import (
    changelog_catch_up,
    dedupe,
    faust_changelog_intake,
    faust_drain,
    faust_inline_consumer,
    faust_recovery_fix,
    metrics,
    state_store,
    table_follower,
    trail_index,
)
from processors.automations import feedback
from processors.automations.feedback import ScheduledMessage
from processors.daily_report import REPORT_STATE, run_due_report
from processors.dead_letter import DeadLetterWriter, Failed
from processors.due_index import DueIndex, pending
from processors.fetch_tuning import install_fetch_sizes
from processors.hole_filler import read_range
from processors.offset_guard import Hole, OffsetGuard
from processors.output import OutputBuilder, OutputProducer
from processors.priority import LEVELS, PriorityLanes, install_priority_fetch, resume_partition, topic_rank
from processors.routing import InvalidRecord, Router, TransformFailed, parse_record
from processors.settings import ProcessorSettings
from processors.syncs.runner import SyncRunner, is_due
from processors.syncs.watermarks import SyncState, SyncStateStore
from processors.table_follower import TableFollower

log = logging.getLogger("processors")

SERVICE = "processors"
YIELD_EVERY = 8  # a batch gives the event loop a turn every N events (see _route_batch)
TRAIL_LEVEL = 0  # the trail lane's one level (a PriorityLanes of its own, not one of events.p1..p5)
TRAIL_BATCH = 500  # trail records the indexer takes at a time
TRAIL_YIELD_EVERY = 32  # hops indexed between two turns of the event loop (a hop is far cheaper than an event)
ROUTER_STOP_WAIT = 10.0  # seconds a rebalance waits for the batch in flight to stop (_consumer_wait_empty)
# The changelog follower writes what it fetched (at most TICK_BUDGET_S each time) every FOLLOW_TICK_S
# while records come, every FOLLOW_IDLE_S once a turn found none: a 50 ms timer all the time doubled an
# idle worker's CPU (bench.processors_idle, 0.013 -> 0.025 of a core).
FOLLOW_TICK_S = 0.05
FOLLOW_IDLE_S = 0.5
FIRED_KEEP = timedelta(days=8)  # remember released delayed messages (re-scheduling the same id is ignored)


def crc32_partitioner(key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]) -> int:
    """librdkafka's default (consistent_random): every confluent-kafka producer in the hub and this
    Faust app put the same key on the same partition (trail lookups by key rely on it)."""
    if key is None:
        return random.choice(list(available or all_partitions))
    return all_partitions[zlib.crc32(key) % len(all_partitions)]


class App(faust.App):
    """faust.App whose producer flush (Faust calls it before every offset commit, and on rebalance)
    also waits for the routers' confluent-kafka output producer: outputs are durable before the
    offsets of their source records move (at least once). The priority topics' records skip Faust's
    conductor and streams (processors/faust_drain.py) and their commit offsets are the router's
    settled positions kept by the offset guard (processors/offset_guard.py), which learns where each
    partition starts right after the post-rebalance seek (`before_streams_resume`)."""

    outputs: OutputProducer | None = None
    offset_guard: OffsetGuard | None = None
    follower: TableFollower | None = None  # warm copies of the partitions not active here
    lane_of: Mapping[str, tuple[PriorityLanes, int]] = {}  # laned topic -> (its lanes, level there)
    guarded_topics: frozenset[str] = frozenset()
    # One per lane consumer (the router, the trail indexer): clear while it is inside a batch.
    idle: tuple[asyncio.Event, ...] = ()

    def all_lanes(self) -> list[PriorityLanes]:
        return list({id(lanes): lanes for lanes, _ in self.lane_of.values()}.values())

    def _new_consumer(self) -> Any:
        consumer: Any = super()._new_consumer()
        if self.lane_of:
            faust_drain.install(consumer, self.lane_of)
        faust_offsets = consumer._filter_committable_offsets
        faust_pending = consumer._filter_tps_with_pending_acks
        committed = consumer._committed_offset
        guarded = self.guarded_topics

        def pending(topics: Any = None) -> list[Any]:
            tps = list(faust_pending(topics))
            if self.offset_guard is not None:
                settled: list[Any] = list(self.offset_guard.settled())
                tps.extend(tp for tp in settled if topics is None or tp in topics or tp.topic in topics)
            return tps

        def committable(tps: Any) -> dict[Any, int]:
            tps = list(tps)
            offsets: dict[Any, int] = faust_offsets([tp for tp in tps if tp.topic not in guarded])
            if self.offset_guard is not None:
                settled = self.offset_guard.settled()
                for tp in tps:
                    offset = settled.get(tp)
                    if offset is not None and tp.topic in guarded and (committed[tp] is None or offset > committed[tp]):
                        offsets[tp] = offset
            return offsets

        consumer._filter_tps_with_pending_acks = pending
        consumer._filter_committable_offsets = committable
        return consumer

    async def _consumer_wait_empty(self, consumer: Any, logger: Any) -> None:
        """Rebalance (flow already suspended): drop the fetched records, let the batches in flight stop
        and settle, then Faust's own wait and commit."""
        for lanes in self.all_lanes():
            lanes.clear()
        if self.idle:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*(idle.wait() for idle in self.idle)), ROUTER_STOP_WAIT)
        await super()._consumer_wait_empty(consumer, logger)

    def on_rebalance_start(self) -> None:
        super().on_rebalance_start()
        if self.follower is not None:
            self.follower.pause()  # before Faust's recovery reads the stores' offsets

    async def before_streams_resume(self, assignment: Any) -> None:
        if self.follower is not None:  # the recovery is over: follow what is not active here
            self.follower.follow((tp.topic, tp.partition) for tp in self.assignor.assigned_actives())
        if self.offset_guard is None:
            return
        consumer: Any = self.consumer
        tps = [tp for tp in assignment if tp.topic in self.guarded_topics]
        starts = {tp: consumer._read_offset.get(tp) for tp in tps}  # the committed offsets, just seeked to
        unknown = [tp for tp, offset in starts.items() if offset is None]
        if unknown:
            try:
                earliest = await consumer.earliest_offsets(*unknown)  # no commit yet: the log start
            except Exception as exc:  # unguarded is Faust's behaviour; do not fail the rebalance
                log.warning("offset guard: cannot read the log start of %d partitions: %r", len(unknown), exc)
                earliest = {}
            for tp in unknown:
                starts[tp] = earliest.get(tp)
        for lanes in self.all_lanes():
            lanes.clear()  # fetched before the seek: read again from the starts below
        self.offset_guard.reset({tp: offset for tp, offset in starts.items() if offset is not None})

    def _new_producer(self) -> Any:
        producer = super()._new_producer()
        flush_faust = producer.flush

        async def flush() -> None:
            await flush_faust()
            if self.outputs is not None:
                await self.outputs.flush()

        producer.flush = flush  # type: ignore[method-assign]
        return producer


class Processors:
    """One worker: build with settings (and optionally a topology), then `run()` or `worker()`."""

    TABLES = ("dedupe", "scheduled", "trail-index")

    def __init__(self, settings: ProcessorSettings, topology: Topology | None = None):
        self.settings = settings
        self.topology = topology or settings.topology()
        self.router = Router(self.topology)
        self.window = settings.dedupe_window.total_seconds()
        self.app_id = self.topology.router_group  # its lag is "pending per priority" in /status and /ops
        self.scheduled_topic = self.topology.system_topic("scheduled")
        self.trail_topic = self.topology.system_topic("trail")
        # getmany hands out aiokafka TopicPartitions; Faust's active-partition set asserts its own TP.
        self.lanes = PriorityLanes(
            high_water=settings.stream_buffer,
            on_full=lambda tp: self.app.consumer.on_buffer_full(TP(tp.topic, tp.partition)),
            on_drop=lambda tp: resume_partition(self.app.consumer, TP(tp.topic, tp.partition)),
        )
        self.trail_lane = PriorityLanes(
            levels=(TRAIL_LEVEL,),
            high_water=settings.stream_buffer,
            on_full=self.lanes.on_full,
            on_drop=self.lanes.on_drop,
        )
        self.indexer_idle = asyncio.Event()
        self.indexer_idle.set()
        self._counters = {level: _LevelMetrics(level) for level in LEVELS}
        faust_recovery_fix.install()  # before the app exists: Faust's post-rebalance race (see module)
        faust_changelog_intake.install()  # before the app exists: changelog records in chunks (see module)
        level_of = {self.topology.priority_topic(level): level for level in LEVELS}  # events.pN -> N
        install_priority_fetch(topic_rank(level_of))
        install_fetch_sizes(settings.fetch_min_bytes, settings.fetch_max_wait_ms, settings.fetch_idle_wait_ms)
        faust_inline_consumer.install(inline=not settings.consumer_thread)
        self.dlq = DeadLetterWriter(settings.kafka_bootstrap_servers, self.topology.dead_letter_topic)
        self.sync_states = SyncStateStore(self.topology, settings.kafka_bootstrap_servers)
        self.sync_runner = SyncRunner(
            self.topology,
            settings.kafka_bootstrap_servers,
            settings.source_url,
            http_timeout=settings.sync_http_timeout,
            tokens=settings.source_bearer_tokens(),
            state_store=self.sync_states,
        )
        self.sync_status: dict[str, Any] = {}
        self.produce_errors = 0
        self.build = OutputBuilder(self.topology, SERVICE)
        self.outputs = OutputProducer(
            settings.kafka_bootstrap_servers,
            "processors",
            self._on_produce_error,
            linger_ms=settings.output_linger_ms,
            urgent_linger_ms=settings.output_urgent_linger_ms,
            never_urgent=(self.trail_topic,),  # a hop waits 50 ms at most; nobody waits on it
            **{"compression.type": settings.output_compression},
        )
        self.app = self._make_app()
        self.app.outputs = self.outputs
        self.offset_guard = OffsetGuard()
        self.app.offset_guard = self.offset_guard
        self.router_idle = asyncio.Event()
        self.router_idle.set()
        lane_of = {topic: (self.lanes, level) for topic, level in level_of.items()}
        if settings.trail_index_enabled:
            # The trail's records skip Faust's conductor and streams too (_index_forever): their
            # own lane, one partition per batch, back-pressure per partition like the priority lanes.
            lane_of[self.trail_topic] = (self.trail_lane, TRAIL_LEVEL)
        self.app.lane_of = lane_of
        self.app.idle = (self.router_idle, self.indexer_idle)
        self.app.guarded_topics = frozenset(lane_of)
        metrics.precreate(self.app.guarded_topics)
        self.dedupe_changelog = changelog_topic(self.app_id, "dedupe")
        self.trail_changelog = changelog_topic(self.app_id, "trail-index")
        event_partitions = self._partitions(self.topology.priorities[0].partitions)
        self.dedupe_table = self.app.Table(
            "dedupe", partitions=event_partitions, help="(source, idempotency key) -> first record seen"
        )
        self.schedule_table = self.app.Table(
            "scheduled",
            partitions=self.topology.system_topics.scheduled.partitions,
            help="delayed messages by delivery id",
        )
        self.due_index = DueIndex()  # the table's pending entries (processors/due_index.py)
        self.trail_table = self.app.Table(
            "trail-index",
            partitions=self.topology.system_topics.trail.partitions,
            key_type=bytes,
            help="trail hops by <event id>/<trail partition>/<trail offset>",
        )
        self._define_routers()
        self._define_scheduler()
        if settings.trail_index_enabled:
            self._define_trail_index()
        self._define_timers()
        self._define_pages()

    # ---- setup ----------------------------------------------------------------------------------
    def _partitions(self, expected: int) -> int:
        counts = {p.partitions for p in self.topology.priorities}
        if len(counts) != 1:
            raise ValueError(
                f"events.p1..p5 must have the same partition count (dedupe is co-partitioned), got {sorted(counts)}"
            )
        return expected

    def _make_app(self) -> App:
        s = self.settings
        profile = self.topology.cluster_profiles[s.cluster_profile]
        brokers = [f"kafka://{host.strip()}" for host in s.kafka_bootstrap_servers.split(",") if host.strip()]
        s.worker_data_dir.mkdir(parents=True, exist_ok=True)
        return App(
            self.app_id,
            broker=brokers,
            store=state_store.URL if s.table_store == "rocksdb" else "memory://",
            datadir=str(s.worker_data_dir),
            autodiscover=False,
            key_serializer="raw",
            value_serializer="raw",
            web_enabled=True,
            web_bind=s.web_host,
            web_host=s.web_host,
            web_port=s.web_port,
            topic_replication_factor=profile.replication_factor,
            topic_partitions=self.topology.priorities[0].partitions,
            producer_partitioner=crc32_partitioner,
            producer_acks=-1,
            producer_max_request_size=4 * 1_048_576,
            producer_linger=0.002,
            stream_buffer_maxsize=s.stream_buffer,
            broker_commit_interval=s.commit_interval,
            broker_max_poll_records=s.max_poll_records,
            # Faust's own standby replicas only in "faust" mode; the follower keeps the copies otherwise.
            table_standby_replicas=s.standby_replicas if s.standby_mode == "faust" else 0,
            consumer_auto_offset_reset="earliest",
        )

    def ensure_topics(self, timeout: float = 30.0) -> None:
        """Create the tables' changelog topics with compact+delete retention (Faust would create
        them compact-only: state would then never expire on the broker)."""
        rf = self.topology.cluster_profiles[self.settings.cluster_profile].replication_factor
        retention = {
            "dedupe": self.settings.dedupe_window + timedelta(days=1),
            "scheduled": FIRED_KEEP + timedelta(days=1),
            "trail-index": self.settings.trail_retention + timedelta(days=1),
        }
        partitions = {
            "dedupe": self.topology.priorities[0].partitions,
            "scheduled": self.topology.system_topics.scheduled.partitions,
            "trail-index": self.topology.system_topics.trail.partitions,
        }
        admin = AdminClient(admin_config(self.settings.kafka_bootstrap_servers))
        topics = [
            NewTopic(
                changelog_topic(self.app_id, name),
                num_partitions=partitions[name],
                replication_factor=rf,
                config={
                    "cleanup.policy": "compact,delete",
                    "retention.ms": str(int(retention[name].total_seconds() * 1000)),
                },
            )
            for name in self.TABLES
        ]
        for name, future in admin.create_topics(topics, request_timeout=timeout).items():
            try:
                future.result(timeout=timeout)
            except KafkaException as exc:
                if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
                    raise RuntimeError(f"cannot create {name}: {exc.args[0].str()}") from None
        # Faust's assignor ignores topics missing from metadata: a changelog created a moment ago
        # would not be assigned (tables never recovered). Wait until every partition has a leader.
        names = {t.topic for t in topics}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            metadata = admin.list_topics(timeout=timeout)
            if all(
                name in metadata.topics
                and metadata.topics[name].partitions
                and all(p.leader >= 0 for p in metadata.topics[name].partitions.values())
                for name in names
            ):
                return
            time.sleep(0.2)
        raise RuntimeError(f"changelog topics {sorted(names)} have no leaders after {timeout}s")

    def tables(self) -> dict[str, Any]:
        return {"dedupe": self.dedupe_table, "scheduled": self.schedule_table, "trail-index": self.trail_table}

    def check_local_state(self, timeout: float = 30.0) -> None:
        """Before Faust starts: keep each table's database (and the changelog offsets it holds, where
        recovery starts reading) only if it was written from this hub's changelog topic as it is now;
        otherwise empty it, and the whole changelog is read, as on a new machine."""
        if self.settings.table_store != "rocksdb":
            return
        bootstrap = self.settings.kafka_bootstrap_servers
        topics = {name: changelog_topic(self.app_id, name) for name in self.TABLES}
        ids = retry_transient(lambda: topic_ids(bootstrap, list(topics.values()), timeout), timeout)
        for name, table in self.tables().items():
            store = state_store.mapping(table)
            assert isinstance(store, state_store.RocksMapping)
            topic = topics[name]
            source = f"{topic}:{ids[topic]}"
            marks: dict[int, tuple[int, int]] = {}  # they matter only for a database written from this topic
            if store.source == source:
                marks = retry_transient(functools.partial(watermarks, bootstrap, topic, timeout), timeout)
            reason = state_store.stale_reason(store, source, marks)
            if reason is not None:
                if next(iter(store), None) is not None or store.persisted_offsets():
                    log.warning("table %s: local state dropped, reading the whole changelog (%s)", name, reason)
                store.reset()
                store.source = source
            else:
                log.info("table %s: local state kept, offsets %s", name, store.persisted_offsets())

    def changelogs(self) -> dict[str, changelog_catch_up.Changelog]:
        """The tables whose changelogs are read in bulk (catch-up, follower): those on disk with JSON
        values and raw or JSON keys (all three here)."""
        if self.settings.table_store != "rocksdb":
            return {}
        tables = {}
        for name, table in self.tables().items():
            topic = table.changelog_topic
            if topic.value_serializer != "json" or topic.key_serializer not in ("raw", "json"):
                log.warning("table %s: changelog codecs not supported in bulk; Faust reads it", name)
                continue
            tables[name] = changelog_catch_up.Changelog(table.data, topic.get_topic_name(), topic.key_serializer)
        return tables

    def catch_up_tables(self, timeout: float = 30.0) -> dict[str, int]:
        """After check_local_state, before Faust starts: each table's changelog up to its current end,
        in bulk (processors/changelog_catch_up.py); changelog records read, by table."""
        if not self.settings.changelog_catch_up:
            return {}
        return changelog_catch_up.catch_up(self.settings.kafka_bootstrap_servers, self.changelogs(), timeout)

    def _follows_tables(self) -> bool:
        """This worker keeps its standby copies with the changelog follower."""
        s = self.settings
        return s.table_store == "rocksdb" and s.standby_replicas >= 1 and s.standby_mode == "follower"

    def start_follower(self) -> TableFollower | None:
        """The changelog follower (processors/table_follower.py), when this worker keeps standby copies
        that way; it starts following after the first rebalance's recovery."""
        s = self.settings
        if not self._follows_tables():
            return None
        tables = self.changelogs()
        if not s.trail_index_enabled:  # never active for the trail here: a copy nobody would read
            tables.pop("trail-index", None)
        follower = table_follower.TableFollower(s.kafka_bootstrap_servers, tables)
        self.app.follower = follower
        return follower

    # ---- producing ------------------------------------------------------------------------------
    def _on_produce_error(self, exc: BaseException) -> None:
        # The offsets of earlier batches may already be committed: crash so nothing is silently lost
        # going forward; the supervisor restarts the worker (records after the last commit replay).
        self.produce_errors += 1
        metrics.PRODUCE_ERRORS.labels("output").inc()
        log.error("%s", exc)
        self.app._crash(exc)

    def _hop(self, event_id: Any, hop: Hop, **fields: Any) -> None:
        self.outputs.produce_all([self.build.hop(event_id, hop, **fields)])

    def _send_delivery(self, delivery: DeliveryRecord) -> None:
        self.outputs.produce_all([self.build.delivery(delivery)])
        self._delivery_counter(delivery.destination).inc()

    @functools.cache  # noqa: B019 (one Processors per process; a handful of destinations)
    def _delivery_counter(self, destination: str) -> Any:
        return metrics.DELIVERIES.labels(destination)

    # ---- routing --------------------------------------------------------------------------------
    def _define_routers(self) -> None:
        for level in LEVELS:
            self._subscribe_laned(self.topology.priority_topic(level))
        self.app.task(self._route_forever)

    def _subscribe_laned(self, topic: str) -> None:
        """Subscribe `topic` through Faust (assignment, the tables co-partitioned with it, seeks,
        commits) with its records going to a lane, not to a stream (processors/faust_drain.py): no
        agent, no acks (the offset guard's settled positions are committed instead)."""
        self.app.topics.add(
            self.app.topic(
                topic, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw", acks=False
            )
        )

    async def _follow_forever(self) -> None:
        """The changelog follower's turns (processors/table_follower.py), sooner while records come."""
        while True:
            follower = self.app.follower
            written = follower.tick() if follower is not None else 0
            if written:
                metrics.FOLLOWED.inc(written)
            await asyncio.sleep(FOLLOW_TICK_S if written else FOLLOW_IDLE_S)

    async def _route_forever(self) -> None:
        """The one router of this worker: the next batch always comes from the most urgent lane."""
        await self._drain_lanes(self.lanes, self.settings.batch_size, self._route_batch, self.router_idle, "router")

    async def _drain_lanes(
        self,
        lanes: PriorityLanes,
        batch_size: int,
        handle: Callable[[int, list[Any]], Awaitable[None]],
        idle: asyncio.Event,
        name: str,
    ) -> None:
        """Hand `lanes`' batches to `handle` one at a time, forever; `idle` is clear while one runs
        (a rebalance waits for it)."""
        flow, app = self.app.flow_control, self.app
        while True:
            await flow.acquire()  # suspended while a rebalance and table recovery run
            taken = lanes.take(batch_size)
            if taken is None:
                await lanes.wait()
                continue
            idle.clear()
            try:
                await handle(*taken)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # not settled: crash, the records are read again after the restart
                log.exception("%s stopped", name)
                app._crash(exc)
                raise
            finally:
                idle.set()

    async def _route_batch(self, level: int, records: Sequence[Any]) -> None:
        """Route one batch in order. Every YIELD_EVERY records it lets the event loop run (the fetch
        loop hands newly fetched records to the lanes) and then stops early when a rebalance began
        (the rest is read again from the committed offsets) or gives the rest back to its lane when a
        more urgent record arrived. What was routed is settled (committable) once its dead letters
        are written. The metrics of what it routed are added up once, at its end."""
        if records and records[0].timestamp > 0:  # milliseconds (aiokafka's ConsumerRecord)
            metrics.DISPATCH_LATENCY.labels(str(level)).observe(max(0.0, time.time() - records[0].timestamp / 1000))
        now = datetime.now(UTC)
        failures: list[Failed] = []
        touched: set[Any] = set()
        try:
            await self._route_records(level, records, now, failures, touched)
        finally:
            metrics.NOTES.flush()
        self.outputs.poll()
        if failures:
            await self.dlq.write(failures, now)
        # Also after a rebalance began: what was routed is durable now, and Faust commits it for the
        # revoked partitions (it waits for this batch, App._consumer_wait_empty). After the guard's
        # reset the positions are the new starts, so settling changes nothing.
        self.offset_guard.settle(touched)

    async def _route_records(
        self, level: int, records: Sequence[Any], now: datetime, failures: list[Failed], touched: set[Any]
    ) -> None:
        lanes, flow, guard = self.lanes, self.app.flow_control, self.offset_guard
        generation = lanes.generation
        tp = lane_partition(records)
        for index, message in enumerate(records):
            if index and index % YIELD_EVERY == 0:
                await asyncio.sleep(0)
                if lanes.generation != generation or not flow.is_active():
                    break
                if level > 1 and lanes.higher_pending(level):
                    lanes.give_back(level, records[index:])
                    metrics.PREEMPTIONS.labels(str(level)).inc()
                    break
                now = datetime.now(UTC)
            offset = message.offset
            if guard.behind(tp, offset):
                continue  # routed since the last rebalance; Faust fetched it again
            hole = guard.check(tp, offset)
            if hole is not None:  # records before this one were lost inside the worker: route them first
                await self._fill(level, hole, now, failures)
                if lanes.generation != generation:
                    break
            self._route_or_dead_letter(level, message, now, failures)
            guard.routed(tp, offset)
            touched.add(tp)

    def _route_or_dead_letter(self, level: int, message: Any, now: datetime, failures: list[Failed]) -> None:
        try:
            failed = self._route_one(level, message, now)
        except Exception as exc:  # a bug must not stop the partition: dead-letter and go on
            log.exception("unexpected error routing a record")
            metrics.EVENTS.labels(str(level), "error").inc()
            failed = self._failed(message, "processing_error", exc, permanent=False)
        if failed is not None:
            failures.append(failed)

    async def _fill(self, level: int, hole: Hole, now: datetime, failures: list[Failed]) -> None:
        """Route the records of `hole` read straight from Kafka (processors/offset_guard.py). Only the
        router task calls it, one batch at a time, so a partition is never filled twice at once."""
        records = await self._read_hole(hole)
        for index, record in enumerate(records):
            if index % YIELD_EVERY == 0:
                await asyncio.sleep(0)  # a big hole must not hold up more urgent levels
            self._route_or_dead_letter(level, record, now, failures)
        self.offset_guard.filled(hole)

    async def _read_hole(self, hole: Hole) -> list[Any]:
        """The records of a hole the offset guard found (router and trail indexer alike)."""
        tp: Any = hole.tp
        metrics.OFFSET_HOLES.labels(tp.topic).inc()
        log.warning(
            "records %s[%s] offsets %d-%d were skipped inside the worker: reading them from Kafka",
            tp.topic,
            tp.partition,
            hole.expected,
            hole.got - 1,
        )
        try:
            records = await asyncio.to_thread(
                read_range, self.settings.kafka_bootstrap_servers, tp.topic, tp.partition, hole.expected, hole.got
            )
        except Exception as exc:
            # Commits stay capped below the hole: crash, and the next owner of the partition reads it again.
            log.error("cannot read %s[%s] %d-%d: %r", tp.topic, tp.partition, hole.expected, hole.got - 1, exc)
            self.app._crash(exc)
            raise
        if len(records) < hole.size:
            log.error(
                "offsets %s[%s] %d-%d: %d of %d do not exist in the log (transactional producer or "
                "compaction on a guarded topic?)",
                tp.topic,
                tp.partition,
                hole.expected,
                hole.got - 1,
                hole.size - len(records),
                hole.size,
            )
        return records

    def _failed(
        self,
        message: Any,
        reason: str,
        exc: BaseException,
        *,
        permanent: bool = True,
        event_id: str | None = None,
        event_type: str | None = None,
        destination: str | None = None,
    ) -> Failed:
        return Failed(
            key=message.key,
            value=message.value,
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            reason=reason,
            error_class=type(exc).__name__,
            error_message=str(exc)[:500],
            permanent=permanent,
            event_id=event_id,
            event_type=event_type,
            destination=destination,
        )

    def _route_one(self, level: int, message: Any, now: datetime) -> Failed | None:
        counters = self._counters[level]
        try:
            envelope = self.router_parse(message.value, message.headers)
        except InvalidRecord as exc:
            counters.invalid.inc()
            if exc.event_id and _is_uuid(exc.event_id):
                # The sender had its 202: the hop says which rule failed (masked; the data is not shown).
                said = mask_text(str(exc))[:300]
                self._hop(
                    exc.event_id, "invalid", detail={"reason": exc.reason, "topic": message.topic, "problem": said}
                )
            return self._failed(message, exc.reason, exc, event_id=exc.event_id, event_type=exc.event_type)

        ref = dedupe.RecordRef(message.topic, message.partition, message.offset)
        key = dedupe.dedupe_key(envelope.source, envelope.idempotency_key)
        store = state_store.mapping(self.dedupe_table)
        verdict = dedupe.judge(store.get(key), ref, time.time(), self.window)
        fingerprint = dedupe.fingerprint(envelope.type, envelope.data)
        if verdict is dedupe.Verdict.DUPLICATE:
            first = store.get(key) or {}
            seen = first.get("at")  # epoch seconds in the dedupe entry; ISO time in the trail, as every hop's
            detail: dict[str, Any] = {
                "first_seen_at": datetime.fromtimestamp(float(seen), UTC).isoformat() if seen is not None else None,
                "topic": message.topic,
            }
            if dedupe.conflicts(first, fingerprint):
                # The key was reused for other data: dropped all the same (the first body wins), but
                # counted, trailed and logged, so the sender can be told.
                counters.duplicate_conflict.inc()
                detail["payload_differs"] = True
                log.warning(
                    "idempotency key reused with a different payload: the later event was dropped",
                    extra={"event_id": envelope.event_id_str, "source": envelope.source, "event_type": envelope.type},
                )
            else:
                counters.duplicate.inc()
            self._hop(envelope.event_id, "duplicate_dropped", detail=detail)
            return None

        try:
            outcome = self.router.route(envelope, now)
        except TransformFailed as exc:
            counters.transform_failed.inc()
            self._hop(
                envelope.event_id,
                "dead_lettered",
                destination=exc.destination,
                detail={"reason": "transform_failed", "error_class": type(exc.cause).__name__},
            )
            return self._failed(
                message,
                "transform_failed",
                exc.cause,
                event_id=envelope.event_id_str,
                event_type=envelope.type,
                destination=exc.destination,
            )

        outputs = self.outputs
        outputs.produce_all(
            self.build.routed(envelope, outcome, level=level, redelivery=verdict is dedupe.Verdict.REDELIVERY),
            urgent=level <= self.settings.output_urgent_max_priority,
        )
        notes = metrics.NOTES
        for delivery in outcome.deliveries:
            notes.inc(self._delivery_counter(delivery.destination))
        value = dedupe.entry(ref, time.time(), envelope.event_id_str, fingerprint)
        # The changelog record exactly as Faust's json codec writes it (the table's recovery and standby
        # replicas read it back with that codec), through the output producer: flushed before commit.
        # The database keeps the same JSON (state_store.RocksMapping), encoded once.
        encoded = orjson.dumps(value)
        if isinstance(store, state_store.RocksMapping):
            store.put_encoded(key, encoded)
        else:
            store[key] = value
        outputs.produce_changelog(
            self.dedupe_changelog, orjson.dumps(key), encoded, message.partition, self.dedupe_table
        )
        notes.inc(counters.routed)
        if message.timestamp > 0:  # milliseconds
            notes.observe(counters.latency, max(0.0, time.time() - message.timestamp / 1000))
        return None

    def router_parse(self, value: bytes | None, headers: Any) -> EventEnvelope:
        return parse_record(value, self.topology, headers)

    # ---- delayed messages -----------------------------------------------------------------------
    def _define_scheduler(self) -> None:
        topic = self.app.topic(
            self.scheduled_topic, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
        )

        async def park(stream: Any) -> None:
            async for event in stream.events():
                message = event.message
                try:
                    scheduled = ScheduledMessage.from_json(message.value)
                except Exception as exc:
                    await self.dlq.write([self._failed(message, "invalid_scheduled_message", exc)], datetime.now(UTC))
                    continue
                key = str(scheduled.delivery.delivery_id)
                store = self.schedule_table.data
                existing = store.get(key)
                if existing and existing.get("state") == "fired":
                    continue  # already released once (re-sent completion, replay after a crash)
                value = {
                    "state": "pending",
                    "due_at": scheduled.due_at.isoformat(),
                    "partition": message.partition,
                    "at": time.time(),
                    "delivery": scheduled.delivery.model_dump(mode="json", exclude_none=True),
                }
                store[key] = value
                self.schedule_table.send_changelog(message.partition, key, value)
                self.due_index.add(key, value)

        self.app.agent(topic, name="scheduler")(park)

    async def release_due(self) -> int:
        """Send every due delayed message of the partitions this worker owns; mark it fired."""
        if self.app.rebalancing:
            return 0
        owned = {tp.partition for tp in self.app.consumer.assignment() if tp.topic == self.scheduled_topic}
        now = datetime.now(UTC)
        store = state_store.mapping(self.schedule_table)
        if self.due_index.generation != self.lanes.generation:  # a rebalance since it was built
            await self.due_index.rebuild(store, self.lanes.generation)
        due, waiting = self.due_index.split(now, owned)
        quiet_until = feedback.quiet_until(now, self.topology.automations.feedback_request)
        sent: list[tuple[str, dict[str, Any]]] = []
        for key in due:
            current = store.get(key)  # the entry itself decides: the index only points at it
            if not pending(current):
                self.due_index.discard(key)
                continue
            if datetime.fromisoformat(current["due_at"]) > now:  # parked again, for later
                self.due_index.add(key, current)
                waiting += 1
                continue
            if quiet_until is not None and current["delivery"].get("message_type") == feedback.MESSAGE_TYPE:
                # Due, but it is night now (a worker that was down, a release that ran late): the
                # feedback request waits for the morning, whatever its due time said.
                self.due_index.add(key, current)
                waiting += 1
                continue
            self._send_delivery(DeliveryRecord.model_validate(current["delivery"]))
            sent.append((key, current))
        metrics.SCHEDULED_PENDING.set(waiting)
        if not sent:
            return 0
        # Marked fired only once the broker has the deliveries: a crash in between sends them again
        # (same delivery ids: destinations see one message), it never loses one.
        generation = self.lanes.generation
        await self.outputs.flush()
        if self.lanes.generation != generation:
            return 0  # a rebalance meanwhile: the partitions' owner decides now (it sees them pending)
        released = 0
        for key, current in sent:
            fired = {**current, "state": "fired", "fired_at": now.isoformat(), "at": time.time()}
            store[key] = fired
            self.schedule_table.send_changelog(current["partition"], key, fired)
            self.due_index.discard(key)
            released += 1
            metrics.SCHEDULED_RELEASED.inc()
        return released

    # ---- trail index ----------------------------------------------------------------------------
    def _define_trail_index(self) -> None:
        self._subscribe_laned(self.trail_topic)
        self.app.task(self._index_forever)

    async def _index_forever(self) -> None:
        """The trail indexer: its own task beside the router, so the event loop takes turns between
        them (each yields every few records): a p5 backlog cannot starve the trail, and the trail
        cannot hold a p1 event back for more than TRAIL_YIELD_EVERY hops."""

        async def index(_level: int, records: list[Any]) -> None:
            await self.index_batch(records)

        await self._drain_lanes(self.trail_lane, TRAIL_BATCH, index, self.indexer_idle, "trail indexer")

    async def index_batch(self, records: Sequence[Any]) -> None:
        """Index a batch of trail records (one partition's, in order): each hop is one table entry and
        one changelog record (processors/trail_index.py); then the batch's offsets are settled
        (committable)."""
        lane, flow, guard = self.trail_lane, self.app.flow_control, self.offset_guard
        generation = lane.generation
        store = state_store.mapping(self.trail_table)
        touched: set[Any] = set()
        tp = lane_partition(records)
        for index, message in enumerate(records):
            if index and index % TRAIL_YIELD_EVERY == 0:
                await asyncio.sleep(0)
                if lane.generation != generation or not flow.is_active():
                    break  # what was indexed so far is settled below
            offset = message.offset
            if guard.behind(tp, offset):
                continue  # indexed since the last rebalance; Faust fetched it again
            hole = guard.check(tp, offset)
            if hole is not None:
                for record in await self._read_hole(hole):
                    self._index_hop(record, store)
                guard.filled(hole)
                if lane.generation != generation:
                    break
            self._index_hop(message, store)
            guard.routed(tp, offset)
            touched.add(tp)
        self.outputs.poll()
        guard.settle(touched)

    def _index_hop(self, message: Any, store: Any) -> None:
        try:
            event_id, entry = trail_index.index_entry(message.value)
        except Exception:
            log.warning("unreadable trail record at %s[%s]@%s", message.topic, message.partition, message.offset)
            return
        key = trail_index.hop_key(event_id, message.partition, message.offset)
        # The changelog record exactly as Faust writes it for this table (raw key, json value; a unit
        # test checks), through the output producer, like dedupe's.
        value = orjson.dumps(entry)
        trail_index.put(store, key, entry, value)
        self.outputs.produce_changelog(self.trail_changelog, key, value, message.partition, self.trail_table)
        metrics.TRAIL_INDEXED.inc()

    def trail(self, event_id: str) -> list[dict[str, Any]] | None:
        hops = trail_index.event_hops(state_store.mapping(self.trail_table), event_id)
        if not hops:
            return None
        return trail_index.visible_hops(hops, datetime.now(UTC), self.settings.trail_retention)

    # ---- timers ---------------------------------------------------------------------------------
    def _define_timers(self) -> None:
        app, settings = self.app, self.settings

        async def release() -> None:
            await self.release_due()

        async def gauges() -> None:
            for level in LEVELS:
                metrics.PENDING.labels(str(level)).set(self.lanes.pending(level))
            metrics.TRAIL_PENDING.set(self.trail_lane.pending(TRAIL_LEVEL))

        async def sweep() -> None:
            await self.sweep_state()

        async def write_tables() -> None:
            # The table writes held for the next batch (state_store.RocksMapping), at least every
            # second: what a killed worker loses, and reads again from the changelogs at restart.
            for table in self.tables().values():
                store = state_store.mapping(table)
                if isinstance(store, state_store.RocksMapping):
                    store.write_pending()

        run_syncs = settings.sync_enabled and bool(self.topology.syncs)

        async def syncs() -> None:
            states = await self.load_sync_states()
            # Exactly one worker of the group runs the syncs: the group leader.
            if run_syncs and states is not None and app.is_leader():
                await self.run_due_syncs(states)

        app.timer(settings.scheduler_tick, name="release-delayed")(release)
        app.timer(1.0, name="priority-gauges")(gauges)
        app.timer(3600.0, name="sweep-state")(sweep)
        app.timer(1.0, name="write-tables")(write_tables)
        if self._follows_tables():
            app.task(self._follow_forever)
        if run_syncs or settings.report_enabled:
            # On every worker (not on_leader): each exports the sync gauges from the shared state.
            app.timer(settings.sync_check_interval, name="syncs")(syncs)

        async def report() -> None:
            await asyncio.to_thread(
                run_due_report,
                self.topology,
                settings.kafka_bootstrap_servers,
                settings,
                self.sync_states,
                datetime.now(UTC),
                settings.sync_retry_after,
            )

        if settings.report_enabled:
            app.timer(settings.report_check_interval, on_leader=True, name="daily-report")(report)

    async def sweep_state(self) -> int:
        """Forget expired state locally; the changelogs' retention forgets it on the broker."""
        now = time.time()
        cutoff = datetime.now(UTC) - self.settings.trail_retention
        fired_cut = now - FIRED_KEEP.total_seconds()
        return (
            await state_store.sweep(
                state_store.mapping(self.dedupe_table), lambda v: dedupe.expired(v, now, self.window)
            )
            + await state_store.sweep(
                state_store.mapping(self.trail_table), lambda value: trail_index.expired(value, cutoff)
            )
            + await state_store.sweep(
                state_store.mapping(self.schedule_table),
                lambda v: v.get("state") == "fired" and v.get("at", 0) < fired_cut,
            )
        )

    async def load_sync_states(self) -> dict[str, SyncState] | None:
        """Every sync's recorded state (None: unreadable now), exported as this worker's sync gauges:
        all workers export the same values, whichever ran the sync, from their start on."""
        try:
            states = await asyncio.to_thread(self.sync_states.load_all)
        except Exception as exc:
            log.warning("cannot read sync state: %r", exc)
            return None
        names = [*self.topology.syncs, *([REPORT_STATE] if self.settings.report_enabled else [])]
        metrics.export_sync_states(states, names)
        return states

    async def run_due_syncs(self, states: Mapping[str, SyncState]) -> None:
        now = datetime.now(UTC)
        for name, sync in self.topology.syncs.items():
            state = states.get(name)
            if state is not None:
                self.sync_status[name] = state.health()
            if is_due(sync, state or SyncState(sync=name), now, self.settings.sync_retry_after):
                result = await asyncio.to_thread(self.sync_runner.run, name)
                self.sync_status[name] = {
                    "sync": name,
                    "ok": result.ok,
                    "items": result.items,
                    "watermark": result.watermark,
                    "error": result.error,
                }

    # ---- web ------------------------------------------------------------------------------------
    def _define_pages(self) -> None:
        processors = self

        @self.app.page("/v1/trail/{event_id}")
        class TrailView(View):
            async def get(self, request: Request, event_id: str) -> Response:
                if not _is_uuid(event_id):
                    return self.json({"error": "event_id must be a UUID"}, status=400)
                event_id = str(uuid.UUID(event_id))  # the index's form, whatever spelling was asked
                hops = processors.trail(event_id)
                if hops is None and request.headers.get("X-Carinho-Routed") is None:
                    # Another worker may own this event's trail partition (no standby here).
                    routed = await processors.route_trail_request(self.web, request, event_id)
                    if routed is not None:
                        return routed
                if hops is None:
                    return self.json({"event_id": event_id, "hops": [], "found": False}, status=404)
                return self.json({"event_id": event_id, "hops": hops, "found": True})

        @self.app.page("/metrics")
        class MetricsView(View):
            async def get(self, request: Request) -> Response:
                body, content_type = render()
                return self.bytes(body, content_type=content_type.split(";")[0])

        @self.app.page("/health")
        class HealthView(View):
            async def get(self, request: Request) -> Response:
                return self.json(processors.health())

    async def route_trail_request(self, web: Any, request: Request, event_id: str) -> Response | None:
        try:
            # The trail topic's partition for this key (same crc32 partitioner as every hub producer)
            # is the trail-index partition: its owner has the event's hops.
            url = self.app.assignor.external_key_store(self.trail_topic, event_id.encode())  # type: ignore[attr-defined]
        except Exception as exc:
            log.warning("cannot locate the owner of trail %s: %r", event_id, exc)
            return None
        if (url.host, url.port) == (self.settings.web_host, self.settings.web_port):
            return None
        target = request.url.with_host(str(url.host)).with_port(url.port)
        try:
            async with self.app.http_client.get(target, headers={"X-Carinho-Routed": "1"}) as response:
                body = await response.read()
                return web.bytes(body, content_type="application/json", status=response.status)  # type: ignore[no-any-return]
        except Exception as exc:
            log.warning("cannot reach %s for trail %s: %r", url, event_id, exc)
            return None

    def health(self) -> dict[str, Any]:
        assignment = self.app.consumer.assignment() if self.app.consumer else set()
        return {
            "status": "rebalancing" if self.app.rebalancing else "ok",
            "service": SERVICE,
            "worker": f"http://{self.settings.web_host}:{self.settings.web_port}",
            "assigned_partitions": len(assignment),
            "pending": {f"p{level}": self.lanes.pending(level) for level in LEVELS},
            "trail_pending": self.trail_lane.pending(TRAIL_LEVEL),
            "trail_indexed": int(metrics.TRAIL_INDEXED._value.get()),  # hops indexed since start
            # Events routed since start (the benchmark polls this: much cheaper than rendering /metrics).
            "routed": sum(int(self._counters[level].routed._value.get()) for level in LEVELS),
            "produce_errors": self.produce_errors,
            "offset_holes": self.offset_guard.holes_found,  # records lost inside Faust and read again
            # Changelog records read into each table since start: a restart on the same data directory
            # reads only what was written after the offsets its tables hold.
            "recovered": {name: getattr(table.data, "recovered", None) for name, table in self.tables().items()},
            # The warm copies of the partitions not active here (processors/table_follower.py): partitions
            # followed now, and changelog records written since start (also counted in "recovered").
            "following": self.app.follower.following if self.app.follower else 0,
            "followed": self.app.follower.applied if self.app.follower else 0,
            "syncs": self.sync_status,
        }

    # ---- running --------------------------------------------------------------------------------
    def worker(self) -> faust.Worker:
        worker = faust.Worker(
            self.app,
            loglevel=self.settings.log_level.lower(),
            override_logging=False,
            quiet=True,
            redirect_stdouts=False,
        )
        # Faust's start-up spinner writes "\b" and cursor escapes to stdout even when it is a file: the
        # log is JSON lines for shippers. Faust checks for a missing spinner everywhere it uses one.
        worker.spinner = None
        return worker


class _LevelMetrics:
    """The labelled metric children of one priority level, looked up once (not per event)."""

    def __init__(self, level: int):
        label = str(level)
        self.routed = metrics.EVENTS.labels(label, "routed")
        self.invalid = metrics.EVENTS.labels(label, "invalid")
        self.duplicate = metrics.EVENTS.labels(label, "duplicate")
        self.duplicate_conflict = metrics.EVENTS.labels(label, "duplicate_conflict")
        self.transform_failed = metrics.EVENTS.labels(label, "transform_failed")
        self.latency = metrics.ROUTING_LATENCY.labels(label)


def lane_partition(records: Sequence[Any]) -> TP:
    """The partition of a lane's batch: every record of one batch is of one partition
    (processors/priority.py), and lane records (aiokafka's) do not carry Faust's `tp`."""
    first = records[0] if records else None
    return TP(first.topic, first.partition) if first is not None else TP("", -1)


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def run(settings: ProcessorSettings, topology: Topology | None = None) -> None:
    """Run one worker in the foreground until SIGINT/SIGTERM."""
    from hub.logging import configure_logging

    configure_logging(SERVICE, settings.log_level)
    # Only with CARINHO_CONSUMER_THREAD=true (aiokafka in Faust's thread): every poll is then a hand-over
    # between two threads, and with the routing loop busy a 5 ms GIL switch adds up to ~10 ms per poll.
    sys.setswitchinterval(settings.gil_switch_interval)
    for noisy in ("faust", "mode", "aiokafka"):
        logging.getLogger(noisy).setLevel("WARNING" if settings.log_level != "DEBUG" else "DEBUG")
    processors = Processors(settings, topology)
    processors.ensure_topics()
    processors.check_local_state()
    processors.catch_up_tables()
    processors.start_follower()
    tune_gc(settings.gc_tuning)  # the app, its tables and schemas are built: see hub/gc_tuning.py
    log.info("processors starting", extra={"web_port": settings.web_port, "app_id": processors.app_id})
    processors.worker().execute_from_commandline()


__all__ = ["Processors", "crc32_partitioner", "run"]
