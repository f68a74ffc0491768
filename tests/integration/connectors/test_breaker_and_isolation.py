"""A destination that goes down opens its breaker: its partitions pause (records wait in Kafka, no
attempts spent besides the half-open probes), other destinations keep flowing, state is visible on the
health topic and /status, and everything drains once the destination recovers."""

from __future__ import annotations

import itertools
import time

import httpx
import orjson
import pytest

from hub.topology import Topology
from tests.integration.connectors.support import (
    ConnectorThread,
    Sandbox,
    delivery,
    fast_topology,
    free_port,
    send,
    settings_for,
    wait_for,
)
from tests.kafka_support import read_topic, topic_size

pytestmark = pytest.mark.integration


def _health(bootstrap: str, topology: Topology, name: str) -> dict[str, object] | None:
    latest = None
    for record in read_topic(bootstrap, topology.system_topic("health"), idle=0.3, timeout=5):
        if record.key == f"destination:{name}".encode():
            latest = orjson.loads(record.value or b"")
    return latest


def test_breaker_pauses_destination_without_spending_attempts_and_drains_after_recovery(
    kafka_bootstrap: str, hub: Topology, sandbox: Sandbox
) -> None:
    # Five 1 s tiers: the probes alone can never spend a record's schedule during this outage.
    topology = fast_topology(hub, tiers=("1s",) * 5, open_for="1500ms", consecutive_failures=3, concurrency=1)
    port = free_port(19408)
    settings = settings_for(kafka_bootstrap, sandbox, status_port=port)
    sandbox.faults("crm", down=True)
    crm = [delivery("crm") for _ in range(30)]
    financeiro = [delivery("financeiro", path="/api/clientes") for _ in range(30)]
    with ConnectorThread(settings, topology, ["crm", "financeiro"]) as connector:
        send(kafka_bootstrap, topology, crm + financeiro)
        wait_for(
            lambda: connector.call(lambda: connector.worker("crm").breaker.state) == "open", message="crm breaker open"
        )
        # The other destination is not slowed down by the outage.
        wait_for(lambda: sandbox.received("financeiro")["unique"] == 30, timeout=10, message="financeiro flowing")

        status = httpx.get(f"http://127.0.0.1:{port}/status").json()["destinations"]["crm"]
        assert status["breaker_state"] in ("open", "half_open")
        assert (
            connector.call(lambda: len(connector.worker("crm").pauses.paused)) > 0
            or status["breaker_state"] == "half_open"
        )
        assert "carinho_connector_breaker_state" in httpx.get(f"http://127.0.0.1:{port}/metrics").text
        assert wait_for(
            lambda: (_health(kafka_bootstrap, topology, "crm") or {}).get("breaker_state") == "open" or None,
            timeout=10,
            message="health topic shows the open breaker",
        )

        # While open, only half-open probes reach the destination (1 per 1.5 s at most).
        before = sandbox.received("crm")["requests"]
        time.sleep(4.0)
        during = sandbox.received("crm")["requests"] - before
        assert during <= 4, f"{during} attempts while the breaker was open"
        assert sandbox.received("crm")["unique"] == 0

        sandbox.heal("crm")
        got = wait_for(
            lambda: (r := sandbox.received("crm"))["unique"] == 30 and r,
            timeout=25,
            message="crm drained after recovery",
        )
        wait_for(
            lambda: connector.call(lambda: connector.worker("crm").breaker.state) == "closed", message="breaker closed"
        )
        assert wait_for(
            lambda: (_health(kafka_bootstrap, topology, "crm") or {}).get("breaker_state") == "closed" or None,
            timeout=10,
            message="health topic shows the closed breaker",
        )
    assert got["duplicates"] == 0
    assert {i["idempotency_key"] for i in got["items"]} == {str(r.delivery_id) for r in crm}
    # Attempts overall: the 3 that opened the breaker + the probes + one success each; nothing else.
    assert got["requests"] <= 30 + 3 + 8
    assert topic_size(kafka_bootstrap, topology.dead_letter_topic) == 0


def test_per_key_order_is_kept_on_the_main_path(kafka_bootstrap: str, hub: Topology, sandbox: Sandbox) -> None:
    topology = fast_topology(hub, concurrency=32)
    sandbox.faults("crm", latency_ms=5)
    keys = [f"cliente-{n}" for n in range(6)]
    records = [delivery("crm", key=keys[i % 6], payload={"seq": i // 6, "key": keys[i % 6]}) for i in range(180)]
    with ConnectorThread(settings_for(kafka_bootstrap, sandbox), topology, ["crm"]):
        send(kafka_bootstrap, topology, records)
        got = wait_for(
            lambda: (r := sandbox.received("crm"))["unique"] >= 180 and r, timeout=30, message="180 deliveries"
        )
    seen: dict[str, list[int]] = {}
    for item in got["items"]:
        seen.setdefault(item["body"]["key"], []).append(item["body"]["seq"])
    assert all(seqs == list(range(30)) for seqs in seen.values()), seen
    # ...while different keys interleave (the per-key rule is not a global lock).
    arrival = [item["body"]["key"] for item in got["items"]]
    switches = sum(1 for a, b in itertools.pairwise(arrival) if a != b)
    assert switches > 60
