"""The alert rules parse, every alert has a test, the tests pass, and every metric the rules use is
one the services really export."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
RULES = ROOT / "deploy" / "prometheus"


def promtool() -> str:
    """No silent skip: `make test` installs promtool (deploy/ci/install-test-tools.sh)."""
    path = shutil.which("promtool")
    assert path, "promtool missing: run deploy/ci/install-test-tools.sh (Debian package prometheus)"
    return path


def test_rules_are_valid() -> None:
    result = subprocess.run([promtool(), "check", "rules", "alerts.yml"], cwd=RULES, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_pass() -> None:
    result = subprocess.run([promtool(), "test", "rules", "alerts.test.yml"], cwd=RULES, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_tested() -> None:
    alerts = {r["alert"] for g in yaml.safe_load((RULES / "alerts.yml").read_text())["groups"] for r in g["rules"]}
    tested = {
        t["alertname"]
        for case in yaml.safe_load((RULES / "alerts.test.yml").read_text())["tests"]
        for t in case.get("alert_rule_test", [])
    }
    assert alerts == tested


def test_rules_only_use_metrics_the_services_export() -> None:
    text = (RULES / "alerts.yml").read_text()
    used = set(re.findall(r"\bcarinho_[a-z_]+", text))
    sources = "\n".join(
        p.read_text()
        for folder in ("hub", "ingress", "connectors", "processors")
        for p in (ROOT / folder).rglob("*.py")
    )
    exported = {"carinho_" + name for name in re.findall(r'(?:counter|gauge|histogram)\(\s*"([a-z_]+)"', sources)}
    # histograms export _bucket/_sum/_count series
    missing = {m for m in used if m not in exported and re.sub(r"_(bucket|sum|count)$", "", m) not in exported}
    assert not missing, f"alerts use metrics nobody exports: {sorted(missing)}"


def test_dashboard_queries_only_exported_metrics() -> None:
    import json

    dashboard = json.loads((ROOT / "deploy" / "grafana" / "carinho-hub.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert len(exprs) >= 15
    sources = "\n".join(
        p.read_text()
        for folder in ("hub", "ingress", "connectors", "processors")
        for p in (ROOT / folder).rglob("*.py")
    )
    exported = {"carinho_" + name for name in re.findall(r'(?:counter|gauge|histogram)\(\s*"([a-z_]+)"', sources)}
    used = set(re.findall(r"\bcarinho_[a-z_]+", " ".join(exprs)))
    missing = {m for m in used if m not in exported and re.sub(r"_(bucket|sum|count)$", "", m) not in exported}
    assert not missing, sorted(missing)


def test_rule_tests_use_label_values_the_services_write() -> None:
    """A test series labelled with a value the code never writes proves nothing about the real series."""
    tests = (RULES / "alerts.test.yml").read_text()
    loop = (ROOT / "connectors" / "delivery_loop.py").read_text()
    (results,) = re.findall(r"ATTEMPTS\.labels\(destination, k\) for k in \(([^)]*)\)", loop)
    assert set(re.findall(r'result="([^"]+)"', tests)) <= set(re.findall(r'"([a-z]+)"', results))
    # route: the ingress's path templates (ingress/audit.py _route_label) and the ops page's under /ops
    ingress = (ROOT / "ingress" / "app.py").read_text()
    ops = (ROOT / "operators" / "web.py").read_text()
    routes = set(re.findall(r'@app\.(?:get|post)\(\s*"([^"]+)"', ingress))
    routes |= {"/ops" + path for path in re.findall(r'@router\.get\(\s*"([^"]*)"', ops)}
    assert {"/v1/events", "/v1/events/batch", "/v1/events/{event_id}", "/ops/api/summary"} <= routes
    assert set(re.findall(r'route="([^"]+)"', tests)) <= routes
