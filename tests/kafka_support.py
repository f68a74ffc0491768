"""Real-broker helpers for the tests: start the broker (local KRaft script, an external cluster, or
testcontainers), read topics back, produce raw records. Nothing here mocks Kafka."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from hub.kafka_config import admin_config, consumer_config, producer_config
from hub.kafka_probe import wait_for_brokers

ROOT = Path(__file__).resolve().parent.parent
KAFKA_SH = ROOT / "deploy" / "local" / "kafka.sh"


@dataclass
class LocalKafka:
    """A broker (or 3-node cluster) started by deploy/local/kafka.sh on its own ports and run dir."""

    port: int
    run_dir: Path
    nodes: int = 1

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{self.port + i}" for i in range(self.nodes))

    def _env(self) -> dict[str, str]:
        return {**os.environ, "KAFKA_PORT": str(self.port), "KAFKA_RUN_DIR": str(self.run_dir)}

    def run(self, *args: str, timeout: float = 300) -> None:
        subprocess.run([str(KAFKA_SH), *args], env=self._env(), check=True, timeout=timeout, stdout=subprocess.DEVNULL)

    def start(self) -> None:
        self.run("reset")
        self.run("start", *(["--cluster"] if self.nodes == 3 else []))

    def stop(self) -> None:
        self.run("stop")

    def stop_node(self, n: int) -> None:
        self.run("stop-node", str(n))

    def start_node(self, n: int) -> None:
        self.run("start-node", str(n))

    def kill_node(self, n: int) -> None:
        """SIGKILL one broker (no clean shutdown)."""
        pid_file = self.run_dir / f"node{n}" / "kafka.pid"
        pid = int(pid_file.read_text())
        os.kill(pid, 9)
        pid_file.unlink()


def can_run_local_kafka() -> bool:
    return shutil.which("java") is not None and (
        shutil.which("mvn") is not None or any((ROOT / ".cache" / "kafka").glob("*/libs/.complete"))
    )


def start_testcontainers_kafka() -> tuple[str, Any]:
    from testcontainers.kafka import KafkaContainer

    container = KafkaContainer("apache/kafka:4.1.1").with_kraft()
    container.start()
    return container.get_bootstrap_server(), container


def unique(prefix: str = "t") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def produce(
    bootstrap: str, topic: str, value: bytes, key: bytes | None = None, headers: list[tuple[str, bytes]] | None = None
) -> None:
    producer = Producer(producer_config(bootstrap, client_id="tests"))
    producer.produce(topic, value=value, key=key, headers=headers)
    assert producer.flush(15) == 0, "test producer could not deliver"


@dataclass
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]


def read_topic(
    bootstrap: str, topic: str, *, expect: int | None = None, timeout: float = 10.0, idle: float = 1.0
) -> list[Record]:
    """Read a topic from the beginning. Stops when `expect` records arrived, or after `idle` seconds
    without new records (once at the end of every partition), or at `timeout`."""
    consumer = Consumer(
        consumer_config(
            bootstrap,
            group_id=unique("reader"),
            client_id="tests",
            **{"enable.partition.eof": True, "isolation.level": "read_uncommitted"},
        )
    )
    metadata = consumer.list_topics(topic, timeout=10)
    partitions = list(metadata.topics[topic].partitions) if topic in metadata.topics else []
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    out: list[Record] = []
    eof: set[int] = set()
    deadline = time.monotonic() + timeout
    last_new = time.monotonic()
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None:
                if expect is None and len(eof) == len(partitions) and time.monotonic() - last_new > idle:
                    break
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    eof.add(msg.partition())
                    continue
                raise RuntimeError(msg.error().str())
            eof.discard(msg.partition())
            last_new = time.monotonic()
            out.append(
                Record(
                    msg.topic(),
                    msg.partition(),
                    msg.offset(),
                    msg.key(),
                    msg.value(),
                    {k: v for k, v in (msg.headers() or [])},
                )
            )
            if expect is not None and len(out) >= expect:
                break
    finally:
        consumer.close()
    return out


_LEADER_MOVING = {
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
    KafkaError._TIMED_OUT,
    KafkaError._DESTROY_BROKER,  # a SIGKILLed broker's handle is dropped while a request waits on it
    KafkaError._TRANSPORT,
    KafkaError.OFFSET_NOT_AVAILABLE,  # a new leader's high watermark not caught up yet (KIP-207)
}


def topic_size(bootstrap: str, topic: str) -> int:
    """Records currently in a topic (sum of high - low watermarks); retries while leaders move."""
    consumer = Consumer(consumer_config(bootstrap, group_id=unique("size"), client_id="tests"))
    try:
        for attempt in range(20):
            try:
                metadata = consumer.list_topics(topic, timeout=10)
                total = 0
                for p in metadata.topics[topic].partitions:
                    low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                    total += high - low
                return total
            except KafkaException as exc:
                transient = exc.args[0].retriable() or exc.args[0].code() in _LEADER_MOVING
                if attempt == 19 or not transient:
                    raise
                time.sleep(0.25)
        raise AssertionError("unreachable")
    finally:
        consumer.close()


def wait_topics_ready(bootstrap: str, topics: list[str], timeout: float = 30.0) -> None:
    """Block until every partition of `topics` has a leader (fresh topics take a moment)."""
    admin = AdminClient(admin_config(bootstrap))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        metadata = admin.list_topics(timeout=10)
        ready = all(
            name in metadata.topics
            and metadata.topics[name].error is None
            and metadata.topics[name].partitions
            and all(p.leader >= 0 and p.error is None for p in metadata.topics[name].partitions.values())
            for name in topics
        )
        if ready:
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"topics not ready after {timeout}s")
    # Metadata can name a leader before that broker has created the partition: ask each one.
    consumer = Consumer(consumer_config(bootstrap, group_id=unique("ready"), client_id="tests"))
    try:
        for name in topics:
            for p in metadata.topics[name].partitions:
                while True:
                    try:
                        consumer.get_watermark_offsets(TopicPartition(name, p), timeout=5)
                        break
                    except KafkaException:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.1)
    finally:
        consumer.close()


def wait_until(predicate: Any, timeout: float = 20.0, interval: float = 0.2, message: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


def broker_ready(bootstrap: str, brokers: int = 1, timeout: float = 60) -> bool:
    return wait_for_brokers(bootstrap, brokers, timeout)


def iter_free_ports(start: int) -> Iterator[int]:
    import socket

    port = start
    while True:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                port += 1
                continue
        yield port
        port += 1
