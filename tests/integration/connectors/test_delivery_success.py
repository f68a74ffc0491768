"""Happy path against the real broker and the real sandbox: delivered once, with the right headers,
history and trail written, offsets committed."""

from __future__ import annotations

import orjson
import pytest
from confluent_kafka import Consumer, TopicPartition

from connectors.signing import verify
from hub.backlog import partition_watermarks
from hub.kafka_config import consumer_config
from hub.topology import Topology
from hub.trail import TrailHop
from tests.integration.connectors.support import (
    ConnectorThread,
    Sandbox,
    delivery,
    fast_topology,
    send,
    settings_for,
    wait_for,
)
from tests.kafka_support import read_topic

pytestmark = pytest.mark.integration


def _committed_and_end(bootstrap: str, topology: Topology, destination: str) -> tuple[int, int]:
    """The destination's consumer group: the sum of its committed offsets on deliver.<d> (a partition
    never committed counts 0) and the sum of the partitions' end offsets."""
    topic = topology.delivery_topic(destination)
    group = topology.consumer_group(f"connector.{destination}")
    consumer = Consumer(consumer_config(bootstrap, group_id=group, client_id="tests-committed"))
    try:  # never subscribes: only asks the group's committed offsets
        marks = partition_watermarks(consumer, topic, 10)
        committed = consumer.committed([TopicPartition(topic, p) for p in marks], timeout=10)
        return sum(max(tp.offset, 0) for tp in committed), sum(high for _, high in marks.values())
    finally:
        consumer.close()


def test_records_are_delivered_once_with_idempotency_key_and_history(
    kafka_bootstrap: str, hub: Topology, sandbox: Sandbox
) -> None:
    topology = fast_topology(hub)
    records = [delivery("crm", payload={"nome": "Maria", "seq": i}) for i in range(20)]
    settings = settings_for(
        kafka_bootstrap,
        sandbox,
        signing_secrets={"crm": ["new-secret", "old-secret"]},
        destination_tokens={"crm": "crm-token"},
    )
    with ConnectorThread(settings, topology, ["crm"]):
        send(kafka_bootstrap, topology, records)
        got = wait_for(lambda: (r := sandbox.received("crm"))["unique"] >= 20 and r, message="20 deliveries")
    assert got["unique"] == 20 and got["duplicates"] == 0
    by_key = {item["idempotency_key"]: item for item in got["items"]}
    assert set(by_key) == {str(r.delivery_id) for r in records}
    for r in records:
        item = by_key[str(r.delivery_id)]
        assert item["path"] == "/crm/api/leads"
        assert item["body"] == r.payload
        assert item["headers"]["x-event-id"] == str(r.event_id)
        assert item["headers"]["authorization"] == "Bearer crm-token"
        body = orjson.dumps(r.payload)
        assert verify(body, item["headers"]["x-carinho-signature"], ["old-secret"])  # rotation: old verifies
        assert verify(body, item["headers"]["x-carinho-signature"], ["new-secret"])

    history = read_topic(kafka_bootstrap, topology.system_topic("deliveries"), expect=20)
    rows = [orjson.loads(h.value or b"") for h in history]
    assert {row["delivery_id"] for row in rows} == set(by_key)
    assert all(row["outcome"] == "delivered" and row["status"] == 200 and row["attempt"] == 1 for row in rows)
    assert all(h.key == row["delivery_id"].encode() for h, row in zip(history, rows, strict=True))

    trail = [
        TrailHop.from_json(t.value or b"")
        for t in read_topic(kafka_bootstrap, topology.system_topic("trail"), expect=40)
    ]
    assert sorted(h.hop for h in trail) == ["attempt"] * 20 + ["delivered"] * 20
    assert {h.event_id for h in trail} == {r.event_id for r in records}

    # Offsets committed: the group's position is past every delivered record, so a restart re-reads
    # nothing (without commits it would re-send all 20, each skipped only by the destination's dedupe).
    committed, end = _committed_and_end(kafka_bootstrap, topology, "crm")
    assert end == 20 and committed == end, (committed, end)


def test_a_delivery_already_made_is_skipped_and_the_trail_says_so(
    kafka_bootstrap: str, hub: Topology, sandbox: Sandbox
) -> None:
    """The same delivery again (a replay of one the destination already has): not sent, and the trail
    says why instead of showing nothing after the `replayed` hop."""
    topology = fast_topology(hub)
    record = delivery("crm", payload={"nome": "Maria", "seq": 1})
    trail = topology.system_topic("trail")

    def hops() -> list[TrailHop]:
        return [TrailHop.from_json(t.value or b"") for t in read_topic(kafka_bootstrap, trail, timeout=3)]

    with ConnectorThread(settings_for(kafka_bootstrap, sandbox), topology, ["crm"]):
        send(kafka_bootstrap, topology, [record])
        wait_for(lambda: sandbox.received("crm")["unique"] == 1, message="the first delivery")
        send(kafka_bootstrap, topology, [record])
        skipped = wait_for(
            lambda: [h for h in hops() if h.hop == "duplicate_dropped"], message="the duplicate's trail hop"
        )
    assert skipped[0].event_id == record.event_id and skipped[0].service == "connectors"
    assert skipped[0].detail == {"reason": "already_delivered"} and skipped[0].destination == "crm"
    got = sandbox.received("crm")
    assert got["unique"] == 1 and got["duplicates"] == 0
