"""The ingress against the real broker: what is accepted is on events.p{n} with the right key,
headers and envelope; everything refused publishes nothing."""

from __future__ import annotations

import gzip
import json
import uuid
import zlib

import httpx
import pytest
from confluent_kafka import Consumer, TopicPartition

from hub.envelope import EventEnvelope, derive_event_id
from hub.kafka_config import consumer_config
from hub.trail import TrailHop
from tests.integration.ingress.conftest import RunningIngress
from tests.kafka_support import read_topic, topic_size, wait_until

pytestmark = pytest.mark.integration

LEAD = {"type": "lead.created", "data": {"name": "Maria Souza", "phone": "+55 11 98765-4321", "email": "m@x.com"}}
SERVICO = {"servico_id": "99817", "cliente_id": "C-120", "completed_at": "2026-11-29T14:00:00Z", "hours": 6.5}


def post(
    ing: RunningIngress,
    key: str | None,
    body: object,
    *,
    path: str = "/v1/events",
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
) -> httpx.Response:
    h = {"Content-Type": "application/json", **(headers or {})}
    if key:
        h["X-API-Key"] = key
    content = raw if raw is not None else json.dumps(body).encode()
    return httpx.post(f"{ing.url}{path}", content=content, headers=h, timeout=15)


def events_published(ing: RunningIngress) -> int:
    return sum(topic_size(ing.bootstrap, t) for t in ing.topology.event_topics)


