"""Small helpers shared by the processors integration tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Producer

from hub.delivery import DeliveryRecord
from hub.envelope import EventEnvelope, Metadata, Utm, new_envelope
from hub.kafka_config import producer_config
from hub.topology import Topology
from processors import state_store
from processors.app import Processors
from processors.settings import ProcessorSettings
from tests.kafka_support import read_topic, unique


def lead(source: str = "site", key: str | None = None, campaign: str | None = None, **data: Any) -> EventEnvelope:
    fields = {"name": "maria da silva", "phone": "+5511999990000", "origin": source, **data}
    utm = Utm(source="google", medium="cpc", campaign=campaign) if campaign else None
    return new_envelope(
        type="lead.created",
        source=source,
        priority=2,
        idempotency_key=key or unique("form"),
        data=fields,
        metadata=Metadata(utm=utm),
    )


def event(type_: str, source: str, priority: int, data: dict[str, Any], key: str | None = None) -> EventEnvelope:
    return new_envelope(type=type_, source=source, priority=priority, idempotency_key=key or unique("k"), data=data)


def send(bootstrap: str, topology: Topology, *envelopes: EventEnvelope, producer: Producer | None = None) -> None:
    p = producer or Producer(producer_config(bootstrap, client_id="tests"))
    for e in envelopes:
        p.produce(topology.priority_topic(e.priority), key=e.kafka_key(), value=e.to_json(), headers=e.kafka_headers())
        p.poll(0)
    assert p.flush(30) == 0


def deliveries(
    bootstrap: str, topology: Topology, dest: str, expect: int | None = None, timeout: float = 20.0
) -> list[DeliveryRecord]:
    records = read_topic(bootstrap, topology.delivery_topic(dest), expect=expect, timeout=timeout)
    return [DeliveryRecord.from_json(r.value) for r in records if r.value]


def by_event(records: list[DeliveryRecord], event_id: Any) -> list[DeliveryRecord]:
    return [r for r in records if str(r.event_id) == str(event_id)]


def trail_hops(bootstrap: str, topology: Topology, event_id: Any) -> list[dict[str, Any]]:
    records = read_topic(bootstrap, topology.system_topic("trail"), timeout=10)
    return [orjson.loads(r.value) for r in records if r.key == str(event_id).encode() and r.value]


def offline_processors(
    bootstrap: str, topology: Topology, topology_file: Path, data_dir: Path, **overrides: Any
) -> Processors:
    """A worker's Processors object, not started (its batches are driven by the test), tables created."""
    settings = ProcessorSettings(
        kafka_bootstrap_servers=bootstrap,
        topic_namespace=topology.namespace.rstrip("."),
        topology_file=topology_file,
        data_dir=data_dir,
        report_enabled=False,
        **overrides,
    )
    processors = Processors(settings)
    processors.ensure_topics()
    return processors


def disk_store(table: Any) -> state_store.RocksMapping:
    """A table's database (the default store), checked to be one."""
    store = state_store.mapping(table)
    assert isinstance(store, state_store.RocksMapping)
    return store


def close_offline(processors: Processors) -> None:
    """Close what offline_processors opened: the tables' databases and the output producer."""
    for table in processors.tables().values():
        state_store.mapping(table).close()  # type: ignore[attr-defined]
    processors.outputs.close()


def write_records(bootstrap: str, records: list[tuple[str, bytes, bytes | None, int]]) -> None:
    """(topic, key, value or None for a tombstone, partition) records, written and acknowledged."""
    producer = Producer(producer_config(bootstrap, client_id="test-records"))
    for topic, key, value, partition in records:
        producer.produce(topic, value, key, partition=partition)
    assert producer.flush(30) == 0


def duplicates_dropped(bootstrap: str, topology: Topology, event_ids: set[str]) -> int:
    """`duplicate_dropped` hops on the trail topic for these events."""
    hops = [orjson.loads(r.value) for r in read_topic(bootstrap, topology.system_topic("trail"), timeout=5) if r.value]
    return sum(1 for h in hops if h["hop"] == "duplicate_dropped" and h["event_id"] in event_ids)
