"""operators.kafka_io.scan_topic reads between two moments by the records' Kafka timestamps (the
daily report and the audit reader stop past their day instead of reading to the end of the topic)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from confluent_kafka import Producer

from hub.kafka_config import producer_config
from hub.topology import Topology
from operators.kafka_io import scan_topic

pytestmark = pytest.mark.integration


def test_scan_between_since_and_until(hub: Topology, kafka_bootstrap: str) -> None:
    topic = hub.system_topic("trail")
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=12)
    hours = [-2, -1, 0, 1]
    producer = Producer(producer_config(kafka_bootstrap, client_id="tests-scan"))
    for hour in hours:  # one key: one partition, in time order (as the hub's producers write)
        at = t0 + timedelta(hours=hour)
        producer.produce(topic, key=b"k", value=str(hour).encode(), timestamp=int(at.timestamp() * 1000))
    assert producer.flush(30) == 0

    def read(**bounds: datetime) -> list[int]:
        return [int(record.value or b"") for record in scan_topic(kafka_bootstrap, topic, **bounds)]

    assert read() == hours
    assert read(since=t0 - timedelta(hours=1)) == [-1, 0, 1]
    assert read(until=t0) == [-2, -1]  # stops before the first record at/after until
    assert read(since=t0 - timedelta(hours=1), until=t0 + timedelta(hours=1)) == [-1, 0]
    assert read(until=t0 - timedelta(hours=3)) == []
    assert read(until=t0 + timedelta(hours=5)) == hours  # nothing at/after until: to the end
    assert read(since=t0 + timedelta(hours=5)) == []