def test_event_lands_on_its_priority_topic_with_key_headers_and_envelope(ingress: RunningIngress) -> None:
    key = ingress.key("site")
    response = post(
        ingress,
        key,
        {**LEAD, "metadata": {"utm_source": "google", "utm_campaign": "inverno", "labels": {"form": "home"}}},
        headers={"Idempotency-Key": "form-001", "X-Request-ID": "req-abc"},
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert response.headers["x-request-id"] == "req-abc"
    assert body["event_id"] == str(derive_event_id("site", "form-001"))
    assert body["topic"] == ingress.topology.priority_topic(2) and body["priority"] == 2

    records = read_topic(ingress.bootstrap, ingress.topology.priority_topic(2), expect=1)
    assert len(records) == 1
    record = records[0]
    assert record.key == b"form-001"
    assert record.headers["event_id"] == body["event_id"].encode()
    assert record.headers["event_type"] == b"lead.created"
    assert record.headers["source"] == b"site"
    assert record.headers["request_id"] == b"req-abc"
    envelope = EventEnvelope.from_json(record.value or b"")
    assert envelope.type == "lead.created" and envelope.source == "site" and envelope.priority == 2
    assert envelope.data == LEAD["data"]
    assert envelope.metadata.utm is not None and envelope.metadata.utm.campaign == "inverno"
    assert envelope.metadata.labels == {"form": "home"}
    assert envelope.metadata.request_id == "req-abc"
    assert sum(topic_size(ingress.bootstrap, ingress.topology.priority_topic(p)) for p in (1, 3, 4, 5)) == 0


def test_explicit_priority_selects_the_topic(ingress: RunningIngress) -> None:
    key = ingress.key("site")
    response = post(ingress, key, {**LEAD, "priority": 1, "idempotency_key": "urgent-1"})
    assert response.status_code == 202, response.text
    assert response.json()["topic"] == ingress.topology.priority_topic(1)
    assert read_topic(ingress.bootstrap, ingress.topology.priority_topic(1), expect=1)[0].key == b"urgent-1"


def test_a_retried_request_gets_the_same_event_id(ingress: RunningIngress) -> None:
    key = ingress.key("site")
    first = post(ingress, key, LEAD, headers={"Idempotency-Key": "retry-me"})
    second = post(ingress, key, LEAD, headers={"Idempotency-Key": "retry-me"})
    other = post(ingress, key, LEAD, headers={"Idempotency-Key": "another"})
    assert first.status_code == second.status_code == other.status_code == 202
    assert first.json()["event_id"] == second.json()["event_id"] != other.json()["event_id"]
    records = read_topic(ingress.bootstrap, ingress.topology.priority_topic(2), expect=3)
    ids = [r.headers["event_id"].decode() for r in records]
    assert ids.count(first.json()["event_id"]) == 2  # persisted twice, deduplicated by the processors


BAD_INPUTS = [
    # (name, key kind, headers, raw body, expected status, field, rule)
    ("no key", None, {}, json.dumps(LEAD).encode(), 401, "X-API-Key", "required"),
    ("invalid key", "garbage", {}, json.dumps(LEAD).encode(), 401, "X-API-Key", "valid_key"),
    (
        "wrong content type",
        "site",
        {"Content-Type": "text/plain"},
        json.dumps(LEAD).encode(),
        415,
        "Content-Type",
        "application/json",
    ),
    (
        "gzip body",
        "site",
        {"Content-Encoding": "gzip", "Idempotency-Key": "k14"},
        gzip.compress(json.dumps(LEAD).encode()),
        415,
        "Content-Encoding",
        "identity",
    ),
    (
        "Latin-1 body",
        "site",
        {"Content-Type": "application/json; charset=iso-8859-1", "Idempotency-Key": "k15"},
        json.dumps({**LEAD, "data": {**LEAD["data"], "name": "João"}}, ensure_ascii=False).encode("latin-1"),
        415,
        "Content-Type",
        "charset=utf-8",
    ),
    (
        "too large",
        "site",
        {},
        json.dumps({**LEAD, "data": {**LEAD["data"], "message": "x" * 1_100_000}}).encode(),
        413,
        "(body)",
        "max_bytes",
    ),
    ("malformed json", "site", {}, b'{"type": "lead.created", ', 400, "(body)", "json"),
    ("empty body", "site", {}, b"", 400, "(body)", "json"),
    (
        "missing data",
        "site",
        {"Idempotency-Key": "k1"},
        json.dumps({"type": "lead.created"}).encode(),
        422,
        "data",
        "missing",
    ),
    (
        "bad phone",
        "site",
        {"Idempotency-Key": "k2"},
        json.dumps({**LEAD, "data": {"name": "A", "phone": "12"}}).encode(),
        422,
        "data.phone",
        "phone",
    ),
    (
        "missing required data field",
        "site",
        {"Idempotency-Key": "k3"},
        json.dumps({**LEAD, "data": {"name": "A"}}).encode(),
        422,
        "data.phone",
        "missing",
    ),
    (
        "unknown event type",
        "site",
        {"Idempotency-Key": "k4"},
        json.dumps({"type": "lead.deleted", "data": {}}).encode(),
        422,
        "type",
        "known_event_type",
    ),
    (
        "priority out of range",
        "site",
        {"Idempotency-Key": "k5"},
        json.dumps({**LEAD, "priority": 9}).encode(),
        422,
        "priority",
        "less_than_equal",
    ),
    ("no idempotency key", "site", {}, json.dumps(LEAD).encode(), 422, "idempotency_key", "required"),
    # The header is held to the body field's rule: an empty one would give every such event one id.
    (
        "empty Idempotency-Key header",
        "site",
        {"Idempotency-Key": ""},
        json.dumps(LEAD).encode(),
        422,
        "Idempotency-Key",
        "pattern",
    ),
    (
        "Idempotency-Key with a space",
        "site",
        {"Idempotency-Key": "form 7f3a"},
        json.dumps(LEAD).encode(),
        422,
        "Idempotency-Key",
        "pattern",
    ),
    (
        "Idempotency-Key over 200",
        "site",
        {"Idempotency-Key": "x" * 201},
        json.dumps(LEAD).encode(),
        422,
        "Idempotency-Key",
        "pattern",
    ),
    (
        "idempotency key mismatch",
        "site",
        {"Idempotency-Key": "a"},
        json.dumps({**LEAD, "idempotency_key": "b"}).encode(),
        422,
        "idempotency_key",
        "matches_header",
    ),
    # The processors' data rules (hub/data_rules.py) answer 422 here, not 202 then a dead letter.
    (
        "blank required field",
        "operacao",
        {"Idempotency-Key": "k10"},
        json.dumps({"type": "servico.completed", "data": {**SERVICO, "servico_id": "  "}}).encode(),
        422,
        "data.servico_id",
        "required",
    ),
    (
        "number sent as a string",
        "operacao",
        {"Idempotency-Key": "k11"},
        json.dumps({"type": "servico.completed", "data": {**SERVICO, "hours": "6.5"}}).encode(),
        422,
        "data.hours",
        "number",
    ),
    (
        "epoch for a datetime",
        "operacao",
        {"Idempotency-Key": "k12"},
        json.dumps({"type": "servico.completed", "data": {**SERVICO, "completed_at": 1764435600}}).encode(),
        422,
        "data.completed_at",
        "datetime",
    ),
    (
        "boolean for a number",
        "operacao",
        {"Idempotency-Key": "k13"},
        json.dumps({"type": "servico.completed", "data": {**SERVICO, "hours": True}}).encode(),
        422,
        "data.hours",
        "number",
    ),
    (
        "unknown field",
        "site",
        {"Idempotency-Key": "k6"},
        json.dumps({**LEAD, "colour": "red"}).encode(),
        422,
        "colour",
        "extra_forbidden",
    ),
    (
        "source not the key's",
        "site",
        {"Idempotency-Key": "k7"},
        json.dumps({**LEAD, "source": "crm"}).encode(),
        403,
        "source",
        "key_source",
    ),
    (
        "type not allowed for the source",
        "site",
        {"Idempotency-Key": "k8"},
        json.dumps({"type": "cliente.created", "data": {"cliente_id": "1", "name": "A"}}).encode(),
        403,
        "type",
        "source_event_types",
    ),
    (
        "type outside the key's scope",
        "scoped",
        {"Idempotency-Key": "k9"},
        json.dumps(LEAD).encode(),
        403,
        "type",
        "key_event_types",
    ),
]


@pytest.mark.parametrize(
    ("name", "key_kind", "headers", "raw", "status", "field", "rule"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS]
)
def test_bad_input_gets_its_status_field_and_rule_and_publishes_nothing(
    ingress: RunningIngress,
    name: str,
    key_kind: str | None,
    headers: dict[str, str],
    raw: bytes,
    status: int,
    field: str,
    rule: str,
) -> None:
    if key_kind == "site":
        presented: str | None = ingress.key("site")
    elif key_kind == "operacao":
        presented = ingress.key("operacao")
    elif key_kind == "scoped":
        presented = ingress.key("atendimento", ["lead.created"])  # allowed lead.created...
        presented = ingress.keys.create("site", [])[1]  # ...this one may send no type at all
    else:
        presented = key_kind  # None or garbage
    response = post(ingress, presented, None, raw=raw, headers=headers)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == status and body["request_id"] == response.headers["x-request-id"]
    assert any(e["field"] == field and e["rule"] == rule for e in body["errors"]), body
    assert events_published(ingress) == 0


def test_check_order_401_then_request_then_scope(ingress: RunningIngress) -> None:
    key = ingress.key("site")
    # no key AND wrong content type -> 401 first
    assert post(ingress, None, None, raw=b"x", headers={"Content-Type": "text/plain"}).status_code == 401
    # valid key, malformed JSON that would also be out of scope -> 400 before 403
    assert post(ingress, key, None, raw=b'{"source": "crm"').status_code == 400
    # valid key, schema violation AND out-of-scope source -> 422 before 403
    bad = {**LEAD, "source": "crm", "data": {"name": "A"}, "idempotency_key": "o-1"}
    assert post(ingress, key, bad).status_code == 422
    assert events_published(ingress) == 0


def test_bearer_authentication_and_revocation(ingress: RunningIngress) -> None:
    record, key = ingress.keys.create("site")
    ok = post(ingress, None, {**LEAD, "idempotency_key": "bearer-1"}, headers={"Authorization": f"Bearer {key}"})
    assert ok.status_code == 202
    ingress.keys.revoke(record.key_id)
    import time

    time.sleep(0.3)  # the ingress re-reads the key file on change
    denied = post(ingress, key, {**LEAD, "idempotency_key": "bearer-2"})
    assert denied.status_code == 401 and denied.json()["errors"][0]["message"] == "API key revoked"


def test_batch_results_per_item_and_only_valid_items_published(ingress: RunningIngress) -> None:
    key = ingress.key("cuidadores")
    events = [
        {"type": "cuidador.updated", "idempotency_key": "c-1", "data": {"cuidador_id": "1"}},
        {"type": "cuidador.updated", "data": {"cuidador_id": "2"}},  # no idempotency key
        {"type": "cuidador.updated", "idempotency_key": "c-3", "data": {}},  # missing cuidador_id
        {"type": "lead.created", "idempotency_key": "c-4", "data": {"name": "A", "phone": "11987654321"}},  # 403
        {"type": "cuidador.updated", "idempotency_key": "c-5", "data": {"cuidador_id": "5"}, "priority": 1},
    ]
    response = post(ingress, key, {"events": events}, path="/v1/events/batch")
    assert response.status_code == 207, response.text
    assert "retry-after" not in response.headers  # nothing to retry: every refusal here is the item's own
    body = response.json()
    assert body["accepted"] == 2 and body["rejected"] == 3
    statuses = [r["status"] for r in body["results"]]
    assert statuses == [202, 422, 422, 403, 202]
    assert body["results"][1]["error"]["errors"][0]["field"] == "events[1].idempotency_key"
    assert body["results"][2]["error"]["errors"][0]["field"] == "events[2].data.cuidador_id"
    assert topic_size(ingress.bootstrap, ingress.topology.priority_topic(4)) == 1
    assert topic_size(ingress.bootstrap, ingress.topology.priority_topic(1)) == 1
    assert events_published(ingress) == 2
    # One key twice in a batch: the repeat is refused (it would get the first's event_id, then be dropped).
    twice = [
        {"type": "cuidador.updated", "idempotency_key": "d-1", "data": {"cuidador_id": "7", "status": "ativo"}},
        {"type": "cuidador.updated", "idempotency_key": "d-1", "data": {"cuidador_id": "7", "status": "inativo"}},
        {"type": "cuidador.updated", "idempotency_key": "d-2", "data": {"cuidador_id": "8"}},
    ]
    repeated = post(ingress, key, {"events": twice}, path="/v1/events/batch")
    assert repeated.status_code == 207 and [r["status"] for r in repeated.json()["results"]] == [202, 422, 202]
    refusal = repeated.json()["results"][1]["error"]["errors"][0]
    assert (refusal["field"], refusal["rule"]) == ("events[1].idempotency_key", "unique_in_batch")
    assert events_published(ingress) == 4


def test_batch_all_valid_is_202_and_limits_are_enforced(ingress: RunningIngress) -> None:
    key = ingress.key("cuidadores")
    events = [
        {"type": "cuidador.updated", "idempotency_key": f"b-{i}", "data": {"cuidador_id": str(i)}} for i in range(500)
    ]
    response = post(ingress, key, {"events": events}, path="/v1/events/batch")
    assert response.status_code == 202 and response.json()["accepted"] == 500
    assert topic_size(ingress.bootstrap, ingress.topology.priority_topic(4)) == 500
    # One `accepted` hop per event (written in one produce_batch), keyed and partitioned like every
    # other hop of the event: the trail lookup by event_id reads one partition.
    event_ids = {r["event_id"] for r in response.json()["results"]}
    trail = ingress.topology.system_topic("trail")
    partitions = next(spec.partitions for spec in ingress.topology.topic_specs("local") if spec.name == trail)
    hops = read_topic(ingress.bootstrap, trail, expect=500)
    assert {TrailHop.model_validate_json(h.value or b"").event_id for h in hops} == {uuid.UUID(e) for e in event_ids}
    for record in hops:
        hop = TrailHop.model_validate_json(record.value or b"")
        assert hop.hop == "accepted" and record.key == str(hop.event_id).encode()
        assert hop.detail == {"event_type": "cuidador.updated", "priority": 4, "source": "cuidadores"}
        assert record.partition == zlib.crc32(record.key) % partitions
    too_many = post(ingress, key, {"events": [*events, events[0]]}, path="/v1/events/batch")
    assert too_many.status_code == 422 and too_many.json()["errors"][0]["rule"] == "batch_size"
    empty = post(ingress, key, {"events": []}, path="/v1/events/batch")
    assert empty.status_code == 422
    assert topic_size(ingress.bootstrap, ingress.topology.priority_topic(4)) == 500


def test_site_and_zapi_webhooks(ingress: RunningIngress) -> None:
    site_key, wa_key = ingress.key("site"), ingress.key("whatsapp")
    form = {"form_id": "f-77", "nome": "Ana Lima", "telefone": "11987654321", "utm_campaign": "verao"}
    response = post(ingress, site_key, form, path="/v1/webhooks/site")
    assert response.status_code == 202, response.text
    assert response.json()["event_id"] == str(derive_event_id("site", "f-77"))

    zapi = {
        "type": "ReceivedCallback",
        "fromMe": False,
        "messageId": "MSG-1",
        "phone": "5511987654321",
        "senderName": "João",
        "text": {"message": "Oi"},
    }
    response = post(ingress, None, zapi, path=f"/v1/webhooks/whatsapp?token={wa_key}")
    assert response.status_code == 202, response.text
    ignored = post(
        ingress,
        None,
        {**zapi, "type": "MessageStatusCallback", "messageId": "MSG-2"},
        path=f"/v1/webhooks/whatsapp?token={wa_key}",
    )
    assert ignored.status_code == 200 and ignored.json()["status"] == "ignored"
    wrong_source = post(ingress, site_key, zapi, path="/v1/webhooks/whatsapp")
    assert wrong_source.status_code == 403
    # Another source's key is refused whatever the payload, also one that would only be "ignored".
    status_callback = {**zapi, "type": "MessageStatusCallback", "messageId": "MSG-3"}
    foreign = post(ingress, site_key, status_callback, path="/v1/webhooks/whatsapp")
    assert foreign.status_code == 403 and foreign.json()["errors"][0]["rule"] == "key_source"
    unknown = post(ingress, site_key, form, path="/v1/webhooks/erp")
    assert unknown.status_code == 404
    bad_phone = post(ingress, site_key, {**form, "form_id": "f-78", "telefone": "12"}, path="/v1/webhooks/site")
    assert bad_phone.status_code == 422
    assert [e["field"] for e in bad_phone.json()["errors"]] == ["telefone"]  # the form's name, not data.phone

    records = read_topic(ingress.bootstrap, ingress.topology.priority_topic(2), expect=2)
    envelopes = {
        EventEnvelope.from_json(r.value or b"").source: EventEnvelope.from_json(r.value or b"") for r in records
    }
    assert envelopes["site"].metadata.utm is not None and envelopes["site"].metadata.utm.campaign == "verao"
    assert envelopes["whatsapp"].data["message"] == "Oi"
    assert events_published(ingress) == 2

    # A group message is not a lead: 200 ignored (Z-API retries anything else), nothing published.
    group = {**zapi, "messageId": "MSG-G", "isGroup": True, "phone": "120363019502650977-group"}
    ignored_group = post(ingress, None, group, path=f"/v1/webhooks/whatsapp?token={wa_key}")
    assert ignored_group.status_code == 200 and ignored_group.json()["status"] == "ignored"
    # A contact without a push name is still a lead; a form's e-mail left blank is an absent e-mail.
    nameless = {k: v for k, v in zapi.items() if k != "senderName"} | {"messageId": "MSG-4"}
    assert post(ingress, None, nameless, path=f"/v1/webhooks/whatsapp?token={wa_key}").status_code == 202
    blank_email = {**form, "form_id": "f-79", "email": "", "mensagem": "  "}
    assert post(ingress, site_key, blank_email, path="/v1/webhooks/site").status_code == 202
    # A bad key is named as the sender names it (the form's form_id), not the event's idempotency_key.
    bad_key = post(ingress, site_key, {**form, "form_id": "form 42"}, path="/v1/webhooks/site")
    assert bad_key.status_code == 422 and bad_key.json()["errors"][0]["field"] == "form_id"
    assert events_published(ingress) == 4


def test_rate_limit_answers_429_with_retry_after(ingress: RunningIngress) -> None:
    key = ingress.key("documentos", rate=1)  # 1 request/s, burst 2
    statuses = [post(ingress, key, {"type": "x.y", "data": {}}).status_code for _ in range(4)]
    assert statuses[:2] == [422, 422] and statuses[2:] == [429, 429]
    limited = post(ingress, key, {"type": "x.y", "data": {}})
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert limited.json()["errors"][0]["rule"] == "rate_limit"


def test_request_audit_goes_to_the_audit_topic_without_personal_data(ingress: RunningIngress) -> None:
    key = ingress.key("site")
    rid = uuid.uuid4().hex
    assert post(ingress, key, {**LEAD, "idempotency_key": "audit-1"}, headers={"X-Request-ID": rid}).status_code == 202
    # The ingress's start record (written before it serves), then one record per request.
    records = read_topic(ingress.bootstrap, ingress.topology.system_topic("audit"), expect=2, timeout=10)
    kinds = [json.loads(r.value or b"")["kind"] for r in records]
    assert kinds.count("service") == 1 and kinds.count("request") == 1, kinds
    request_record = next(r for r in records if json.loads(r.value or b"")["kind"] == "request")
    entry = json.loads(request_record.value or b"")
    assert entry["request_id"] == rid and entry["status"] == 202 and entry["source"] == "site"
    assert entry["event_type"] == "lead.created" and entry["key_id"] and entry["latency_ms"] >= 0
    raw = (request_record.value or b"").decode()
    assert "Maria" not in raw and "98765" not in raw and key not in raw
    # A trail read is audited with who read which event (any key may read any trail).
    reader = ingress.key("crm")

    def look_up() -> httpx.Response:
        return httpx.get(f"{ingress.url}/v1/events/{entry['event_id']}", headers={"X-API-Key": reader}, timeout=15)

    # The new key works once the ingress has re-read its key file (every 0.1 s here).
    wait_until(lambda: look_up().status_code != 401, timeout=10, message="the new key loaded")
    # No processors behind this ingress (conftest.NOBODY): the trail index is unreachable.
    unreachable = look_up()
    assert unreachable.status_code == 503, unreachable.text
    assert unreachable.json()["errors"][0] | {"message": None} == {
        "field": "(processors)",
        "rule": "reachable",
        "message": None,
    }
    assert int(unreachable.headers["retry-after"]) >= 1
    records = [
        json.loads(r.value or b"") for r in read_topic(ingress.bootstrap, ingress.topology.system_topic("audit"))
    ]
    reads = [r for r in records if str(r.get("path", "")).startswith("/v1/events/") and r["status"] != 401]
    assert reads and all((r["source"], r["event_id"]) == ("crm", entry["event_id"]) and r["key_id"] for r in reads)


def test_accepted_hop_is_on_the_trail(ingress: RunningIngress) -> None:
    key = ingress.key("site")
    event_id = post(ingress, key, {**LEAD, "idempotency_key": "trail-1"}).json()["event_id"]
    records = read_topic(ingress.bootstrap, ingress.topology.system_topic("trail"), expect=1)
    hop = json.loads(records[0].value or b"")
    assert hop["event_id"] == event_id and hop["hop"] == "accepted" and records[0].key == event_id.encode()


def test_health_status_metrics_and_docs(ingress: RunningIngress) -> None:
    assert httpx.get(f"{ingress.url}/health").json() == {"status": "ok"}
    detailed = httpx.get(f"{ingress.url}/health/detailed").json()
    assert detailed["kafka"]["reachable"] is True and detailed["topology"]["loaded"] is True
    assert set(detailed["destinations"]) == set(ingress.topology.destinations)
    # No processors or connectors behind this ingress: it takes events (status ok), the pipeline does
    # not deliver them yet, and the breaker states are the connectors' last report (stale).
    assert detailed["status"] == "ok" and detailed["pipeline"] == "degraded"
    assert detailed["unreachable"] == ["processors", "connectors"]
    assert all(d["stale"] is True for d in detailed["destinations"].values())
    key = ingress.key("site")
    post(ingress, key, {**LEAD, "idempotency_key": "status-1"})

    def pending_p2() -> object:  # /status is cached for 2 s
        return httpx.get(f"{ingress.url}/status").json()["pending_per_priority"].get("p2")

    wait_until(lambda: pending_p2() == 1, timeout=15, message="one pending p2 event (nobody routed it yet)")
    status = httpx.get(f"{ingress.url}/status").json()
    assert status["dead_letter_size"] == 0
    assert status["trail_index_pending"] is None  # no processors worker ever committed on the trail
    # The trail indexer's lag is the router group's on the trail topic: commit every partition at its
    # end but one record short on one of them.
    trail = ingress.topology.system_topic("trail")
    committer = Consumer(consumer_config(ingress.bootstrap, group_id=ingress.topology.router_group, client_id="tests"))
    partitions = committer.list_topics(trail, timeout=10).topics[trail].partitions
    ends = {p: committer.get_watermark_offsets(TopicPartition(trail, p), timeout=10)[1] for p in partitions}
    short = next(p for p, end in ends.items() if end > 0)  # the `accepted` hop of the event above is there
    offsets = [TopicPartition(trail, p, end - (p == short)) for p, end in ends.items()]
    committer.commit(offsets=offsets, asynchronous=False)
    committer.close()
    wait_until(
        lambda: httpx.get(f"{ingress.url}/status").json()["trail_index_pending"] == 1,
        timeout=15,
        message="one trail record not indexed",
    )
    assert "carinho_trail_index_pending 1.0" in httpx.get(f"{ingress.url}/metrics").text
    metrics = httpx.get(f"{ingress.url}/metrics").text
    assert 'carinho_ingress_events_accepted_total{event_type="lead.created",priority="2",source="site"}' in metrics
    spec = httpx.get(f"{ingress.url}/openapi.json").json()
    body = spec["paths"]["/v1/events"]["post"]["requestBody"]["content"]["application/json"]
    assert "lead" in body["examples"]
    # /docs "Authorize": the key schemes are declared and every /v1 operation requires one.
    assert {"ApiKey", "Bearer", "WebhookToken"} <= set(spec["components"]["securitySchemes"])
    assert spec["paths"]["/v1/events"]["post"]["security"] == [{"ApiKey": []}, {"Bearer": []}]
    assert "security" not in spec["paths"]["/health"]["get"]
    assert "200" not in spec["paths"]["/v1/events/batch"]["post"]["responses"]  # 202, 207 or an error
    assert {"401", "404", "503"} <= set(spec["paths"]["/v1/events/{event_id}"]["get"]["responses"])
    assert httpx.get(f"{ingress.url}/docs").status_code == 200
    page = httpx.get(f"{ingress.url}/ops", timeout=15)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]


def test_routing_refusals_are_json_errors_too(ingress: RunningIngress) -> None:
    """404 and 405 in the ErrorBody shape; a trailing slash is a 404 with a hint, not a 307 to re-POST."""
    key = ingress.key("site")
    slash = post(ingress, key, {**LEAD, "idempotency_key": "slash-1"}, path="/v1/events/")
    assert slash.status_code == 404 and "location" not in slash.headers
    error = slash.json()
    assert error["errors"][0] == {"field": "(path)", "rule": "known_route", "message": error["message"]}
    assert "did you mean /v1/events?" in error["message"] and error["request_id"] == slash.headers["x-request-id"]
    wrong_method = httpx.get(f"{ingress.url}/v1/events", headers={"X-API-Key": key}, timeout=15)
    assert wrong_method.status_code == 405 and wrong_method.headers["allow"] == "POST"
    assert wrong_method.json()["errors"][0]["rule"] == "allowed_method"
    assert events_published(ingress) == 0
