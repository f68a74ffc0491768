"""/ops and /ops/api/summary against a real broker with seeded records (no browser here)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from hub.topology import Topology
from tests.integration.operators.conftest import OpsServer
from tests.integration.operators.seed import EMAIL, NAME, PHONE, Seeder, delivery, envelope
from tests.kafka_support import produce, wait_until

pytestmark = pytest.mark.integration


def test_summary_figures_alerts_and_cache(
    ops_server: OpsServer, seeder: Seeder, hub: Topology, kafka_bootstrap: str
) -> None:
    now = datetime.now(UTC)
    # 12 open dead letters (> 10: alert), 1 of them purged later -> 11.
    crm = [seeder.dead_letter(delivery("crm"), reason="http_422", status=422) for _ in range(8)]
    for _ in range(4):
        seeder.dead_letter(
            delivery("financeiro", "cliente.created", path="/api/clientes"), reason="retries_exhausted", status=503
        )
    # Lead -> CRM: 20 attempts, 4 failed (20% > 5%); Cliente -> Financeiro: 10 ok.
    for i in range(20):
        seeder.attempt(
            delivery("crm"),
            outcome="retry" if i < 4 else "delivered",
            status=503 if i < 4 else 201,
            at=now - timedelta(minutes=5),
        )
    for _ in range(10):
        seeder.attempt(
            delivery("financeiro", "cliente.created"), outcome="delivered", status=201, at=now - timedelta(minutes=5)
        )
    seeder.attempt(delivery("crm"), outcome="retry", status=500, at=now - timedelta(hours=3))  # outside window
    seeder.health(
        "destination:crm",
        {
            "destination": "crm",
            "breaker_state": "open",
            "last_check_at": now.isoformat(),
            "last_check_ok": False,
            "last_status": 503,
            "updated_at": now.isoformat(),
        },
    )
    seeder.health(
        "sync:agenda-operacao",
        {
            "sync": "agenda-operacao",
            "last_run_at": now.isoformat(),
            "last_success_at": (now - timedelta(hours=2)).isoformat(),
            "watermark": "",
            "consecutive_failures": 2,
            "last_error": f"HTTP 500 (contact {EMAIL})",
        },
    )
    # 3 events waiting for the router on events.p2, none on the others (no committed offsets yet).
    for _ in range(3):
        env = envelope()
        produce(kafka_bootstrap, hub.priority_topic(2), env.to_json(), env.kafka_key(), env.kafka_headers())
    seeder.flush()

    with httpx.Client(base_url=ops_server.url, timeout=20) as client:

        def summary() -> dict:  # type: ignore[type-arg]
            response = client.get("/ops/api/summary")
            assert response.status_code == 200, response.text
            return response.json()  # type: ignore[no-any-return]

        wait_until(lambda: summary()["dead_letter"]["open"] == 12, timeout=20, message="12 open dead letters")
        s = summary()
        assert {p["priority"]: p["pending"] for p in s["pending"]} == {1: 0, 2: 3, 3: 0, 4: 0, 5: 0}
        assert all(p["consumer_group"] == hub.router_group for p in s["pending"])
        rates = {i["integration"]: (i["attempts"], i["failures"], i["alert"]) for i in s["integrations"]}
        assert rates["lead-crm"] == (20, 4, True)
        assert rates["cliente-financeiro"] == (10, 0, False)
        assert s["dead_letter"]["top_reasons"][0] == {"destination": "crm", "reason": "http_422", "count": 8}
        assert s["dead_letter"]["by_destination"] == {"crm": 8, "financeiro": 4}
        assert len(s["dead_letter"]["latest"]) == 10
        assert {b["destination"]: b["breaker_state"] for b in s["breakers"]}["crm"] == "open"
        agenda = next(y for y in s["syncs"] if y["sync"] == "agenda-operacao")
        assert agenda["alert"] is True and EMAIL not in str(agenda["last_error"])
        keys = {a["key"] for a in s["alerts"]["active"]}
        assert keys == {"dead_letter", "error_rate:lead-crm", "sync:agenda-operacao", "breaker:crm"}

        # No personal data anywhere in the page's data.
        text = client.get("/ops/api/summary").text
        for secret in (PHONE, EMAIL, NAME):
            assert secret not in text

        # Purging 2 records (through the tool) brings the count to 10: the DLQ alert clears.
        from operators.dlq import DlqTool
        from operators.dlq_filters import build_filter

        DlqTool(hub, kafka_bootstrap, "tests").purge(build_filter(hub, ids=crm[:2]), execute=True)
        wait_until(lambda: summary()["dead_letter"]["open"] == 10, timeout=20, message="purge seen")
        s = summary()
        assert "dead_letter" not in {a["key"] for a in s["alerts"]["active"]}
        cleared = [a for a in s["alerts"]["recent"] if a["key"] == "dead_letter"]
        assert cleared and cleared[0]["cleared_at"] is not None

        # The page itself.
        page = client.get("/ops")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert "/api/summary" in page.text and "setTimeout(refresh" in page.text

    # The cache: a burst of requests costs at most a few computations.
    ops = ops_server.router.summary  # type: ignore[attr-defined]
    before = ops.computations
    with httpx.Client(base_url=ops_server.url, timeout=20) as client:
        for _ in range(30):
            client.get("/ops/api/summary")
    assert ops.computations - before <= 3
