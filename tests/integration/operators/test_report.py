"""The daily report's figures match a seeded day (trail, deliveries, dead-letter and health topics)."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, time, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest

from hub.delivery import DeliveryRecord
from hub.topology import Topology
from hub.trail import TrailHop
from operators.report import build_daily_report, render_html, render_markdown, run_scheduled_report
from operators.settings import OperatorSettings
from tests.integration.operators.conftest import RunCli
from tests.integration.operators.seed import PHONE, Seeder, delivery

pytestmark = pytest.mark.integration


def _seed_day(seeder: Seeder, day_start: datetime) -> dict[str, Any]:
    base = day_start + timedelta(hours=10)
    events = [uuid.uuid4() for _ in range(4)]
    for i, event_id in enumerate(events):
        seeder.hop(TrailHop(event_id=event_id, hop="accepted", at=base + timedelta(minutes=i), service="ingress"))
    crm = [delivery("crm", event_id=e) for e in events]
    latency_s = [10, 20, 30, 90]
    for i, record in enumerate(crm):
        accepted = base + timedelta(minutes=i)
        if i == 3:  # one retry first
            seeder.attempt(record, outcome="retry", status=503, at=accepted + timedelta(seconds=30))
        seeder.attempt(
            record,
            outcome="delivered",
            status=201,
            attempt=2 if i == 3 else 1,
            at=accepted + timedelta(seconds=latency_s[i]),
        )
    mkt = [delivery("marketing", event_id=e, path="/api/attributions") for e in events[:2]]
    seeder.attempt(mkt[0], outcome="delivered", status=200, at=base + timedelta(seconds=40))
    seeder.attempt(mkt[1], outcome="retry", status=500, at=base + timedelta(minutes=1, seconds=10))
    seeder.attempt(mkt[1], outcome="dead_letter", status=500, attempt=2, at=base + timedelta(minutes=2))
    seeder.dead_letter(mkt[1], reason="retries_exhausted", status=500, failed_at=base + timedelta(minutes=2))
    seeder.dead_letter(delivery("crm"), reason="http_400", status=400, failed_at=day_start - timedelta(days=2))
    # Lead auto-reply (an automation, not an integration): shows as its own line.
    reply = DeliveryRecord.model_validate(
        {
            **delivery("whatsapp", event_id=events[0]).model_dump(),
            "path": "/send-text",
            "message_type": "lead_auto_reply",
        }
    )
    seeder.attempt(reply, outcome="delivered", status=200, at=base + timedelta(seconds=5))
    # Cliente -> Financeiro: one delivered today, one the day before (not counted).
    cliente = uuid.uuid4()
    seeder.hop(TrailHop(event_id=cliente, hop="accepted", at=base, service="ingress"))
    seeder.attempt(
        delivery("financeiro", "cliente.created", event_id=cliente, path="/api/clientes"),
        outcome="delivered",
        status=201,
        at=base + timedelta(seconds=5),
    )
    seeder.attempt(
        delivery("financeiro", "cliente.created", path="/api/clientes"),
        outcome="delivered",
        status=201,
        at=day_start - timedelta(hours=3),
    )
    # agenda-operacao sync: ok, then failed twice in a row.
    for hours, ok_hours, fails, error in ((1, 1, 0, None), (2, 1, 1, "HTTP 500"), (3, 1, 2, f"timeout {PHONE}")):
        seeder.health(
            "sync:agenda-operacao",
            {
                "sync": "agenda-operacao",
                "last_run_at": (base + timedelta(hours=hours)).isoformat(),
                "last_success_at": (base + timedelta(hours=ok_hours)).isoformat(),
                "watermark": "",
                "consecutive_failures": fails,
                "last_error": error,
            },
        )
    seeder.flush()
    return {"events": events}


def test_daily_report_figures(
    seeder: Seeder,
    hub: Topology,
    kafka_bootstrap: str,
    carinho: RunCli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    day = (datetime.now(UTC) - timedelta(days=1)).date()
    day_start = datetime.combine(day, time.min, UTC)
    _seed_day(seeder, day_start)

    report = build_daily_report(hub, kafka_bootstrap, day, "UTC")
    lead = next(f for f in report.integrations if f.integration == "lead-crm")
    assert len(lead.events) == 4
    assert (lead.deliveries, lead.delivered, lead.dead_lettered, lead.retrying) == (6, 5, 1, 0)
    assert lead.success_rate == pytest.approx(5 / 6)
    assert (lead.attempts, lead.failed_attempts) == (8, 3)
    assert sorted(lead.latencies_ms) == [10_000, 20_000, 30_000, 40_000, 90_000]
    assert lead.percentile(50) == 30_000 and lead.percentile(95) == 90_000 and lead.percentile(99) == 90_000
    assert lead.within_sla == pytest.approx(0.8)  # SLA 1m
    cliente = next(f for f in report.integrations if f.integration == "cliente-financeiro")
    assert (len(cliente.events), cliente.delivered, cliente.success_rate) == (1, 1, 1.0)
    assert cliente.latencies_ms == [5_000]
    auto = next(f for f in report.integrations if f.integration == "automation:lead_auto_reply")
    assert auto.delivered == 1
    assert dict(report.failure_reasons) == {("crm", "http_503"): 1, ("marketing", "http_500"): 2}
    assert dict(report.dead_letter_new) == {("marketing", "retries_exhausted"): 1}
    assert report.dead_letter_open == 2
    agenda = next(s for s in report.syncs if s.name == "agenda-operacao")
    assert (agenda.runs_seen, agenda.failures_seen, agenda.consecutive_failures, agenda.alert) == (3, 2, 2, True)
    assert agenda.last_error is not None and PHONE not in agenda.last_error
    assert report.events_total == 5

    md = render_markdown(report)
    assert "| Lead -> CRM | 4 | 6 | 5 | 1 | 0 | 83.3% | 30.0 s | 90.0 s | 90.0 s | 1 min | 80.0% |" in md
    assert "| marketing | http_500 | 2 |" in md and "ALERT: " in md and PHONE not in md
    html = render_html(report)
    assert "<td>Lead -&gt; CRM</td>" in html and "<td>83.3%</td>" in html

    # The command line: Markdown to a file, HTML POSTed to a webhook; audited.
    received: list[dict[str, Any]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(orjson.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("CARINHO_REPORT_TIMEZONE", "UTC")
    try:
        out = tmp_path / "report.md"
        result = carinho(
            "report",
            "daily",
            "--date",
            day.isoformat(),
            "--out",
            str(out),
            "--post",
            f"http://127.0.0.1:{server.server_port}/hook",
        )
        assert result.code == 0, result.err
    finally:
        server.shutdown()
    lead_row = "| Lead -> CRM | 4 | 6 | 5 | 1 | 0 | 83.3% | 30.0 s | 90.0 s | 90.0 s | 1 min | 80.0% |"
    assert lead_row in out.read_text()
    assert len(received) == 1 and received[0]["date"] == day.isoformat()
    assert received[0]["summary"]["dead_letter"]["open"] == 2 and "<table>" in received[0]["html"]
    html_out = carinho("report", "daily", "--date", day.isoformat(), "--format", "html")
    assert html_out.out.startswith("<!doctype html>")
    bad = carinho("report", "daily", "--date", "31/12/2024")
    assert bad.code == 2 and "use YYYY-MM-DD" in bad.err
    audit = carinho("audit", "--json", "--action", "report").json_lines()
    assert [a["filters"]["date"] for a in audit] == [day.isoformat(), day.isoformat()]
    assert audit[0]["detail"]["posted"] is True

    # The processors' daily job: previous day, files in CARINHO_REPORT_DIR.
    settings = OperatorSettings(report_timezone="UTC", report_dir=tmp_path / "reports")
    path = run_scheduled_report(hub, kafka_bootstrap, settings, now=day_start + timedelta(days=1, hours=6))
    assert path.name == f"daily-{day.isoformat()}.md" and path.with_suffix(".html").exists()
    assert "| Lead -> CRM | 4 |" in path.read_text()
