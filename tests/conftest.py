"""Shared fixtures. The broker is real: KAFKA_BOOTSTRAP_SERVERS when set, else the project's KRaft
script on 127.0.0.1:19092 (its own run dir, so it never touches `make up`'s broker on 9092), else
testcontainers when a Docker engine is available."""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient

from hub.admin import apply_topics
from hub.kafka_config import admin_config
from hub.topology import Topology, load_topology
from tests.kafka_support import (
    ROOT,
    LocalKafka,
    can_run_local_kafka,
    start_testcontainers_kafka,
    unique,
    wait_topics_ready,
)

TEST_KAFKA_PORT = int(os.environ.get("CARINHO_TEST_KAFKA_PORT", "19092"))
# The CLI's and operator tools' settings read a running local hub's .run/hub.env (hub/settings.py
# LocalHubSettings); tests never do: a developer's hub, or a stale file, must not change what they build.
os.environ["CARINHO_HUB_ENV_FILE"] = ""


@pytest.fixture(scope="session")
def base_topology() -> Topology:
    return load_topology(ROOT / "topics.yaml")


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    if can_run_local_kafka():
        kafka = LocalKafka(port=TEST_KAFKA_PORT, run_dir=ROOT / ".run" / f"kafka-test-{TEST_KAFKA_PORT}")
        kafka.start()
        try:
            yield kafka.bootstrap
        finally:
            gc.collect()  # close unreferenced Kafka clients while the broker is up (no reconnect noise)
            kafka.stop()
        return
    try:
        bootstrap, container = start_testcontainers_kafka()
    except Exception as exc:  # no Java/Maven and no Docker: say so plainly
        pytest.fail(
            f"no Kafka available: install Java 17 + Maven, set KAFKA_BOOTSTRAP_SERVERS, "
            f"or run a Docker engine for testcontainers ({exc})"
        )
    try:
        yield bootstrap
    finally:
        container.stop()


TEST_PARTITIONS = 2  # enough to test partition sharing; keeps hundreds of test topics cheap for one broker


def make_test_topology(base: Topology, namespace: str, partitions: int = TEST_PARTITIONS, **changes: Any) -> Topology:
    """A namespaced copy of topics.yaml with fewer partitions; `changes` deep-merges into the raw file
    (e.g. destinations={"crm": {"retry": {"tiers": ["1s", "2s"]}}})."""
    raw = base.model_dump(mode="json")
    for item in raw["priorities"]:
        item["partitions"] = partitions
    for item in raw["system_topics"].values():
        item["partitions"] = min(item["partitions"], partitions)
    for item in raw["destinations"].values():
        item["partitions"] = partitions
    _deep_merge(raw, changes)
    raw["namespace"] = ""
    return Topology.model_validate(raw).with_namespace(namespace)


def _deep_merge(target: dict[str, Any], changes: dict[str, Any]) -> None:
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _deep_merge(target[key], value)
        else:
            target[key] = value


def create_topics(topology: Topology, bootstrap: str, only: set[str] | None = None, profile: str = "local") -> Topology:
    """Create the namespace's topics (or only those whose un-namespaced name is in `only`)."""
    result = apply_topics(topology, profile, bootstrap, only=_only(topology, only))
    assert not result.problems, result.problems
    wait_topics_ready(
        bootstrap,
        [
            s.name
            for s in topology.topic_specs(profile)
            if only is None or s.name.removeprefix(topology.namespace) in only
        ],
    )
    return topology


def _only(topology: Topology, only: set[str] | None) -> set[str] | None:
    return None if only is None else {topology.namespace + name for name in only}


def delete_topics(topology: Topology, bootstrap: str) -> None:
    """Drop a test namespace's topics so a long run does not pile thousands of partitions on one broker."""
    admin = AdminClient(admin_config(bootstrap))
    existing = set(admin.list_topics(timeout=10).topics)
    names = [s.name for s in topology.topic_specs("local") if s.name in existing]
    if not names:
        return
    for future in admin.delete_topics(names, operation_timeout=30).values():
        with contextlib.suppress(Exception):
            future.result(timeout=30)


@pytest.fixture
def hub(base_topology: Topology, kafka_bootstrap: str) -> Iterator[Topology]:
    """A fresh, namespaced copy of the topology with all its topics created on the test broker."""
    topology = create_topics(make_test_topology(base_topology, unique("t")), kafka_bootstrap)
    yield topology
    delete_topics(topology, kafka_bootstrap)


@pytest.fixture(scope="session")
def tmp_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("carinho")
