"""Zero loss at the edge: with the broker down the ingress answers 503 + Retry-After, and an event it
refused never shows up later (librdkafka stops retrying at the same bound the answer waited for)."""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hub.topology import Topology
from tests.conftest import TEST_KAFKA_PORT, create_topics, make_test_topology
from tests.integration.ingress.conftest import INGRESS_TOPICS, start_ingress
from tests.kafka_support import ROOT, LocalKafka, can_run_local_kafka, read_topic, unique

pytestmark = pytest.mark.integration

LEAD = {"type": "lead.created", "data": {"name": "Ana", "phone": "11987654321"}}


@pytest.fixture
def own_broker() -> Iterator[LocalKafka]:
    """A broker this test may stop and restart (never the session's shared one)."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or not can_run_local_kafka():
        pytest.skip("needs the local KRaft script (Java + Maven) to stop and restart a broker")
    port = TEST_KAFKA_PORT + 7000  # clear of the cluster (+3000..) and the local hub (+5000); controller +1000
    kafka = LocalKafka(port=port, run_dir=ROOT / ".run" / f"kafka-down-{port}")
    kafka.start()
    try:
        yield kafka
    finally:
        gc.collect()  # close unreferenced Kafka clients while the broker is up
        kafka.stop()


def test_broker_down_gives_503_and_the_refused_event_never_appears(
    own_broker: LocalKafka, base_topology: Topology, tmp_path: Path
) -> None:
    topology = create_topics(make_test_topology(base_topology, unique("d")), own_broker.bootstrap, only=INGRESS_TOPICS)
    ingress = start_ingress(topology, own_broker.bootstrap, tmp_path / "keys.json", publish_timeout_s=2.0)
    try:
        key = ingress.key("site")
        headers = {"X-API-Key": key, "Content-Type": "application/json"}
        before = httpx.post(
            f"{ingress.url}/v1/events", json={**LEAD, "idempotency_key": "before-outage"}, headers=headers, timeout=10
        )
        assert before.status_code == 202, before.text

        own_broker.stop()
        started = time.monotonic()
        during = httpx.post(
            f"{ingress.url}/v1/events", json={**LEAD, "idempotency_key": "during-outage"}, headers=headers, timeout=30
        )
        waited = time.monotonic() - started
        assert during.status_code == 503, during.text
        assert int(during.headers["retry-after"]) >= 1
        body = during.json()
        assert body["errors"][0]["rule"] == "persisted" and "NOT accepted" in body["message"]
        assert waited < 10, f"the client was held {waited:.1f}s"
        batch = httpx.post(
            f"{ingress.url}/v1/events/batch",
            headers=headers,
            timeout=30,
            json={"events": [{**LEAD, "idempotency_key": "batch-during-outage"}]},
        )
        assert batch.status_code == 503 and batch.json()["results"][0]["status"] == 503
        assert int(batch.headers["retry-after"]) >= 1
        detailed = httpx.get(f"{ingress.url}/health/detailed", timeout=30)
        assert detailed.status_code == 503 and detailed.json()["kafka"]["reachable"] is False

        own_broker.run("start")
        time.sleep(3)  # anything librdkafka still held would be delivered now
        after = httpx.post(
            f"{ingress.url}/v1/events", json={**LEAD, "idempotency_key": "after-outage"}, headers=headers, timeout=30
        )
        assert after.status_code == 202, after.text
    finally:
        ingress.stop()

    keys = [r.key for r in read_topic(own_broker.bootstrap, topology.priority_topic(2), timeout=15, idle=2)]
    assert sorted(keys) == [b"after-outage", b"before-outage"]
