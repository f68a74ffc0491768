"""Create/update the cluster's topics from topics.yaml (idempotently) and report drift."""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import KafkaException, TopicCollection
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
)

from hub.kafka_config import admin_config
from hub.topology import TopicSpec, Topology

# Configs we manage; anything else on the cluster is left alone and not reported as drift.
MANAGED_CONFIGS = ("cleanup.policy", "retention.ms", "min.insync.replicas")


@dataclass(frozen=True)
class Drift:
    topic: str
    what: str  # "missing", "partitions", "replication", or a config name
    expected: str
    actual: str

    def __str__(self) -> str:
        return f"{self.topic}: {self.what} expected {self.expected}, found {self.actual}"


@dataclass
class ApplyResult:
    created: list[str]
    partitions_increased: list[str]
    configs_updated: list[str]
    unchanged: list[str]
    problems: list[str]


def _admin(bootstrap: str) -> AdminClient:
    return AdminClient(admin_config(bootstrap))


def _describe(
    admin: AdminClient, specs: list[TopicSpec], timeout: float
) -> tuple[dict[str, tuple[int, int]], dict[str, dict[str, str]]]:
    metadata = admin.list_topics(timeout=timeout)
    shapes: dict[str, tuple[int, int]] = {}
    for name, topic in metadata.topics.items():
        if topic.error is None and topic.partitions:
            first = next(iter(topic.partitions.values()))
            shapes[name] = (len(topic.partitions), len(first.replicas))
    existing = [s.name for s in specs if s.name in shapes]
    configs: dict[str, dict[str, str]] = {}
    if existing:
        resources = [ConfigResource(ConfigResource.Type.TOPIC, name) for name in existing]
        for resource, future in admin.describe_configs(resources, request_timeout=timeout).items():
            entries = future.result(timeout=timeout)
            configs[resource.name] = {k: str(v.value) for k, v in entries.items() if k in MANAGED_CONFIGS}
    return shapes, configs


def check_drift(topology: Topology, profile: str, bootstrap: str, timeout: float = 15.0) -> list[Drift]:
    specs = topology.topic_specs(profile)
    shapes, configs = _describe(_admin(bootstrap), specs, timeout)
    drift: list[Drift] = []
    for spec in specs:
        if spec.name not in shapes:
            drift.append(Drift(spec.name, "missing", "present", "absent"))
            continue
        partitions, replicas = shapes[spec.name]
        if partitions != spec.partitions:
            drift.append(Drift(spec.name, "partitions", str(spec.partitions), str(partitions)))
        if replicas != spec.replication_factor:
            drift.append(Drift(spec.name, "replication", str(spec.replication_factor), str(replicas)))
        actual = configs.get(spec.name, {})
        for key, value in spec.config.items():
            if actual.get(key) != value:
                drift.append(Drift(spec.name, key, value, actual.get(key, "unset")))
    return drift


def apply_topics(
    topology: Topology, profile: str, bootstrap: str, timeout: float = 30.0, only: set[str] | None = None
) -> ApplyResult:
    """Create missing topics, grow partitions, set managed configs. Never deletes or shrinks.
    `only` limits the work to those topic names (tests that need a few topics)."""
    admin = _admin(bootstrap)
    specs = [s for s in topology.topic_specs(profile) if only is None or s.name in only]
    shapes, configs = _describe(admin, specs, timeout)
    result = ApplyResult([], [], [], [], [])

    missing = [s for s in specs if s.name not in shapes]
    if missing:
        futures = admin.create_topics(
            [
                NewTopic(s.name, num_partitions=s.partitions, replication_factor=s.replication_factor, config=s.config)
                for s in missing
            ],
            request_timeout=timeout,
        )
        for name, future in futures.items():
            try:
                future.result(timeout=timeout)
                result.created.append(name)
            except KafkaException as exc:
                if exc.args[0].name() == "TOPIC_ALREADY_EXISTS":  # a concurrent apply won the race
                    result.unchanged.append(name)
                else:
                    result.problems.append(f"{name}: create failed: {exc.args[0].str()}")

    grow = [s for s in specs if s.name in shapes and shapes[s.name][0] < s.partitions]
    if grow:
        for name, future in admin.create_partitions(
            [NewPartitions(s.name, s.partitions) for s in grow], request_timeout=timeout
        ).items():
            try:
                future.result(timeout=timeout)
                result.partitions_increased.append(name)
            except KafkaException as exc:
                result.problems.append(f"{name}: adding partitions failed: {exc.args[0].str()}")
    for s in specs:
        if s.name in shapes and shapes[s.name][0] > s.partitions:
            result.problems.append(
                f"{s.name}: has {shapes[s.name][0]} partitions, file says {s.partitions} "
                "(Kafka cannot shrink partitions; recreate the topic by hand if intended)"
            )
        if s.name in shapes and shapes[s.name][1] != s.replication_factor:
            result.problems.append(
                f"{s.name}: replication {shapes[s.name][1]}, file says {s.replication_factor} "
                "(reassign partitions with kafka-reassign-partitions)"
            )

    to_alter = [s for s in specs if s.name in configs and any(configs[s.name].get(k) != v for k, v in s.config.items())]
    if to_alter:
        resources = []
        for s in to_alter:
            entries = [ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in s.config.items()]
            resources.append(ConfigResource(ConfigResource.Type.TOPIC, s.name, incremental_configs=entries))
        for resource, future in admin.incremental_alter_configs(resources, request_timeout=timeout).items():
            try:
                future.result(timeout=timeout)
                result.configs_updated.append(resource.name)
            except KafkaException as exc:
                result.problems.append(f"{resource.name}: config update failed: {exc.args[0].str()}")

    touched = set(result.created) | set(result.partitions_increased) | set(result.configs_updated)
    result.unchanged.extend(s.name for s in specs if s.name not in touched and s.name not in result.unchanged)
    return result


def topic_ids(bootstrap: str, names: list[str], timeout: float = 15.0) -> dict[str, str]:
    """Each topic's id (a UUID the broker gives a topic when it is created): the same name deleted and
    created again gets a new one."""
    admin = _admin(bootstrap)  # held until the answers are in (its destruction cancels them)
    futures = admin.describe_topics(TopicCollection(names), request_timeout=timeout)
    return {name: str(future.result(timeout=timeout).topic_id) for name, future in futures.items()}
