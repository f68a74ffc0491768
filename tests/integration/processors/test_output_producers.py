"""The routers' output producer (processors/output.py OutputProducer) against the real broker: records
of urgent events go through the short-linger librdkafka producer (but for the topics named never
urgent: the trail), everything else (changelogs included) through the bulk one, and one flush waits
for both before every record is on its topic."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from faust.types import TP

from processors.hole_filler import FetchedRecord
from processors.output import OutputProducer
from tests.integration.processors.conftest import make_hub, short_topology_file  # noqa: F401 - fixture
from tests.integration.processors.helpers import close_offline, lead, offline_processors
from tests.kafka_support import read_topic


class Offsets:
    """A table's store as far as the output producer sees it: the changelog offsets it is told."""

    def __init__(self) -> None:
        self.persisted: dict[TP, int] = {}
        self.data = self

    def set_persisted_offset(self, tp: TP, offset: int) -> None:
        self.persisted[tp] = offset


def errors(exc: BaseException) -> None:
    raise AssertionError(f"unexpected produce error: {exc}")


def test_urgent_and_bulk_records_take_their_own_producer_and_one_flush_covers_both(
    kafka_bootstrap: str,
    short_topology_file: Path,  # noqa: F811
) -> None:
    topology = make_hub(short_topology_file, kafka_bootstrap)
    deliveries, trail = topology.delivery_topic("crm"), topology.system_topic("trail")
    # A bulk linger far longer than the test: only the flush can have sent the bulk records.
    out = OutputProducer(kafka_bootstrap, "tests-output", errors, linger_ms=1000, urgent_linger_ms=0)
    urgent, bulk = out._urgent, out._producer
    assert urgent is not bulk
    table: Any = Offsets()

    out.produce_all([(deliveries, b"u1", b"urgent-1", [("h", b"1")], None)], urgent=True)
    out.produce(trail, b"u2", b"urgent-2", urgent=True)
    assert (len(urgent), len(bulk)) == (2, 0)  # queued in the urgent producer, not yet reported
    out.produce_all([(deliveries, b"b1", b"bulk-1", None, None)])
    out.produce(trail, b"b2", b"bulk-2")
    out.produce_changelog(trail, b"c1", b"changelog-1", 0, table)
    assert (len(urgent), len(bulk)) == (2, 3)

    asyncio.run(out.flush(limit=30))
    assert (len(urgent), len(bulk)) == (0, 0)  # every record of both acknowledged
    assert set(table.persisted) == {TP(trail, 0)}  # the changelog record's offset was noted
    out.close()

    delivered = {r.key: r for r in read_topic(kafka_bootstrap, deliveries, expect=2)}
    assert {k: r.value for k, r in delivered.items()} == {b"u1": b"urgent-1", b"b1": b"bulk-1"}
    assert delivered[b"u1"].headers == {"h": b"1"}
    on_trail = {r.key: r for r in read_topic(kafka_bootstrap, trail, expect=3)}
    assert {k: r.value for k, r in on_trail.items()} == {b"u2": b"urgent-2", b"b2": b"bulk-2", b"c1": b"changelog-1"}
    assert on_trail[b"c1"].partition == 0 and table.persisted[TP(trail, 0)] == on_trail[b"c1"].offset


def test_topics_never_urgent_take_the_bulk_producer_even_for_urgent_events(
    kafka_bootstrap: str,
    short_topology_file: Path,  # noqa: F811
) -> None:
    topology = make_hub(short_topology_file, kafka_bootstrap)
    deliveries, trail = topology.delivery_topic("crm"), topology.system_topic("trail")
    out = OutputProducer(
        kafka_bootstrap, "tests-output", errors, linger_ms=1000, urgent_linger_ms=0, never_urgent=(trail,)
    )
    urgent, bulk = out._urgent, out._producer
    # an urgent event's delivery and its routed hop, as the router writes them
    out.produce_all(
        [(deliveries, b"d1", b"delivery-1", None, None), (trail, b"e1", b"routed-hop-1", None, None)], urgent=True
    )
    out.produce(trail, b"e2", b"hop-2", urgent=True)
    assert (len(urgent), len(bulk)) == (1, 2)
    asyncio.run(out.flush(limit=30))
    out.close()
    assert {r.key: r.value for r in read_topic(kafka_bootstrap, trail, expect=2)} == {
        b"e1": b"routed-hop-1",
        b"e2": b"hop-2",
    }
    assert [r.value for r in read_topic(kafka_bootstrap, deliveries, expect=1)] == [b"delivery-1"]


def test_the_worker_sends_an_urgent_events_deliveries_urgently_and_its_trail_hop_in_bulk(
    kafka_bootstrap: str,
    tmp_path: Path,
    short_topology_file: Path,  # noqa: F811
) -> None:
    topology = make_hub(short_topology_file, kafka_bootstrap)
    processors = offline_processors(kafka_bootstrap, topology, short_topology_file, tmp_path)
    envelope = lead()  # p2: urgent by default (OUTPUT_URGENT_MAX_PRIORITY 2)
    message = FetchedRecord(
        topology.priority_topic(2), 0, 0, envelope.kafka_key(), envelope.to_json(), envelope.kafka_headers()
    )
    outputs = processors.outputs
    urgent, bulk = TopicsOf(outputs._urgent), TopicsOf(outputs._producer)
    outputs._urgent, outputs._producer = urgent, bulk
    try:
        assert processors._route_one(2, message, datetime.now(UTC)) is None
        # crm, marketing and the WhatsApp auto-reply go urgently; the routed hop and the dedupe
        # changelog record wait for the bulk producer's linger
        assert sorted(urgent.topics) == sorted(topology.delivery_topic(d) for d in ("crm", "marketing", "whatsapp"))
        assert topology.system_topic("trail") in bulk.topics
    finally:
        outputs._urgent, outputs._producer = urgent.producer, bulk.producer
        close_offline(processors)


class TopicsOf:
    """A librdkafka producer that notes the topic of every record it is given."""

    def __init__(self, producer: Any):
        self.producer = producer
        self.topics: list[str] = []

    def produce(self, topic: str, *args: Any, **kwargs: Any) -> None:
        self.topics.append(topic)
        self.producer.produce(topic, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.producer, name)


def test_one_producer_when_both_lingers_are_equal_or_no_urgent_linger_is_given(kafka_bootstrap: str) -> None:
    for urgent_linger in (5, None):
        out = OutputProducer(kafka_bootstrap, "tests-output", errors, linger_ms=5, urgent_linger_ms=urgent_linger)
        assert out._urgent is out._producer
        out.close()
