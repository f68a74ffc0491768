"""The README's contract, end to end, with the real processes `make up` starts (deploy/local/hub.sh):
its own broker, topics, sandbox, connectors, processors and ingress on free ports.

* the README's curl example is accepted and its lead reaches the CRM and Marketing stand-ins exactly
  once each (by Idempotency-Key), and the lead gets its WhatsApp auto-reply;
* a retried request (same idempotency key) is delivered once, not twice;
* an internal producer writing the envelope straight to Kafka is routed and delivered like the rest;
* `up` returns once the processors have partitions (not merely a web port);
* the trail shows every hop; `up` a second time reports what runs; `down` leaves no process and no port.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Producer

from hub.envelope import new_envelope
from hub.kafka_config import producer_config
from hub.topology import load_topology
from ingress.api_keys import ApiKeyStore
from tests.conftest import TEST_KAFKA_PORT
from tests.kafka_support import ROOT, can_run_local_kafka, wait_until

pytestmark = pytest.mark.integration
HUB_SH = ROOT / "deploy" / "local" / "hub.sh"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LocalHub:
    env: dict[str, str]
    run_dir: Path
    ports: dict[str, int]

    def sh(self, action: str, timeout: float = 420) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(HUB_SH), action], env=self.env, capture_output=True, text=True, timeout=timeout)

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def received(self, destination: str) -> dict[str, Any]:
        response = httpx.get(f"{self.url('sandbox')}/_control/{destination}/received", timeout=10)
        response.raise_for_status()
        return dict(response.json())


@pytest.fixture(scope="module")
def local_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalHub]:
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or not can_run_local_kafka():
        pytest.skip("the local hub starts its own broker with deploy/local/kafka.sh (Java + Maven)")
    run_dir = tmp_path_factory.mktemp("hub")
    ports = {
        "kafka": TEST_KAFKA_PORT + 5000,
        "ingress": free_port(),
        "sandbox": free_port(),
        "processors": free_port(),
        "connectors": free_port(),
    }
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CARINHO_")},
        "HUB_RUN_DIR": str(run_dir),
        "KAFKA_PORT": str(ports["kafka"]),
        "CARINHO_INGRESS_PORT": str(ports["ingress"]),
        "CARINHO_SANDBOX_PORT": str(ports["sandbox"]),
        "CARINHO_PROCESSORS_PORT": str(ports["processors"]),
        "CARINHO_CONNECTORS_PORT": str(ports["connectors"]),
    }
    hub = LocalHub(env, run_dir, ports)
    up = hub.sh("up")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield hub
    finally:
        down = hub.sh("down", timeout=180)
        assert down.returncode == 0, down.stdout + down.stderr


def readme_event(key: str) -> dict[str, Any]:
    return {
        "type": "lead.created",
        "data": {"name": "Maria Souza", "phone": "+55 11 98765-4321", "origin": "site"},
        "metadata": {"utm": {"source": "google", "campaign": "cuidado-idosos"}},
        "idempotency_key": key,
    }


def test_up_returns_once_the_processors_have_partitions(local_hub: LocalHub) -> None:
    """`up` waits for the consumer group, not just the web port: no first event waits ~20 s unrouted."""
    health = httpx.get(f"{local_hub.url('processors')}/health", timeout=10).json()
    assert health["status"] == "ok" and health["assigned_partitions"] > 0, health


def test_readme_example_is_delivered_once_per_destination(local_hub: LocalHub) -> None:
    api_key = (local_hub.run_dir / "dev-api-key").read_text().strip()
    headers = {"X-API-Key": api_key}
    first = httpx.post(
        f"{local_hub.url('ingress')}/v1/events", json=readme_event("first-lead-001"), headers=headers, timeout=30
    )
    assert first.status_code == 202, first.text
    event_id = first.json()["event_id"]
    retried = httpx.post(
        f"{local_hub.url('ingress')}/v1/events", json=readme_event("first-lead-001"), headers=headers, timeout=30
    )
    assert retried.status_code == 202 and retried.json()["event_id"] == event_id

    def delivered_to(destination: str) -> list[dict[str, Any]]:
        return [
            i for i in local_hub.received(destination)["items"] if i.get("headers", {}).get("x-event-id") == event_id
        ]

    wait_until(
        lambda: delivered_to("crm") and delivered_to("marketing") and delivered_to("whatsapp"),
        timeout=90,
        message="the lead at CRM, Marketing and the WhatsApp auto-reply",
    )
    time.sleep(2)  # anything duplicated would arrive now
    crm, marketing, whatsapp = delivered_to("crm"), delivered_to("marketing"), delivered_to("whatsapp")
    assert len(crm) == 1 and len(marketing) == 1 and len(whatsapp) == 1
    assert crm[0]["body"]["utm"]["campaign"] == "cuidado-idosos"  # UTM attribution travels
    assert marketing[0]["body"]["utm"]["source"] == "google"
    assert "Maria" in whatsapp[0]["body"]["message"]  # personalized auto-reply
    for name in ("crm", "marketing", "whatsapp"):
        assert local_hub.received(name)["duplicates"] == 0

    def trail_hops() -> set[str]:
        response = httpx.get(f"{local_hub.url('ingress')}/v1/events/{event_id}", headers=headers, timeout=10)
        if response.status_code != 200:
            return set()
        body = response.json()
        hops = body["hops"] if isinstance(body, dict) else body
        return {h["hop"] for h in hops}

    wait_until(lambda: {"accepted", "routed", "delivered"} <= trail_hops(), timeout=30, message="the trail")
    assert "duplicate_dropped" in trail_hops()  # the retried request was recognised
    # Any spelling of the id finds the same trail (a .NET client sends it in upper case).
    upper = httpx.get(f"{local_hub.url('ingress')}/v1/events/{event_id.upper()}", headers=headers, timeout=10)
    assert upper.status_code == 200 and upper.json()["event_id"] == event_id and upper.json()["found"] is True
    # In time order the event is accepted before anything else happens to it (the hop's time is the
    # write's start: the processors may route it before the ingress has its ack).
    assert upper.json()["hops"][0]["hop"] == "accepted"


def test_a_contact_who_writes_twice_is_two_leads_greeted_once(local_hub: LocalHub) -> None:
    """Each WhatsApp message is a lead (CRM gets both); the auto-reply goes once per phone and day."""
    key = ApiKeyStore(local_hub.run_dir / "api-keys.json").create("whatsapp")[1]
    time.sleep(1.5)  # the ingress re-reads the key file every second
    phone = "5511955554444"
    event_ids = []
    for n, text in enumerate(("Oi, preciso de uma cuidadora", "É para minha mãe, zona sul")):
        message = {"type": "ReceivedCallback", "fromMe": False, "messageId": f"twice-{n}", "phone": phone}
        answer = httpx.post(
            f"{local_hub.url('ingress')}/v1/webhooks/whatsapp?token={key}",
            json={**message, "senderName": "Aparecida", "text": {"message": text}},
            timeout=30,
        )
        assert answer.status_code == 202, answer.text
        event_ids.append(answer.json()["event_id"])

    def received(destination: str) -> list[dict[str, Any]]:
        items = local_hub.received(destination)["items"]
        return [i for i in items if i.get("headers", {}).get("x-event-id") in event_ids]

    wait_until(lambda: len(received("crm")) == 2, timeout=90, message="both leads at the CRM")

    def skipped() -> bool:  # the second reply's trail says why it was not sent
        trail = httpx.get(f"{local_hub.url('processors')}/v1/trail/{event_ids[1]}", timeout=10).json()
        return any(h["hop"] == "duplicate_dropped" and h.get("destination") == "whatsapp" for h in trail["hops"])

    wait_until(skipped, timeout=60, message="the second auto-reply skipped")
    assert len(received("whatsapp")) == 1 and received("whatsapp")[0]["headers"]["x-event-id"] == event_ids[0]


def test_internal_producer_writes_straight_to_kafka(local_hub: LocalHub) -> None:
    topology = load_topology(ROOT / "topics.yaml")
    envelope = new_envelope(
        type="servico.completed",
        source="operacao",
        priority=topology.default_priority("servico.completed"),
        idempotency_key="servico-99812-done",
        data={"servico_id": "99812", "cliente_id": "C-120", "completed_at": "2026-11-29T17:00:00Z", "hours": 6},
    )
    producer = Producer(producer_config(f"127.0.0.1:{local_hub.ports['kafka']}", client_id="operacao-batch"))
    producer.produce(
        topology.priority_topic(envelope.priority),
        value=envelope.to_json(),
        key=envelope.kafka_key(),
        headers=envelope.kafka_headers(),
    )
    assert producer.flush(15) == 0

    def billed() -> list[dict[str, Any]]:
        return [
            i
            for i in local_hub.received("financeiro")["items"]
            if i.get("headers", {}).get("x-event-id") == str(envelope.event_id)
        ]

    wait_until(lambda: billed(), timeout=90, message="the service at Financeiro")
    assert billed()[0]["body"]["servico_id"] == "99812" and billed()[0]["body"]["horas"] == 6


def test_up_is_idempotent_and_status_reports(local_hub: LocalHub) -> None:
    again = local_hub.sh("up")
    assert again.returncode == 0, again.stderr
    for service in ("sandbox", "connectors", "processors", "ingress"):
        assert f"{service} already running" in again.stdout
    assert "already running" in again.stdout  # kafka.sh says so for its node too
    status = local_hub.sh("status")
    assert status.stdout.count(": running") >= 5
    # kafka.sh on its own, as the runbook uses it, finds this hub's broker through its hub.env.
    plain = {k: v for k, v in local_hub.env.items() if k not in ("KAFKA_PORT", "KAFKA_RUN_DIR")}
    plain["CARINHO_HUB_ENV_FILE"] = str(local_hub.run_dir / "hub.env")
    kafka = subprocess.run(
        [str(ROOT / "deploy" / "local" / "kafka.sh"), "status"], env=plain, capture_output=True, text=True, timeout=60
    )
    assert "running (pid" in kafka.stdout and f"127.0.0.1:{local_hub.ports['kafka']}" in kafka.stdout, kafka.stdout


def test_down_leaves_nothing_behind(local_hub: LocalHub) -> None:
    pids = [int(p.read_text()) for p in (local_hub.run_dir / "pids").glob("*.pid")]
    pids += [int(p.read_text()) for p in (local_hub.run_dir / "kafka").glob("node*/kafka.pid")]
    assert len(pids) == 5
    down = local_hub.sh("down", timeout=180)
    assert down.returncode == 0, down.stdout + down.stderr
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists(), f"pid {pid} still running after down"
    for name, port in local_hub.ports.items():
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, f"{name} port {port} still open after down"
    # the fixture's own `down` afterwards must be a harmless no-op
