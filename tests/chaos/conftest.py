"""Fault-test fixtures: a 3-node KRaft cluster on loopback (RF=3, min.insync.replicas=2, unclean
leader election off) that tests may SIGKILL brokers of. Started once per session, only when asked."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator

import pytest

from tests.conftest import TEST_KAFKA_PORT
from tests.kafka_support import ROOT, LocalKafka, can_run_local_kafka


@pytest.fixture(scope="session")
def kafka_cluster() -> Iterator[LocalKafka]:
    if not can_run_local_kafka():
        pytest.fail("the 3-node fault tests need Java 17+ and Maven (deploy/local/kafka.sh)")
    port = int(os.environ.get("CARINHO_CHAOS_KAFKA_PORT", str(TEST_KAFKA_PORT + 3000)))
    cluster = LocalKafka(port=port, run_dir=ROOT / ".run" / f"kafka-cluster-{port}", nodes=3)
    cluster.start()
    try:
        yield cluster
    finally:
        gc.collect()  # close unreferenced Kafka clients while the brokers are up
        cluster.stop()
