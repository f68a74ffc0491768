"""Transient failures go through the retry tiers (never blocking the main partition), Retry-After is
honored, permanent failures and spent schedules end on the dead-letter topic with the contract headers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from hub.dead_letter import DeadLetterInfo
from hub.topology import Topology
from hub.trail import TrailHop
from tests.integration.connectors.support import (
    ConnectorThread,
    Sandbox,
    delivery,
    fast_topology,
    send,
    settings_for,
    wait_for,
)
from tests.kafka_support import read_topic, topic_size

pytestmark = pytest.mark.integration


def _history(bootstrap: str, topology: Topology, expect: int) -> list[dict[str, object]]:
    rows = [
        orjson.loads(r.value or b"") for r in read_topic(bootstrap, topology.system_topic("deliveries"), expect=expect)
    ]
    return sorted(rows, key=lambda r: int(r["attempt"]))  # type: ignore[call-overload]


def test_500_then_success_via_retry_tier(kafka_bootstrap: str, hub: Topology, sandbox: Sandbox) -> None:
    topology = fast_topology(hub, tiers=("1s", "2s"))
    sandbox.faults("crm", fail_next=1, status_code=500)
    record = delivery("crm")
    followers = [delivery("crm") for _ in range(5)]  # other keys on the main path are not held back
    with ConnectorThread(settings_for(kafka_bootstrap, sandbox), topology, ["crm"]):
        send(kafka_bootstrap, topology, [record, *followers])
        got = wait_for(lambda: (r := sandbox.received("crm"))["unique"] >= 6 and r, message="6 deliveries")
    assert got["failed"] == 1 and got["duplicates"] == 0
    failure = got["failures"][0]
    retried_key = failure["idempotency_key"]
    delivered_at = {i["idempotency_key"]: i["received_at"] for i in got["items"]}
    assert delivered_at[retried_key] - failure["at"] >= 0.9  # waited for tier 1 (1 s, no jitter)
    others = [t for k, t in delivered_at.items() if k != retried_key]
    assert max(others) < delivered_at[retried_key]  # the main path went on meanwhile

    rows = [r for r in _history(kafka_bootstrap, topology, 7) if r["delivery_id"] == retried_key]
    assert [(r["attempt"], r["outcome"], r["status"]) for r in rows] == [(1, "retry", 500), (2, "delivered", 200)]
    hops = [
        TrailHop.from_json(t.value or b"")
        for t in read_topic(kafka_bootstrap, topology.system_topic("trail"), expect=14)
    ]
    mine = [h.hop for h in hops if str(h.delivery_id) == retried_key]
    assert mine == ["attempt", "retry_scheduled", "attempt", "delivered"]
    assert topic_size(kafka_bootstrap, topology.retry_topics("crm")[0]) == 1
    assert topic_size(kafka_bootstrap, topology.dead_letter_topic) == 0


def test_429_retry_after_is_honored(kafka_bootstrap: str, hub: Topology, sandbox: Sandbox) -> None:
    topology = fast_topology(hub, tiers=("1s", "2s"))
    sandbox.faults("financeiro", fail_next=1, status_code=429, retry_after=3)
    record = delivery("financeiro", path="/api/clientes")
    with ConnectorThread(settings_for(kafka_bootstrap, sandbox), topology, ["financeiro"]):
        send(kafka_bootstrap, topology, [record])
        got = wait_for(
            lambda: (r := sandbox.received("financeiro"))["unique"] >= 1 and r,
            timeout=20,
            message="delivery after Retry-After",
        )
    waited = got["items"][0]["received_at"] - got["failures"][0]["at"]
    assert got["failures"][0]["status"] == 429
    assert waited >= 2.9, f"Retry-After 3 s not honored (retried after {waited:.2f}s)"
    assert waited < 8
    trail = [
        TrailHop.from_json(t.value or b"")
        for t in read_topic(kafka_bootstrap, topology.system_topic("trail"), expect=4)
    ]
    scheduled = next(h for h in trail if h.hop == "retry_scheduled")
    assert scheduled.detail["retry_after_s"] == 3.0 and scheduled.detail["delay_s"] >= 3.0


def test_permanent_400_goes_straight_to_dead_letter(kafka_bootstrap: str, hub: Topology, sandbox: Sandbox) -> None:
    topology = fast_topology(hub)
    sandbox.faults(
        "crm", fail_next=1, status_code=400, body={"error": "invalid phone", "message": "telefone 11987654321 invalido"}
    )
    record = delivery("crm")
    with ConnectorThread(settings_for(kafka_bootstrap, sandbox), topology, ["crm"]):
        send(kafka_bootstrap, topology, [record])
        dead = read_topic(kafka_bootstrap, topology.dead_letter_topic, expect=1, timeout=20)
    assert len(dead) == 1
    assert dead[0].value == record.to_json() and dead[0].key == record.entity_key.encode()
    info = DeadLetterInfo.from_headers(list(dead[0].headers.items()))
    assert info.stage == "connectors" and info.permanent and info.reason == "http_400"
    assert info.attempts == 1 and info.last_status_code == 400 and info.destination == "crm"
    assert info.original_topic == topology.delivery_topic("crm") and info.original_offset == 0
    assert info.delivery_id == str(record.delivery_id) and info.event_id == str(record.event_id)
    assert "11987654321" not in info.error_message and "invalid phone" in info.error_message
    assert sandbox.received("crm")["unique"] == 0
    assert topic_size(kafka_bootstrap, topology.retry_topics("crm")[0]) == 0
    rows = _history(kafka_bootstrap, topology, 1)
    assert rows[0]["outcome"] == "dead_letter" and rows[0]["status"] == 400


def test_spent_schedule_dead_letters_as_transient(kafka_bootstrap: str, hub: Topology, sandbox: Sandbox) -> None:
    topology = fast_topology(hub, tiers=("1s", "1s"), consecutive_failures=50)
    sandbox.faults("operacao", status_code=503, error_rate=1.0)
    record = delivery("operacao", path="/api/agenda", event_type="agenda.updated")
    with ConnectorThread(settings_for(kafka_bootstrap, sandbox), topology, ["operacao"]):
        send(kafka_bootstrap, topology, [record])
        dead = read_topic(kafka_bootstrap, topology.dead_letter_topic, expect=1, timeout=25)
    info = DeadLetterInfo.from_headers(list(dead[0].headers.items()))
    assert not info.permanent and info.reason == "retries_exhausted" and info.attempts == 3
    assert info.last_status_code == 503
    assert info.first_failed_at is not None and info.failed_at - info.first_failed_at >= timedelta(seconds=1.8)
    assert info.original_topic == topology.delivery_topic("operacao")  # not the retry tier it died on
    assert sandbox.received("operacao")["failed"] == 3
    outcomes = [r["outcome"] for r in _history(kafka_bootstrap, topology, 3)]
    assert outcomes == ["retry", "retry", "dead_letter"]


def test_not_before_is_honored_without_spending_attempts(kafka_bootstrap: str, hub: Topology, sandbox: Sandbox) -> None:
    topology = fast_topology(hub, tiers=("1s", "2s"))
    due = datetime.now(UTC) + timedelta(seconds=3)
    record = delivery("crm", not_before=due)
    with ConnectorThread(settings_for(kafka_bootstrap, sandbox), topology, ["crm"]):
        send(kafka_bootstrap, topology, [record])
        got = wait_for(
            lambda: (r := sandbox.received("crm"))["unique"] >= 1 and r, timeout=20, message="delayed delivery"
        )
    assert got["items"][0]["received_at"] >= due.timestamp() - 0.05
    assert got["items"][0]["headers"]["x-delivery-attempt"] == "1"
    rows = _history(kafka_bootstrap, topology, 1)
    assert [(r["attempt"], r["outcome"]) for r in rows] == [(1, "delivered")]


def test_names_the_destination_echoes_back_are_masked_in_the_dead_letter_and_history(
    kafka_bootstrap: str, hub: Topology, sandbox: Sandbox
) -> None:
    """A destination's error body repeating the name (and text) it was sent: a name has no pattern,
    so the connectors mask the payload's own names and free text out of the error message."""
    topology = fast_topology(hub)
    sandbox.faults(
        "crm",
        fail_next=1,
        status_code=422,
        body={
            "error": "duplicate contact",
            "detail": "Contato Fulano Teste Beltrano ja existe (fulano beltrano); obs: quero cuidadora noturna",
        },
    )
    payload = {"nome": "Fulano Teste Beltrano", "mensagem": "quero cuidadora noturna", "seq": 0}
    record = delivery("crm", payload=payload)
    with ConnectorThread(settings_for(kafka_bootstrap, sandbox), topology, ["crm"]):
        send(kafka_bootstrap, topology, [record])
        dead = read_topic(kafka_bootstrap, topology.dead_letter_topic, expect=1, timeout=20)
    info = DeadLetterInfo.from_headers(list(dead[0].headers.items()))
    assert info.reason == "http_422" and "duplicate contact" in info.error_message
    assert "F*** T*** B***" in info.error_message and "[text: 23 chars]" in info.error_message
    history = _history(kafka_bootstrap, topology, 1)[0]
    for text in (info.error_message, str(history["error"])):
        assert "Fulano" not in text and "fulano" not in text and "Beltrano" not in text and "beltrano" not in text
        assert "noturna" not in text
