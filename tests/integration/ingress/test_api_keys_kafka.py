"""CARINHO_KEYS_BACKEND=kafka: keys live on the compacted api-keys topic, every ingress replica follows
it, and `carinho keys` writes it. A key works on a replica started later (it reads the topic to its end
before serving) and a create, rotation or revocation reaches a running replica within seconds."""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from cli.main import main as carinho
from hub.topology import Topology
from ingress.api_keys_kafka import KafkaApiKeyStore, KeyStoreUnavailable
from tests.conftest import create_topics, delete_topics, make_test_topology
from tests.integration.ingress.conftest import INGRESS_TOPICS, RunningIngress, start_ingress
from tests.kafka_support import unique

pytestmark = pytest.mark.integration

LEAD = {"type": "lead.created", "data": {"name": "Ana", "phone": "11987654321"}}


@pytest.fixture
def keys_topology(base_topology: Topology, kafka_bootstrap: str) -> Iterator[Topology]:
    topology = create_topics(
        make_test_topology(base_topology, unique("k")), kafka_bootstrap, only=INGRESS_TOPICS | {"api-keys"}
    )
    yield topology
    delete_topics(topology, kafka_bootstrap)


def send(ingress: RunningIngress, key: str, idem: str) -> int:
    response = httpx.post(
        f"{ingress.url}/v1/events",
        json={**LEAD, "idempotency_key": idem},
        headers={"X-API-Key": key},
        timeout=20,
    )
    return response.status_code


def eventually(ingress: RunningIngress, key: str, status: int, timeout: float = 5.0) -> float:
    """Seconds until a request with `key` gets `status` (fails after `timeout`)."""
    started = time.monotonic()
    n = 0
    while time.monotonic() - started < timeout:
        n += 1
        if send(ingress, key, f"eventually-{unique('e')}-{n}") == status:
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"no {status} within {timeout}s")


def test_keys_on_the_topic_reach_every_replica(keys_topology: Topology, kafka_bootstrap: str, tmp_path: Path) -> None:
    topic = keys_topology.system_topic("api_keys")
    admin = KafkaApiKeyStore(kafka_bootstrap, topic, follow=False)  # what `carinho keys` uses
    early_record, early = admin.create("site")

    ingress = start_ingress(keys_topology, kafka_bootstrap, tmp_path / "unused.json", keys_backend="kafka")
    try:
        assert send(ingress, early, "early-1") == 202  # read to the end before serving: no 401 window
        assert send(ingress, "ck_000000000000_nope", "bad-1") == 401

        _, late = admin.create("site")
        assert eventually(ingress, late, 202) < 5

        rotated_record, rotated = admin.rotate(early_record.key_id, overlap=timedelta(days=1))
        assert eventually(ingress, rotated, 202) < 5
        assert send(ingress, early, "early-2") == 202  # the old key keeps working during the overlap

        admin.revoke(early_record.key_id)
        admin.revoke(rotated_record.key_id)
        assert eventually(ingress, early, 401) < 5
        assert eventually(ingress, rotated, 401) < 5
        assert send(ingress, late, "late-2") == 202  # other keys are untouched
    finally:
        ingress.stop()
        admin.close()

    # A replica started now knows the revocations too.
    second = start_ingress(keys_topology, kafka_bootstrap, tmp_path / "unused.json", keys_backend="kafka")
    try:
        assert send(second, early, "early-3") == 401
        assert send(second, late, "late-3") == 202
    finally:
        second.stop()


def test_the_cli_writes_the_topic(
    keys_topology: Topology, kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CARINHO_KEYS_BACKEND", "kafka")
    monkeypatch.setenv("CARINHO_KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("CARINHO_TOPIC_NAMESPACE", keys_topology.namespace)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert carinho(["keys", "create", "--source", "crm", "--types", "cliente.created"]) == 0
    key = out.getvalue().strip()
    store = KafkaApiKeyStore(kafka_bootstrap, keys_topology.system_topic("api_keys"), follow=False)
    try:
        verified = store.verify(key)
        assert verified.source == "crm" and verified.event_types == frozenset({"cliente.created"})
        assert all(key not in r.model_dump_json() for r in store.records())  # only the hash is stored
    finally:
        store.close()


def test_a_missing_topic_is_a_clear_error(kafka_bootstrap: str) -> None:
    with pytest.raises(KeyStoreUnavailable, match="carinho topics apply"):
        KafkaApiKeyStore(kafka_bootstrap, f"{unique('none')}.api-keys", follow=False, timeout_s=5)
