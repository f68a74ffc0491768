"""Routing, dedupe, dead-lettering and the trail against one shared worker (real broker)."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
from confluent_kafka import Producer

from hub.dead_letter import DeadLetterInfo
from hub.delivery import derive_delivery_id
from hub.kafka_config import producer_config
from hub.topology import Topology
from hub.trail import TrailHop
from tests.integration.processors.conftest import Worker
from tests.integration.processors.helpers import by_event, deliveries, event, lead, send
from tests.kafka_support import ROOT, produce, read_topic, unique, wait_until

pytestmark = pytest.mark.integration


def wait_deliveries(
    bootstrap: str, topology: Topology, dest: str, event_id: Any, n: int = 1, timeout: float = 30
) -> list[Any]:
    found: list[Any] = []

    def ready() -> bool:
        nonlocal found
        found = by_event(deliveries(bootstrap, topology, dest, timeout=3), event_id)
        return len(found) >= n

    wait_until(ready, timeout=timeout, interval=0.5, message=f"{n} delivery(ies) to {dest}")
    return found


def test_lead_from_site_with_campaign_goes_to_crm_marketing_and_auto_reply(
    kafka_bootstrap: str, shared: tuple[Topology, Worker]
) -> None:
    topology, _ = shared
    e = lead("site", campaign="inverno", email="maria@example.com", message="quero cuidadora")
    send(kafka_bootstrap, topology, e)

    [crm] = wait_deliveries(kafka_bootstrap, topology, "crm", e.event_id)
    assert crm.delivery_id == derive_delivery_id(e.event_id, "crm")
    assert crm.path == "/api/leads" and crm.entity_key == f"site:{e.idempotency_key}"
    assert crm.payload == {
        "nome": "maria da silva",
        "telefone": "+5511999990000",
        "email": "maria@example.com",
        "mensagem": "quero cuidadora",
        "origem": "site",
        "event_id": str(e.event_id),
        "utm": {"source": "google", "medium": "cpc", "campaign": "inverno"},
    }
    [mkt] = wait_deliveries(kafka_bootstrap, topology, "marketing", e.event_id)
    assert mkt.payload["utm"]["campaign"] == "inverno" and mkt.payload["lead_event_id"] == str(e.event_id)
    assert mkt.payload["received_at"].startswith(e.received_at.strftime("%Y-%m-%dT%H:%M"))
    [reply] = wait_deliveries(kafka_bootstrap, topology, "whatsapp", e.event_id)
    assert reply.message_type == "lead_auto_reply"
    assert reply.payload == {
        "phone": "+5511999990000",
        # "inverno" is not a campaign topics.yaml lists: the site's template, not the visitor's text.
        "message": "Olá, Maria! Recebemos seu contato pelo nosso site. Uma consultora da Carinho vai falar com você "
        "em instantes.",
    }


def test_lead_from_whatsapp_gets_whatsapp_template(kafka_bootstrap: str, shared: tuple[Topology, Worker]) -> None:
    topology, _ = shared
    e = lead("whatsapp", name="joão")
    send(kafka_bootstrap, topology, e)
    [reply] = wait_deliveries(kafka_bootstrap, topology, "whatsapp", e.event_id)
    assert reply.payload["message"].startswith("Olá, João! Obrigado por chamar a Carinho no WhatsApp")
    [crm] = wait_deliveries(kafka_bootstrap, topology, "crm", e.event_id)
    assert "utm" not in crm.payload and crm.payload["origem"] == "whatsapp"


def test_other_integrations_route_with_maps_and_hooks(kafka_bootstrap: str, shared: tuple[Topology, Worker]) -> None:
    topology, _ = shared
    cliente = event(
        "cliente.created",
        "crm",
        2,
        {
            "cliente_id": "C1",
            "name": "Ana Souza",
            "cpf": "123.456.789-09",
            "phone": "(11) 98888-7777",
            "plan": "premium",
        },
    )
    agenda = event(
        "agenda.updated",
        "crm",
        3,
        {"agenda_id": "A1", "cliente_id": "C1", "status": "confirmada", "starts_at": "2026-01-02T10:00:00Z"},
    )
    cuidador = event("cuidador.updated", "cuidadores", 4, {"cuidador_id": "K1", "name": "Bia", "skills": ["idosos"]})
    servico = event(
        "servico.completed",
        "operacao",
        3,
        {"servico_id": "S1", "cliente_id": "C1", "completed_at": "2026-01-02T12:00:00Z", "hours": 4.5},
    )
    send(kafka_bootstrap, topology, cliente, agenda, cuidador, servico)

    [fin] = wait_deliveries(kafka_bootstrap, topology, "financeiro", cliente.event_id)
    assert fin.payload == {
        "cliente_id": "C1",
        "nome": "Ana",
        "sobrenome": "Souza",
        "origem_evento": str(cliente.event_id),
        "documento": {"tipo": "CPF", "numero": "12345678909"},
        "telefone": "+5511988887777",
        "plano": "PREMIUM",
    }
    assert fin.entity_key == "cliente:C1"
    [op] = wait_deliveries(kafka_bootstrap, topology, "operacao", agenda.event_id)
    assert op.payload == {
        "agenda_id": "A1",
        "cliente_id": "C1",
        "status": "confirmada",
        "inicio": "2026-01-02T10:00:00Z",
    }
    assert op.entity_key == "agenda:A1"
    [crm] = wait_deliveries(kafka_bootstrap, topology, "crm", cuidador.event_id)
    assert crm.payload == {"cuidador_id": "K1", "nome": "Bia", "habilidades": ["idosos"]}
    [fat] = wait_deliveries(kafka_bootstrap, topology, "financeiro", servico.event_id)
    assert fat.path == "/api/faturamento/servicos" and fat.payload["horas"] == 4.5
    # servico without a phone: no feedback message is scheduled
    assert not by_event(deliveries(kafka_bootstrap, topology, "whatsapp", timeout=3), servico.event_id)


def test_duplicates_are_dropped_and_trailed(kafka_bootstrap: str, shared: tuple[Topology, Worker]) -> None:
    topology, worker = shared
    e = lead("site")
    send(kafka_bootstrap, topology, e)
    wait_deliveries(kafka_bootstrap, topology, "crm", e.event_id)
    send(kafka_bootstrap, topology, e, e)  # a client retry, twice
    wait_until(
        lambda: sum(h["hop"] == "duplicate_dropped" for h in worker.trail(str(e.event_id))) == 2,
        timeout=20,
        message="two duplicate_dropped hops",
    )
    for hop in (h for h in worker.trail(str(e.event_id)) if h["hop"] == "duplicate_dropped"):
        first_seen = datetime.fromisoformat(hop["detail"]["first_seen_at"])  # an ISO time, like every hop's
        assert abs((datetime.now(UTC) - first_seen).total_seconds()) < 600
    for dest in ("crm", "marketing", "whatsapp"):
        assert len(by_event(deliveries(kafka_bootstrap, topology, dest, timeout=3), e.event_id)) == 1, dest


def test_a_key_reused_for_other_data_is_dropped_visibly(kafka_bootstrap: str, shared: tuple[Topology, Worker]) -> None:
    """Same source and idempotency key, other data: the first body wins, and the trail says so."""
    topology, worker = shared
    first = lead("site")
    send(kafka_bootstrap, topology, first)
    wait_deliveries(kafka_bootstrap, topology, "crm", first.event_id)
    retry = lead("site", key=first.idempotency_key)  # the same body again (a retry)
    reused = lead("site", key=first.idempotency_key, name="outra pessoa")  # the key reused for new data
    assert retry.event_id == reused.event_id == first.event_id
    send(kafka_bootstrap, topology, retry, reused)
    wait_until(
        lambda: sum(h["hop"] == "duplicate_dropped" for h in worker.trail(str(first.event_id))) == 2,
        timeout=20,
        message="two duplicate_dropped hops",
    )
    dropped = [h for h in worker.trail(str(first.event_id)) if h["hop"] == "duplicate_dropped"]
    assert sorted(bool(h["detail"].get("payload_differs")) for h in dropped) == [False, True]
    [crm] = by_event(deliveries(kafka_bootstrap, topology, "crm", timeout=3), first.event_id)
    assert crm.payload["nome"] == "maria da silva"  # the first body was delivered, once


def test_invalid_records_dead_lettered_while_valid_ones_flow(
    kafka_bootstrap: str, shared: tuple[Topology, Worker]
) -> None:
    topology, worker = shared
    p3 = topology.priority_topic(3)
    good_before, good_after = lead("site"), lead("site")
    send(kafka_bootstrap, topology, good_before)
    bad_cpf = event("cliente.created", "crm", 2, {"cliente_id": "C9", "name": "Ze", "cpf": "123"})
    unknown = event("lead.created", "site", 2, {"name": "x", "phone": "+5511999990000"})
    unknown_raw = orjson.loads(unknown.to_json())
    unknown_raw["type"] = "lead.vanished"
    missing = event("servico.completed", "operacao", 3, {"servico_id": "S2"})  # cliente_id, completed_at missing
    huge = event("agenda.updated", "crm", 3, {"agenda_id": "A9", "cliente_id": "C9", "status": "x" * 1_100_000})
    produce(kafka_bootstrap, p3, b"\x00\xffnot json at all", key=b"garbage")
    produce(kafka_bootstrap, p3, b'{"schema_version": 1, "hello": "world"}', key=b"wrong-schema")
    produce(kafka_bootstrap, p3, orjson.dumps(unknown_raw), key=b"unknown")
    big = Producer(producer_config(kafka_bootstrap, client_id="tests", **{"message.max.bytes": 4_000_000}))
    send(kafka_bootstrap, topology, missing, huge, bad_cpf, good_after, producer=big)

    dlq = read_topic(kafka_bootstrap, topology.dead_letter_topic, expect=6, timeout=30)
    reasons = {r.key: DeadLetterInfo.from_headers(list(r.headers.items())) for r in dlq}
    assert reasons[b"garbage"].reason == "not_json"
    assert reasons[b"wrong-schema"].reason == "invalid_envelope"
    assert reasons[b"unknown"].reason == "unknown_event_type"
    assert reasons[missing.kafka_key()].reason == "invalid_data"
    assert reasons[huge.kafka_key()].reason == "too_large"
    info = reasons[bad_cpf.kafka_key()]
    assert (info.reason, info.destination, info.stage, info.event_id) == (
        "transform_failed",
        "financeiro",
        "processors",
        str(bad_cpf.event_id),
    )
    assert info.original_topic == topology.priority_topic(2) and info.permanent
    original = {r.key: r.value for r in dlq}
    assert original[b"garbage"] == b"\x00\xffnot json at all"  # value = original bytes, unchanged
    assert original[huge.kafka_key()] == huge.to_json()
    wait_deliveries(kafka_bootstrap, topology, "crm", good_after.event_id)  # the partition kept flowing
    assert not by_event(deliveries(kafka_bootstrap, topology, "financeiro", timeout=3), bad_cpf.event_id)
    # The sender, who had its 202, reads on the trail which rule failed (not only "invalid_data").
    wait_until(
        lambda: any(h["hop"] == "invalid" for h in worker.trail(str(missing.event_id))),
        timeout=15,
        message="the invalid hop",
    )
    [invalid] = [h for h in worker.trail(str(missing.event_id)) if h["hop"] == "invalid"]
    assert invalid["detail"]["reason"] == "invalid_data" and "cliente_id" in invalid["detail"]["problem"]


def test_trail_is_complete_masked_and_traceable(kafka_bootstrap: str, shared: tuple[Topology, Worker]) -> None:
    topology, worker = shared
    e = lead("site", name="Maria Souza", phone="+5511912345678")
    accepted = TrailHop(
        event_id=e.event_id,
        hop="accepted",
        at=e.received_at,
        service="ingress",
        detail={"topic": topology.priority_topic(2), "phone": "+5511912345678"},
    )
    produce(kafka_bootstrap, topology.system_topic("trail"), accepted.to_json(), key=accepted.kafka_key())
    send(kafka_bootstrap, topology, e)
    wait_until(
        lambda: [h["hop"] for h in worker.trail(str(e.event_id))] == ["accepted", "routed"],
        timeout=20,
        message="accepted + routed hops",
    )
    hops = worker.trail(str(e.event_id))
    routed = hops[1]
    assert sorted(routed["detail"]["destinations"]) == ["crm", "marketing", "whatsapp"]
    assert routed["detail"]["deliveries"]["crm"] == str(derive_delivery_id(e.event_id, "crm"))
    assert "12345678" not in orjson.dumps(hops).decode()  # masked
    missing = httpx.get(f"{worker.url}/v1/trail/{uuid.uuid4()}", timeout=5)
    assert missing.status_code == 404
    out = subprocess.run(
        [sys.executable, "-m", "cli.main", "trace", str(e.event_id), "--url", worker.url],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    assert "accepted" in out.stdout and "routed" in out.stdout and "12345678" not in out.stdout
    metrics = httpx.get(f"{worker.url}/metrics", timeout=5).text
    assert 'carinho_processor_events_total{outcome="routed",priority="2"}' in metrics
    assert "carinho_processor_trail_pending " in metrics
    health = worker.health() or {}
    assert health["trail_pending"] == 0 and health["trail_indexed"] >= 2  # the indexer caught up


def test_feedback_request_fires_after_the_delay(kafka_bootstrap: str, shared: tuple[Topology, Worker]) -> None:
    topology, worker = shared
    completed = time.time()
    servico = event(
        "servico.completed",
        "operacao",
        3,
        {
            "servico_id": unique("S"),
            "cliente_id": "C1",
            "phone": "+5511977776666",
            "client_name": "dona lurdes",
            "completed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(completed)),
        },
    )
    send(kafka_bootstrap, topology, servico)
    wait_until(
        lambda: "scheduled" in [h["hop"] for h in worker.trail(str(servico.event_id))],
        timeout=20,
        message="scheduled hop",
    )
    assert not by_event(deliveries(kafka_bootstrap, topology, "whatsapp", timeout=2), servico.event_id)
    [msg] = wait_deliveries(kafka_bootstrap, topology, "whatsapp", servico.event_id, timeout=30)
    assert time.time() - int(completed) >= 6 - 0.5  # FEEDBACK_DELAY_S, completed_at has 1 s resolution
    assert msg.message_type == "feedback_request" and msg.payload["message"].startswith(
        "Olá, Lurdes! Como foi"
    )  # "Dona" is a form of address
    assert msg.not_before is not None
