"""Replaying twice delivers once: with the real connectors and sandbox when the connectors package
is importable; otherwise at the topic level (both replays carry the same delivery_id, which is the
destination's Idempotency-Key)."""

from __future__ import annotations

import importlib.util

import pytest

from hub.delivery import DeliveryRecord
from hub.topology import Topology
from tests.integration.operators.conftest import RunCli
from tests.integration.operators.seed import Seeder, delivery
from tests.kafka_support import read_topic

pytestmark = pytest.mark.integration

HAVE_CONNECTORS = (
    importlib.util.find_spec("connectors.service") is not None
    and importlib.util.find_spec("tests.integration.connectors.support") is not None
)


def _replay_twice(carinho: RunCli, ids: list[str]) -> None:
    first = carinho("dlq", "replay", "--destination", "crm", "--yes")
    assert first.code == 0 and f"replayed {len(ids)} of {len(ids)}" in first.out, first.out + first.err
    # An operator forcing a second replay of the same records (e.g. unsure the first went through).
    second = carinho("dlq", "replay", "--destination", "crm", "--status", "replayed", "--yes")
    assert second.code == 0 and f"replayed {len(ids)} of {len(ids)}" in second.out, second.out + second.err


def test_replay_twice_same_delivery_ids_on_the_retry_tier(
    seeder: Seeder, carinho: RunCli, hub: Topology, kafka_bootstrap: str
) -> None:
    records = [delivery("crm") for _ in range(3)]
    ids = [seeder.dead_letter(r, reason="retries_exhausted", status=503) for r in records]
    _replay_twice(carinho, ids)
    sent = read_topic(kafka_bootstrap, hub.retry_topics("crm")[0], expect=6)
    got = sorted(str(DeliveryRecord.from_json(r.value or b"").delivery_id) for r in sent)
    assert got == sorted(2 * [str(r.delivery_id) for r in records])


@pytest.mark.skipif(not HAVE_CONNECTORS, reason="connectors package not available: topic-level test above covers it")
def test_replay_twice_is_delivered_once_at_the_sandbox(
    seeder: Seeder, carinho: RunCli, hub: Topology, kafka_bootstrap: str
) -> None:
    from tests.integration.connectors.support import (
        ConnectorThread,
        Sandbox,
        fast_topology,
        free_port,
        settings_for,
        wait_for,
    )

    records = [delivery("crm") for _ in range(3)]
    ids = [seeder.dead_letter(r, reason="retries_exhausted", status=503) for r in records]
    sandbox = Sandbox(free_port(19395)).start()
    try:
        topology = fast_topology(hub)
        with ConnectorThread(settings_for(kafka_bootstrap, sandbox), topology, ["crm"]):
            _replay_twice(carinho, ids)
            got = wait_for(
                lambda: (r := sandbox.received("crm"))["unique"] >= 3 and r,
                timeout=40,
                message="3 deliveries at the sandbox",
            )
            # Give the second replay time to arrive too, then check nothing was delivered twice.
            wait_for(
                lambda: len(read_topic(kafka_bootstrap, topology.system_topic("deliveries"), timeout=3)) >= 6,
                timeout=40,
                message="both replays attempted",
            )
            got = sandbox.received("crm")
        assert got["unique"] == 3
        assert {item["idempotency_key"] for item in got["items"]} == {str(r.delivery_id) for r in records}
    finally:
        sandbox.stop()
