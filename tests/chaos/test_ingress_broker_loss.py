"""Broker loss under load, against a real 3-node cluster (RF=3, min.insync.replicas=2):

* one broker SIGKILLed mid-load: the ingress keeps accepting, and every event it answered 202 for is
  on its topic — nothing accepted is lost;
* two brokers gone: writes cannot reach min.insync.replicas, the ingress answers 503, and none of the
  refused events appears after the cluster recovers.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest

from hub.topology import Topology
from tests.conftest import create_topics, make_test_topology
from tests.integration.ingress.conftest import start_ingress
from tests.kafka_support import LocalKafka, read_topic, unique, wait_until

pytestmark = pytest.mark.chaos

TOPICS = {"events.p1", "events.p2", "events.p3", "events.p4", "events.p5", "trail", "audit", "health", "deadletter"}


def cluster_topology(base: Topology, cluster: LocalKafka) -> Topology:
    topology = make_test_topology(base, unique("c"), partitions=3)
    return create_topics(topology, cluster.bootstrap, only=TOPICS, profile="cluster3")


def lead(key: str) -> dict[str, object]:
    return {"type": "lead.created", "idempotency_key": key, "data": {"name": "Ana", "phone": "11987654321"}}


def test_one_broker_killed_mid_load_loses_nothing_accepted(
    kafka_cluster: LocalKafka, base_topology: Topology, tmp_path: Path
) -> None:
    topology = cluster_topology(base_topology, kafka_cluster)
    ingress = start_ingress(topology, kafka_cluster.bootstrap, tmp_path / "keys.json", publish_timeout_s=30.0)
    accepted: list[str] = []
    refused: list[str] = []
    stop = threading.Event()

    def load() -> None:
        key = ingress.key("site", rate=100_000)
        with httpx.Client(timeout=60) as client:
            n = 0
            while not stop.is_set() and n < 3000:
                k = f"kill-{n}"
                r = client.post(f"{ingress.url}/v1/events", json=lead(k), headers={"X-API-Key": key})
                (accepted if r.status_code == 202 else refused).append(k)
                n += 1

    worker = threading.Thread(target=load)
    try:
        worker.start()
        wait_until(lambda: len(accepted) >= 200, timeout=60, message="load running")
        kafka_cluster.kill_node(2)  # SIGKILL: no clean shutdown, leaders on it must move
        killed_at = len(accepted)
        wait_until(lambda: len(accepted) >= killed_at + 300, timeout=120, message="acceptance after the kill")
        stop.set()
        worker.join(timeout=120)
    finally:
        stop.set()
        ingress.stop()
        kafka_cluster.start_node(2)

    assert len(accepted) >= 500
    keys = [
        r.key.decode()
        for r in read_topic(kafka_cluster.bootstrap, topology.priority_topic(2), expect=len(accepted), timeout=60)
        if r.key
    ]
    missing = set(accepted) - set(keys)
    assert not missing, f"{len(missing)} accepted events lost, e.g. {sorted(missing)[:5]}"
    assert len(keys) == len(set(keys)), "the idempotent producer wrote a duplicate"
    assert not set(refused) & set(keys), "an event answered with an error was persisted"


def test_without_min_insync_replicas_the_ingress_refuses_and_refused_events_never_appear(
    kafka_cluster: LocalKafka, base_topology: Topology, tmp_path: Path
) -> None:
    topology = cluster_topology(base_topology, kafka_cluster)
    ingress = start_ingress(topology, kafka_cluster.bootstrap, tmp_path / "keys.json", publish_timeout_s=4.0)
    key = ingress.key("site")
    try:
        ok = httpx.post(f"{ingress.url}/v1/events", json=lead("before"), headers={"X-API-Key": key}, timeout=30)
        assert ok.status_code == 202, ok.text
        kafka_cluster.stop_node(2)
        kafka_cluster.stop_node(3)
        refused = httpx.post(
            f"{ingress.url}/v1/events", json=lead("while-degraded"), headers={"X-API-Key": key}, timeout=30
        )
        assert refused.status_code == 503, refused.text
        assert refused.headers["retry-after"]
    finally:
        kafka_cluster.start_node(2)
        kafka_cluster.start_node(3)
    try:
        assert kafka_cluster_ready(kafka_cluster)
        after = None
        for _ in range(30):  # leaders and ISR come back over a few seconds
            after = httpx.post(f"{ingress.url}/v1/events", json=lead("after"), headers={"X-API-Key": key}, timeout=30)
            if after.status_code == 202:
                break
            time.sleep(1)
        assert after is not None and after.status_code == 202, after.text if after else None
        time.sleep(3)
    finally:
        ingress.stop()
    keys = sorted(
        r.key.decode()
        for r in read_topic(kafka_cluster.bootstrap, topology.priority_topic(2), timeout=20, idle=3)
        if r.key
    )
    assert keys == ["after", "before"]


def kafka_cluster_ready(cluster: LocalKafka) -> bool:
    from tests.kafka_support import broker_ready

    return broker_ready(cluster.bootstrap, brokers=3, timeout=120)
