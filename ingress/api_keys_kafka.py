"""API keys on a compacted Kafka topic, for hubs with several ingress replicas (CARINHO_KEYS_BACKEND=kafka).

One record per key (Kafka key = key id, value = the `ApiKeyRecord` JSON: the hash, never the key).
Every ingress follows the topic from the beginning in a background thread, so a key created, rotated
or revoked by `carinho keys` on any machine takes effect on every replica within about a second.
The ingress reads the topic to its end before it serves: a restarted replica knows every key.
Writes wait for acks=all; create/rotate/revoke are the file store's own code (`ApiKeyStore`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition

from hub.kafka_config import consumer_config, producer_config
from ingress.api_keys import ApiKeyRecord, ApiKeyStore, KeyFile, Verified

log = logging.getLogger("ingress.api_keys")


class KeyStoreUnavailable(Exception):
    """The key topic could not be read to its end (Kafka down or the topic missing)."""


class KafkaApiKeyStore(ApiKeyStore):
    def __init__(self, bootstrap: str, topic: str, *, follow: bool = True, timeout_s: float = 15.0):
        self.topic = topic
        self.timeout_s = timeout_s
        self._by_id: dict[str, ApiKeyRecord] = {}
        self._grants: dict[str, tuple[ApiKeyRecord, Verified, float | None]] = {}  # see ApiKeyStore.verify
        self._consumer = Consumer(
            consumer_config(bootstrap, group_id="carinho.api-keys-view", client_id="carinho-api-keys")
        )
        self._producer = Producer(producer_config(bootstrap, client_id="carinho-api-keys", linger_ms=0))
        self._consumer_lock = threading.Lock()
        self._stop = threading.Event()
        self._assign()
        self.catch_up()
        self._thread: threading.Thread | None = None
        if follow:
            self._thread = threading.Thread(target=self._follow, name="api-keys-view", daemon=True)
            self._thread.start()

    def _assign(self) -> None:
        try:
            metadata = self._consumer.list_topics(self.topic, timeout=self.timeout_s)
        except KafkaException as exc:
            raise KeyStoreUnavailable(f"cannot reach Kafka for {self.topic}: {exc}") from None
        info = metadata.topics.get(self.topic)
        if info is None or info.error is not None or not info.partitions:
            raise KeyStoreUnavailable(f"topic {self.topic} is missing: run `carinho topics apply`")
        self._partitions = sorted(info.partitions)
        self._consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in self._partitions])

    def catch_up(self) -> None:
        """Read the topic up to its current end (what every write acknowledged so far)."""
        deadline = time.monotonic() + self.timeout_s
        with self._consumer_lock:
            try:
                ends = {
                    p: self._consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=self.timeout_s)[1]
                    for p in self._partitions
                }
            except KafkaException as exc:
                raise KeyStoreUnavailable(f"cannot read the end of {self.topic}: {exc}") from None
            while True:
                positions = {
                    tp.partition: tp.offset
                    for tp in self._consumer.position([TopicPartition(self.topic, p) for p in self._partitions])
                }
                if all(end == 0 or positions.get(p, -1) >= end for p, end in ends.items()):
                    return
                if time.monotonic() > deadline:
                    raise KeyStoreUnavailable(f"{self.topic} not read to its end within {self.timeout_s:g}s")
                self._apply(self._consumer.consume(500, timeout=0.2))

    def _follow(self) -> None:
        while not self._stop.is_set():
            with self._consumer_lock:
                messages = self._consumer.consume(500, timeout=0.5)
            self._apply(messages)

    def _apply(self, messages: list[object]) -> None:
        for msg in messages:
            error = msg.error()  # type: ignore[attr-defined]
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    log.warning("api-keys topic read error", extra={"error": str(error)})
                continue
            key_id = (msg.key() or b"").decode(errors="replace")  # type: ignore[attr-defined]
            value = msg.value()  # type: ignore[attr-defined]
            if value is None:
                self._by_id.pop(key_id, None)  # tombstone: the record was deleted
                continue
            try:
                self._by_id[key_id] = ApiKeyRecord.model_validate_json(value)
            except ValueError:
                log.warning("unreadable api-key record skipped", extra={"key_id": key_id})

    # ---- the file store's hooks -------------------------------------------------------------------
    def _reload(self, force: bool = False, *, look_now: bool = False) -> None:
        # The follower thread applies new records as they arrive; only the CLI reads on demand.
        if force and self._thread is None:  # the CLI: read what others wrote since it started
            self.catch_up()

    @contextmanager
    def _locked(self) -> Iterator[KeyFile]:
        """Read-modify-write: the changed records are written (acks=all) when the block ends."""
        self.catch_up()
        before = dict(self._by_id)
        data = KeyFile(keys=list(before.values()))
        yield data
        changed = [r for r in data.keys if before.get(r.key_id) != r]
        errors: list[str] = []

        def on_delivery(err: KafkaError | None, _msg: object) -> None:
            if err is not None:
                errors.append(err.str())

        for record in changed:
            self._producer.produce(
                self.topic, key=record.key_id.encode(), value=record.model_dump_json().encode(), on_delivery=on_delivery
            )
        left = self._producer.flush(self.timeout_s)
        if left or errors:
            raise KeyStoreUnavailable(f"key records not acknowledged by Kafka: {errors or f'{left} pending'}")
        for record in changed:
            self._by_id[record.key_id] = record

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=3)
        with self._consumer_lock:
            self._consumer.close()
        self._producer.flush(5)


def open_key_store(
    backend: str, *, keys_file: Path, reload_interval_s: float, bootstrap: str, topic: str, follow: bool
) -> ApiKeyStore:
    """The configured store: the JSON file (one host) or the Kafka topic (several replicas)."""
    if backend == "kafka":
        return KafkaApiKeyStore(bootstrap, topic, follow=follow)
    return ApiKeyStore(keys_file, reload_interval_s)
