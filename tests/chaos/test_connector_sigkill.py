"""SIGKILL the connector process mid-load (with injected 500s feeding the retry tiers): after a restart
every record is delivered (per the sandbox), and any duplicate the destination saw carries the same
Idempotency-Key as the original — nothing lost, nothing delivered under a new identity."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from hub.topology import Topology
from tests.integration.connectors.support import Sandbox, delivery, fast_topology, free_port, send, wait_for
from tests.kafka_support import ROOT, topic_size

pytestmark = pytest.mark.chaos

TOTAL = 1500


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    box = Sandbox(free_port(18390)).start()
    try:
        yield box
    finally:
        box.stop()


def _start_connector(bootstrap: str, sandbox: Sandbox, topology_file: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARINHO_")}
    env.update(
        {
            "CARINHO_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "CARINHO_SANDBOX_URL": sandbox.url,
            "CARINHO_TOPOLOGY_FILE": str(topology_file),
            "CARINHO_STATUS_PORT": "0",
            "CARINHO_COMMIT_INTERVAL_MS": "100",
            "CARINHO_LOG_LEVEL": "WARNING",
        }
    )
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", "connectors", "--destinations", "crm"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
    )


def test_sigkill_mid_load_loses_nothing(kafka_bootstrap: str, hub: Topology, sandbox: Sandbox, tmp_path: Path) -> None:
    topology = fast_topology(hub, tiers=("1s", "2s", "2s"), consecutive_failures=1000, concurrency=32)
    topology_file = tmp_path / "topics.yaml"
    topology_file.write_text(yaml.safe_dump(topology.model_dump(mode="json"), allow_unicode=True))
    sandbox.faults("crm", latency_ms=3, error_rate=0.05, status_code=500)
    records = [delivery("crm", key=f"cliente-{i % 50}", payload={"seq": i}) for i in range(TOTAL)]
    send(kafka_bootstrap, topology, records)

    first = _start_connector(kafka_bootstrap, sandbox, topology_file)
    try:
        wait_for(lambda: sandbox.received("crm")["unique"] >= TOTAL // 3, timeout=60, message="a third delivered")
        first.send_signal(signal.SIGKILL)
        assert first.wait(10) == -signal.SIGKILL
    finally:
        if first.poll() is None:
            first.kill()
    at_kill = sandbox.received("crm")["unique"]
    assert at_kill < TOTAL, "the load finished before the kill; nothing was tested"

    second = _start_connector(kafka_bootstrap, sandbox, topology_file)
    try:
        got = wait_for(
            lambda: (r := sandbox.received("crm"))["unique"] >= TOTAL and r,
            timeout=90,
            message="every record delivered after the restart",
            interval=0.5,
        )
    finally:
        second.send_signal(signal.SIGTERM)
        try:
            second.wait(30)
        except subprocess.TimeoutExpired:
            second.kill()

    expected = {str(r.delivery_id) for r in records}
    delivered = [item["idempotency_key"] for item in got["items"]]
    assert len(delivered) == TOTAL and set(delivered) == expected  # all, each once per key
    assert set(got["duplicate_keys"]) <= expected  # re-deliveries only under the original key
    assert got["requests"] == got["unique"] + got["duplicates"] + got["failed"]
    assert got["failed"] > 0  # the retry tiers were exercised across the kill
    assert topic_size(kafka_bootstrap, topology.dead_letter_topic) == 0
