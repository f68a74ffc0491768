"""What one routed event writes, as ready-to-produce records, and the producer that writes them.

`OutputBuilder` turns a routing outcome into (topic, key, value, headers) tuples: the deliveries, the
delayed messages, the `routed` / `scheduled` trail hops. The Faust worker and the benchmark baselines
(confluent-kafka loop, quixstreams) all call it, so they do exactly the same work per event.

`OutputProducer` writes them with confluent-kafka (librdkafka: batching, compression and the network in
C on its own thread). Faust's aiokafka producer is pure Python and cost ~40 % of the worker's CPU at ~5
records per event (see docs/processors.md). At least once is kept: the Faust app flushes this producer
before every offset commit (`processors.app.App`), and a failed write crashes the worker.
"""

from __future__ import annotations

import asyncio
import functools
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import orjson
from confluent_kafka import KafkaError, Producer
from faust.types import TP

from hub.delivery import DeliveryRecord
from hub.envelope import EventEnvelope
from hub.kafka_config import producer_config
from hub.topology import Topology
from hub.trail import Hop
from processors.automations.feedback import ScheduledMessage
from processors.routing import RouteOutcome

Headers = list[tuple[str, bytes]]
# (topic, key, value, headers, partition or None = the key's crc32 partition)
Record = tuple[str, bytes | None, bytes, Headers | None, int | None]


def hop_json(
    event_id: uuid.UUID | str,
    hop: Hop,
    at: datetime,
    service: str,
    *,
    destination: str | None = None,
    delivery_id: uuid.UUID | str | None = None,
    detail: dict[str, Any] | None = None,
) -> bytes:
    """`TrailHop(...).to_json()` without building (and validating) the model: the processors write one
    to three hops per event. Values come from validated envelopes and the router (tests check equality)."""
    record: dict[str, Any] = {"event_id": event_id, "hop": hop, "at": at, "service": service}
    if destination is not None:
        record["destination"] = destination
    if delivery_id is not None:
        record["delivery_id"] = delivery_id
    record["detail"] = detail or {}
    return orjson.dumps(record, option=orjson.OPT_UTC_Z)


def scheduled_json(message: ScheduledMessage) -> bytes:
    """`ScheduledMessage.to_json()`, reusing the delivery's hand-built JSON."""
    return orjson.dumps(
        {
            "schema_version": message.schema_version,
            "kind": message.kind,
            "due_at": message.due_at,
            "delivery": orjson.Fragment(message.delivery.to_json()),
        },
        option=orjson.OPT_UTC_Z,
    )


