"""Hostile input against the real ingress and broker: every refusal is a JSON error naming the field
and the rule, nothing is published, and nothing a caller puts in a request id or a path lands in the
audit unmasked."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.integration.ingress.conftest import RunningIngress
from tests.integration.ingress.test_ingress_kafka import events_published, post
from tests.kafka_support import read_topic, wait_until

pytestmark = pytest.mark.integration


def nested(depth: int) -> str:
    """`depth` arrays around a string, as JSON text (json.dumps itself stops near 1,000 levels)."""
    return "[" * depth + '"leaf"' + "]" * depth


@pytest.mark.parametrize("depth", [300, 1000])
def test_a_body_nested_too_deep_is_a_400_naming_the_rule_on_every_route(ingress: RunningIngress, depth: int) -> None:
    """orjson reads 1,024 levels but writes 254: such a body was a plain-text 500 (Recursion limit)."""
    key = ingress.key("site")
    data = '{"name": "Fulano Teste", "phone": "+55 11 90000-0001", "extra": ' + nested(depth) + "}"
    event = '{"type": "lead.created", "idempotency_key": "deep-%d", "data": ' + data + "}"
    bodies = [
        ("/v1/events", event % 1),
        ("/v1/events/batch", '{"events": [' + event % 2 + "]}"),
        ("/v1/webhooks/site", '{"form_id": "deep-3", "telefone": "11900000001", "x": ' + nested(depth) + "}"),
    ]
    for path, body in bodies:
        response = post(ingress, key, None, path=path, raw=body.encode())
        assert response.status_code == 400, (path, response.text)
        error = response.json()
        assert error["errors"][0]["field"] == "(body)", error
        # past orjson's own 1,024 levels it is orjson's refusal (rule `json`), below it ours
        assert error["errors"][0]["rule"] == ("max_depth" if depth < 1024 else "json"), error
    assert events_published(ingress) == 0


def test_a_body_at_the_depth_limit_is_accepted(ingress: RunningIngress) -> None:
    key = ingress.key("site")
    # 64 levels: the body, data, and extra's 62 arrays
    data = '{"name": "Fulano Teste", "phone": "+55 11 90000-0001", "extra": ' + nested(62) + "}"
    body = '{"type": "lead.created", "idempotency_key": "deep-ok", "data": ' + data + "}"
    assert post(ingress, key, None, raw=body.encode()).status_code == 202
    too_deep = body.replace('"leaf"', '["leaf"]').replace("deep-ok", "deep-no")
    assert post(ingress, key, None, raw=too_deep.encode()).json()["errors"][0]["rule"] == "max_depth"


def test_trail_reads_count_against_the_keys_rate_limit(ingress: RunningIngress) -> None:
    key = ingress.key("documentos", rate=1)  # 1 request/s, burst 2
    url = f"{ingress.url}/v1/events/5b2f0a0c-1111-4222-8333-444455556666"
    statuses = [httpx.get(url, headers={"X-API-Key": key}, timeout=15).status_code for _ in range(4)]
    assert statuses[:2] != [429, 429] and statuses[2:] == [429, 429], statuses
    limited = httpx.get(url, headers={"X-API-Key": key}, timeout=15)
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert limited.json()["errors"][0] == {
        "field": "X-API-Key",
        "rule": "rate_limit",
        "message": limited.json()["message"],
    }


def test_personal_data_in_a_request_id_or_a_trail_path_never_reaches_the_audit(ingress: RunningIngress) -> None:
    key = ingress.key("site")
    phone_id = "11900000001"
    refused = post(ingress, key, {}, headers={"X-Request-ID": phone_id})
    assert refused.status_code == 422
    assert refused.headers["x-request-id"] != phone_id and refused.json()["request_id"] != phone_id
    kept = post(ingress, key, {}, headers={"X-Request-ID": "crm-req:42.a_b"})
    assert kept.headers["x-request-id"] == "crm-req:42.a_b"  # well-formed ids are still taken as they are
    read = httpx.get(f"{ingress.url}/v1/events/fulano.teste@example.com", headers={"X-API-Key": key}, timeout=15)
    assert read.status_code == 422 and read.json()["errors"][0]["rule"] == "uuid"

    def requests() -> list[dict[str, object]]:
        records = read_topic(ingress.bootstrap, ingress.topology.system_topic("audit"))
        return [e for r in records if (e := json.loads(r.value or b""))["kind"] == "request"]

    wait_until(lambda: len(requests()) >= 3, timeout=15, message="three request records")
    text = json.dumps(requests())
    assert phone_id not in text and "fulano.teste" not in text and "example.com" not in text
    trail_read = next(e for e in requests() if str(e["path"]).startswith("/v1/events/"))
    assert "event_id" not in trail_read and trail_read["key_id"]  # who read is audited; the garbage is not
