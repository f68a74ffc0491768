"""WhatsApp through Z-API, and the SMS fallback when the WhatsApp breaker is open or a message has spent
its WhatsApp retries (for the message types listed in topics.yaml)."""

from __future__ import annotations

import orjson
import pytest

from hub.delivery import DeliveryRecord, derive_delivery_id
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
from tests.kafka_support import read_topic

pytestmark = pytest.mark.integration


def _message(kind: str, n: int) -> DeliveryRecord:
    return delivery(
        "whatsapp",
        path="/send-text",
        message_type=kind,
        payload={"phone": f"+55 (11) 9{n:04d}-0000", "message": f"Olá {n}"},
    )


def test_zapi_send_text_contract(kafka_bootstrap: str, hub: Topology, sandbox: Sandbox) -> None:
    topology = fast_topology(hub)
    record = _message("lead_auto_reply", 1)
    settings = settings_for(
        kafka_bootstrap, sandbox, zapi_instance="inst-1", zapi_token="tok-1", zapi_client_token="client-1"
    )
    with ConnectorThread(settings, topology, ["whatsapp"]):
        send(kafka_bootstrap, topology, [record])
        got = wait_for(lambda: (r := sandbox.received("whatsapp"))["unique"] >= 1 and r, message="whatsapp")
    item = got["items"][0]
    assert item["path"] == "/whatsapp/instances/inst-1/token/tok-1/send-text"
    assert item["body"] == {"phone": "5511900010000", "message": "Olá 1"}
    assert item["headers"]["client-token"] == "client-1"
    assert item["idempotency_key"] == str(record.delivery_id)


def test_whatsapp_down_sends_sms_for_listed_types(kafka_bootstrap: str, hub: Topology, sandbox: Sandbox) -> None:
    topology = fast_topology(hub, tiers=("1s", "1s"), open_for="30s", consecutive_failures=3, concurrency=1)
    sandbox.faults("whatsapp", down=True)
    auto = [_message("lead_auto_reply", n) for n in range(8)]
    feedback = [_message("feedback_request", n) for n in range(8, 12)]
    generic = [_message("generic", n) for n in range(12, 14)]  # not listed: waits for WhatsApp
    with ConnectorThread(settings_for(kafka_bootstrap, sandbox), topology, ["whatsapp", "sms"]) as connector:
        send(kafka_bootstrap, topology, auto + feedback + generic)
        got = wait_for(lambda: (r := sandbox.received("sms"))["unique"] >= 12 and r, timeout=30, message="12 SMS")
        assert sandbox.received("whatsapp")["unique"] == 0
        assert connector.call(lambda: connector.worker("whatsapp").breaker.state) == "open"
        assert connector.call(lambda: connector.worker("whatsapp").stats["fallback"]) == 12
    listed = auto + feedback
    expected_ids = {str(derive_delivery_id(r.event_id, "sms", "sms-fallback")) for r in listed}
    assert {i["idempotency_key"] for i in got["items"]} == expected_ids
    bodies = {i["body"]["to"]: i["body"]["message"] for i in got["items"]}
    assert bodies == {
        r.payload["phone"]
        .replace("+", "")
        .replace(" ", "")
        .replace("(", "")
        .replace(")", "")
        .replace("-", ""): r.payload["message"]
        for r in listed
    }
    assert got["duplicates"] == 0
    sms_records = [
        DeliveryRecord.from_json(r.value or b"")
        for r in read_topic(kafka_bootstrap, topology.delivery_topic("sms"), expect=12)
    ]
    assert {r.message_type for r in sms_records} == {"lead_auto_reply", "feedback_request"}
    hops = [TrailHop.from_json(r.value or b"") for r in read_topic(kafka_bootstrap, topology.system_topic("trail"))]
    fallbacks = [h for h in hops if h.hop == "fallback"]
    assert len(fallbacks) == 12 and {h.detail["to"] for h in fallbacks} == {"sms"}
    history = [orjson.loads(r.value or b"") for r in read_topic(kafka_bootstrap, topology.system_topic("deliveries"))]
    assert sum(1 for h in history if h["outcome"] == "fallback") == 12


def test_whatsapp_retries_exhausted_falls_back_to_sms(kafka_bootstrap: str, hub: Topology, sandbox: Sandbox) -> None:
    topology = fast_topology(hub, tiers=("1s",), consecutive_failures=100)  # the breaker stays closed
    sandbox.faults("whatsapp", error_rate=1.0, status_code=400, body={"error": "You are not connected."})
    record = _message("feedback_request", 1)
    with ConnectorThread(settings_for(kafka_bootstrap, sandbox), topology, ["whatsapp", "sms"]):
        send(kafka_bootstrap, topology, [record])
        got = wait_for(lambda: (r := sandbox.received("sms"))["unique"] >= 1 and r, timeout=20, message="SMS")
    assert sandbox.received("whatsapp")["failed"] == 2  # main attempt + one retry tier
    assert got["items"][0]["idempotency_key"] == str(derive_delivery_id(record.event_id, "sms", "sms-fallback"))
    fallback = next(
        TrailHop.from_json(r.value or b"")
        for r in read_topic(kafka_bootstrap, topology.system_topic("trail"))
        if b'"fallback"' in (r.value or b"")
    )
    assert fallback.detail["reason"] == "retries_exhausted"