class OutputBuilder:
    """Topic names resolved once; records built straight to bytes."""

    def __init__(self, topology: Topology, service: str):
        self.topology = topology
        self.service = service
        self.scheduled_topic = topology.system_topic("scheduled")
        self.trail_topic = topology.system_topic("trail")
        self._delivery_topics: dict[str, str] = {}

    def delivery_topic(self, destination: str) -> str:
        topic = self._delivery_topics.get(destination)
        if topic is None:
            topic = self._delivery_topics[destination] = self.topology.delivery_topic(destination)
        return topic

    def delivery(self, delivery: DeliveryRecord, event_id: str | None = None) -> Record:
        """`event_id`: the event id's text when the caller has it (saves a UUID.__str__ per delivery)."""
        return (
            self.delivery_topic(delivery.destination),
            delivery.entity_key.encode(),
            delivery.to_json(),
            delivery.kafka_headers(event_id),
            None,
        )

    def hop(
        self,
        event_id: uuid.UUID | str,
        hop: Hop,
        *,
        at: datetime | None = None,
        destination: str | None = None,
        delivery_id: uuid.UUID | str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> Record:
        key = str(event_id).encode()
        value = hop_json(
            event_id,
            hop,
            at or datetime.now(UTC),
            self.service,
            destination=destination,
            delivery_id=delivery_id,
            detail=detail,
        )
        return (self.trail_topic, key, value, None, None)

    def routed(
        self, envelope: EventEnvelope, outcome: RouteOutcome, *, level: int, redelivery: bool = False
    ) -> list[Record]:
        """Every record of a routed event: deliveries, delayed messages, the `routed` hop and one
        `scheduled` hop per delayed message (in this order)."""
        event_id = envelope.event_id_str
        records = [self.delivery(d, event_id) for d in outcome.deliveries]
        for scheduled in outcome.scheduled:
            delivery = scheduled.delivery
            records.append(
                (
                    self.scheduled_topic,
                    str(delivery.delivery_id).encode(),
                    scheduled_json(scheduled),
                    delivery.kafka_headers(event_id),
                    None,
                )
            )
        at = datetime.now(UTC)
        records.append(
            self.hop(
                event_id,
                "routed",
                at=at,
                detail={
                    "priority": level,
                    "destinations": outcome.destinations,
                    "deliveries": {
                        d.destination + (f":{d.message_type}" if d.message_type else ""): d.delivery_id
                        for d in outcome.deliveries
                    },
                    "redelivery": redelivery,
                },
            )
        )
        for scheduled in outcome.scheduled:
            delivery = scheduled.delivery
            records.append(
                self.hop(
                    event_id,
                    "scheduled",
                    at=at,
                    destination=delivery.destination,
                    delivery_id=delivery.delivery_id,
                    detail={"due_at": scheduled.due_at.isoformat(), "message_type": delivery.message_type},
                )
            )
        return records


class ProduceFailed(RuntimeError):
    """The broker did not take a record (after librdkafka's own retries)."""


class OutputProducer:
    """confluent-kafka producers used from the event loop thread only (produce, poll and flush all run
    there, so delivery callbacks never race). `flush()` waits for the records produced *before* it was
    called — records produced meanwhile belong to the next commit — so it never stalls under load.

    Two librdkafka producers when `urgent_linger_ms` is given: records marked urgent (those of p1/p2
    events) wait at most that long to be sent, everything else (bulk events, trail and changelog
    records) `linger_ms`. Why: with one short linger the producer's broker thread sent thousands of
    small requests a second and, woken for each, took the CPU from the router (the router's thread
    waited for a CPU ~12 % of the time, ~3 % with 50 ms; benchmarks.md, twelfth session). Records of
    one event priority always go through the same producer, so their order per partition holds."""

    def __init__(
        self,
        bootstrap: str,
        client_id: str,
        on_error: Callable[[BaseException], None],
        *,
        linger_ms: int = 5,
        urgent_linger_ms: int | None = None,
        never_urgent: Iterable[str] = (),
        **overrides: Any,
    ):
        self._producer = Producer(producer_config(bootstrap, client_id=client_id, linger_ms=linger_ms, **overrides))
        self._urgent = self._producer
        if urgent_linger_ms is not None and urgent_linger_ms != linger_ms:
            self._urgent = Producer(
                producer_config(bootstrap, client_id=f"{client_id}-urgent", linger_ms=urgent_linger_ms, **overrides)
            )
        self._producers = tuple({id(p): p for p in (self._urgent, self._producer)}.values())
        # Topics written through the bulk producer even for urgent events (the trail): librdkafka sends
        # one partition per produce request, so each topic written with the short linger costs the
        # broker up to (its partitions) / linger requests a second (docs/benchmarks.md, fifteenth session).
        self._never_urgent = frozenset(never_urgent)
        self._on_error = on_error
        self._epoch = 0
        self._pending: dict[int, int] = {0: 0}
        self._callback = functools.partial(self._delivered, 0)
        self._changelog_callbacks: dict[Any, Callable[..., None]] = {}  # this epoch's, by table
        self._changelog_acked: dict[tuple[Any, str, int], int] = {}  # (table, topic, partition) -> offset
        self.errors: list[str] = []
        self.produced = 0

    def _delivered(self, epoch: int, err: KafkaError | None, msg: Any) -> None:
        self._pending[epoch] -= 1
        if err is not None:
            self.errors.append(f"{msg.topic()}: {err.str()}")
            self._on_error(ProduceFailed(f"producer could not write to {msg.topic()}: {err.str()}"))

    def _changelog_delivered(self, epoch: int, table: Any, err: KafkaError | None, msg: Any) -> None:
        self._delivered(epoch, err, msg)
        if err is None:  # noted for `poll` to pass on: one store write per partition, not per record
            key = (table, msg.topic(), msg.partition())
            offset = msg.offset()
            if offset > self._changelog_acked.get(key, -1):
                self._changelog_acked[key] = offset

    def _persist_changelog_acks(self) -> None:
        """Tell each table's store the last changelog offset the broker has per partition (its store
        notes it with the data it covers, written before the record was produced)."""
        acked, self._changelog_acked = self._changelog_acked, {}
        for (table, topic, partition), offset in acked.items():
            table.data.set_persisted_offset(TP(topic, partition), offset)

    def produce(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: Headers | None = None,
        partition: int | None = None,
        *,
        urgent: bool = False,
    ) -> None:
        producer = self._urgent if urgent and topic not in self._never_urgent else self._producer
        self._produce(topic, key, value, headers, partition, self._callback, producer)

    def produce_changelog(self, topic: str, key: bytes, value: bytes, partition: int, table: Any) -> None:
        """A record of a Faust `table`'s changelog, written by the routers themselves: once the broker
        has it, the table's store notes its offset (`set_persisted_offset`), as Faust does for the
        changelog records it writes (a no-op for the in-memory store)."""
        callback = self._changelog_callbacks.get(table)
        if callback is None:
            callback = functools.partial(self._changelog_delivered, self._epoch, table)
            self._changelog_callbacks[table] = callback
        self._produce(topic, key, value, None, partition, callback, self._producer)

    def _produce(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: Headers | None,
        partition: int | None,
        callback: Callable[..., None],
        producer: Producer,
    ) -> None:
        kwargs: dict[str, Any] = {"on_delivery": callback}
        if headers:
            kwargs["headers"] = headers
        if partition is not None:
            kwargs["partition"] = partition
        while True:
            try:
                producer.produce(topic, value, key, **kwargs)
                break
            except BufferError:  # librdkafka's queue is full: let it drain
                producer.poll(0.05)
        self._pending[self._epoch] += 1
        self.produced += 1

    def produce_all(self, records: list[Record], *, urgent: bool = False) -> None:
        """`produce` for each record, with the librdkafka calls inline and the count kept once (this
        runs for every routed event, ~3 records each)."""
        bulk, callback, never = self._producer, self._callback, self._never_urgent
        chosen = self._urgent if urgent else bulk
        written = 0
        for topic, key, value, headers, partition in records:
            producer = bulk if topic in never else chosen
            try:
                if partition is None:
                    producer.produce(topic, value, key, headers=headers, on_delivery=callback)
                else:
                    producer.produce(topic, value, key, headers=headers, partition=partition, on_delivery=callback)
            except BufferError:  # librdkafka's queue is full: the slow path waits for room (and counts it)
                self._produce(topic, key, value, headers, partition, callback, producer)
                continue
            written += 1
        self._pending[self._epoch] += written
        self.produced += written

    def poll(self) -> None:
        """Serve delivery callbacks (cheap; call once per batch)."""
        for producer in self._producers:
            producer.poll(0)
        if self._changelog_acked:
            self._persist_changelog_acks()

    def _outstanding(self, up_to: int) -> int:
        return sum(n for epoch, n in self._pending.items() if epoch <= up_to)

    async def flush(self, limit: float = 60.0) -> None:
        """Wait until every record produced before this call is acknowledged; raise if one failed."""
        closing = self._epoch
        self._epoch += 1
        self._pending[self._epoch] = 0
        self._callback = functools.partial(self._delivered, self._epoch)
        self._changelog_callbacks.clear()
        deadline = time.monotonic() + limit
        while True:
            self.poll()
            if self._outstanding(closing) == 0:
                break
            if time.monotonic() > deadline:
                raise ProduceFailed(f"{self._outstanding(closing)} record(s) not acknowledged in {limit}s")
            await asyncio.sleep(0.002)
        for epoch in [e for e, n in self._pending.items() if e <= closing and n == 0]:
            del self._pending[epoch]
        if self.errors:
            raise ProduceFailed(f"records not written: {self.errors[:3]}")

    def close(self, timeout: float = 10.0) -> None:
        for producer in self._producers:
            producer.flush(timeout)
        self._persist_changelog_acks()
