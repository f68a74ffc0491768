"""The event routes' 503 counters exist at 0 from the start (rate() cannot see a child's first
increment), and the refusal alert selects exactly those routes."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

from hub.metrics import render
from ingress.app import create_app
from ingress.audit import EVENT_ROUTES
from ingress.settings import IngressSettings

ROOT = Path(__file__).resolve().parents[3]


def _samples() -> dict[tuple[str, str], float]:
    body, _ = render()
    return {
        (s.labels["route"], s.labels["status"]): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
        if s.name == "carinho_ingress_requests_total"
    }


def test_event_routes_export_their_503_counter_before_any_request(tmp_path: Path) -> None:
    create_app(IngressSettings(keys_file=tmp_path / "keys.json", kafka_bootstrap_servers="127.0.0.1:9"))
    samples = _samples()
    for route in EVENT_ROUTES:
        assert (route, "503") in samples, route


def test_the_refusal_alert_selects_the_event_routes_and_nothing_else() -> None:
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())
    expr = next(
        r["expr"] for g in rules["groups"] for r in g["rules"] if r.get("alert") == "CarinhoIngressRefusingEvents"
    )
    pattern = re.search(r'route=~"([^"]+)"', expr)
    assert pattern is not None, expr
    selects = re.compile(pattern.group(1))  # Prometheus anchors =~ at both ends, as fullmatch does
    assert all(selects.fullmatch(route) for route in EVENT_ROUTES)
    for other in ("/v1/events/{event_id}", "/health/detailed", "/ops/api/summary", "/metrics"):
        assert not selects.fullmatch(other), other
