"""How far behind the hub is, from Kafka's own offsets: events the processors' router group has not
committed yet per priority level, and records on a topic (the dead-letter size). One implementation
for the ingress's /status + gauges and the operators' /ops page."""

from __future__ import annotations

from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from hub.topology import Topology


def router_backlog(admin: AdminClient, topology: Topology, timeout_s: float = 10.0) -> dict[int, int]:
    """Pending events per priority level (1..5): end offset minus the router group's committed offset,
    or minus the start of the partition when the group never committed there."""
    partitions = _partitions(admin, topology.event_topics, timeout_s)
    earliest, latest = _offsets(admin, partitions, timeout_s)
    committed: dict[tuple[str, int], int] = {}
    if partitions:
        request = [ConsumerGroupTopicPartitions(topology.router_group, partitions)]
        for future in admin.list_consumer_group_offsets(request, request_timeout=timeout_s).values():
            for tp in future.result().topic_partitions:
                if tp.offset >= 0:
                    committed[(tp.topic, tp.partition)] = tp.offset
    backlog = {}
    for level in range(1, 6):
        topic = topology.priority_topic(level)
        backlog[level] = sum(
            max(0, end - committed.get(key, earliest[key])) for key, end in latest.items() if key[0] == topic
        )
    return backlog


def topic_records(admin: AdminClient, topic: str, timeout_s: float = 10.0) -> int:
    """Records currently on `topic` (within retention): end minus start offsets, all partitions."""
    partitions = _partitions(admin, [topic], timeout_s)
    earliest, latest = _offsets(admin, partitions, timeout_s)
    return sum(end - earliest[key] for key, end in latest.items())


def _partitions(admin: AdminClient, topics: list[str], timeout_s: float) -> list[TopicPartition]:
    metadata = admin.list_topics(timeout=timeout_s)
    out: list[TopicPartition] = []
    for topic in topics:
        info = metadata.topics.get(topic)
        if info is not None and info.error is None:
            out += [TopicPartition(topic, p) for p in sorted(info.partitions)]
    return out


def _offsets(
    admin: AdminClient, partitions: list[TopicPartition], timeout_s: float
) -> tuple[dict[tuple[str, int], int], dict[tuple[str, int], int]]:
    if not partitions:
        return {}, {}
    result = []
    for spec in (OffsetSpec.earliest(), OffsetSpec.latest()):
        futures = admin.list_offsets({tp: spec for tp in partitions}, request_timeout=timeout_s)
        result.append({(tp.topic, tp.partition): future.result().offset for tp, future in futures.items()})
    return result[0], result[1]
