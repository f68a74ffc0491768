"""How far behind the hub is, from Kafka's own offsets: events the processors' router group has not
committed yet per priority level, trail records not indexed yet, and records on a topic (the
dead-letter size). One implementation
for the ingress's /status + gauges and the operators' /ops page.

Committed offsets are read through a Consumer's `committed()` (the group's coordinator protocol),
never AdminClient.list_consumer_group_offsets: librdkafka segfaults in that admin call when the
coordinator answers NOT_COORDINATOR, e.g. while a broker is down (confluentinc/librdkafka#5040; it
crashed the ingress in tests/chaos/test_ingress_broker_loss.py).
"""

from __future__ import annotations

from confluent_kafka import Consumer, TopicPartition

from hub.kafka_config import consumer_config
from hub.topology import Topology


def router_backlog(bootstrap: str, topology: Topology, timeout_s: float = 10.0) -> dict[int, int]:
    """Pending events per priority level (1..5): end offset minus the router group's committed offset,
    or minus the start of the partition when the group never committed there."""
    consumer = _consumer(bootstrap, topology.router_group)
    try:
        return _levels_lag(consumer, topology, timeout_s)
    finally:
        consumer.close()


def router_and_trail_backlog(
    bootstrap: str, topology: Topology, timeout_s: float = 10.0
) -> tuple[dict[int, int], int | None]:
    """`router_backlog`, and the trail records the processors' trail indexer has not committed yet
    (same group as the router) or None when the group never committed on the trail topic: no worker
    indexes it (the trail index can be disabled), or none has started yet. One consumer for both."""
    consumer = _consumer(bootstrap, topology.router_group)
    try:
        lag, committed_somewhere = _group_lag(consumer, topology.system_topic("trail"), timeout_s)
        return _levels_lag(consumer, topology, timeout_s), (lag if committed_somewhere else None)
    finally:
        consumer.close()


def _levels_lag(consumer: Consumer, topology: Topology, timeout_s: float) -> dict[int, int]:
    return {level: _group_lag(consumer, topology.priority_topic(level), timeout_s)[0] for level in range(1, 6)}


def _group_lag(consumer: Consumer, topic: str, timeout_s: float) -> tuple[int, bool]:
    """The group's lag on `topic` (partitions it never committed count from their start) and whether
    it committed on any partition."""
    marks = partition_watermarks(consumer, topic, timeout_s)
    if not marks:
        return 0, False
    committed = consumer.committed([TopicPartition(topic, p) for p in marks], timeout=timeout_s)
    total, any_committed = 0, False
    for tp in committed:
        low, high = marks[tp.partition]
        any_committed = any_committed or tp.offset >= 0
        total += max(0, high - (tp.offset if tp.offset >= 0 else low))
    return total, any_committed


def topic_records(bootstrap: str, topic: str, timeout_s: float = 10.0) -> int:
    """Records currently on `topic` (within retention): end minus start offsets, all partitions."""
    consumer = _consumer(bootstrap, "carinho.backlog-probe")
    try:
        return sum(high - low for low, high in partition_watermarks(consumer, topic, timeout_s).values())
    finally:
        consumer.close()


def _consumer(bootstrap: str, group: str) -> Consumer:
    # Never subscribes: it only asks the group's committed offsets and the partitions' watermarks.
    return Consumer(consumer_config(bootstrap, group_id=group, client_id="carinho-backlog"))


def partition_watermarks(consumer: Consumer, topic: str, timeout_s: float) -> dict[int, tuple[int, int]]:
    """Each partition's (start, end) offsets, asked through an existing consumer (none: {})."""
    metadata = consumer.list_topics(topic, timeout=timeout_s)
    info = metadata.topics.get(topic)
    if info is None or info.error is not None:
        return {}
    marks = {}
    for p in sorted(info.partitions):
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout_s)
        marks[p] = (low, high)
    return marks


def watermarks(bootstrap: str, topic: str, timeout_s: float = 10.0) -> dict[int, tuple[int, int]]:
    """Each partition's (start, end) offsets: its first record still kept and the next one's."""
    consumer = _consumer(bootstrap, "carinho.backlog-probe")
    try:
        return partition_watermarks(consumer, topic, timeout_s)
    finally:
        consumer.close()
