"""The dashboard's queries evaluated by promtool (promql_expr_test) on series shaped as the services
export them: the panels that combine or de-duplicate series show what their titles say."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.unit.deploy.test_prometheus_rules import ROOT, promtool


def _panel_expr(panel_id: int) -> str:
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "carinho-hub.json").read_text())
    (panel,) = [p for p in dashboard["panels"] if p["id"] == panel_id]
    expr: str = panel["targets"][0]["expr"]
    return expr


def _evaluate(
    tmp_path: Path, expr: str, series: dict[str, str], eval_time: str, expected: list[dict[str, Any]], interval: str
) -> None:
    test = {
        "rule_files": [],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": interval,
                "input_series": [{"series": name, "values": values} for name, values in series.items()],
                "promql_expr_test": [{"expr": expr, "eval_time": eval_time, "exp_samples": expected}],
            }
        ],
    }
    path = tmp_path / "panel.test.yml"
    path.write_text(yaml.safe_dump(test, sort_keys=False))
    result = subprocess.run([promtool(), "test", "rules", path.name], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dead_letters_by_reason_keeps_both_stages_for_a_reason_they_share(tmp_path: Path) -> None:
    # 1/s dead-lettered by the connectors (two destinations) and 0.5/s by the processors, same reason;
    # a reason only the processors write; the zero children both services export from their start.
    connectors, processors = "carinho_connector_dead_letters_total", "carinho_processor_dead_letters_total"
    series = {
        f'{connectors}{{destination="crm",reason="too_large"}}': "0+30x20",
        f'{connectors}{{destination="erp",reason="too_large"}}': "0+30x20",
        f'{connectors}{{destination="crm",reason="retries_exhausted"}}': "0x20",
        f'{processors}{{instance="w1",reason="too_large"}}': "0+30x20",
        f'{processors}{{instance="w1",reason="invalid_data"}}': "0+60x20",
    }
    expected = [
        {"labels": '{stage="connectors",reason="too_large"}', "value": 1},
        {"labels": '{stage="connectors",reason="retries_exhausted"}', "value": 0},
        {"labels": '{stage="processors",reason="too_large"}', "value": 0.5},
        {"labels": '{stage="processors",reason="invalid_data"}', "value": 1},
    ]
    _evaluate(tmp_path, _panel_expr(16), series, "15m", expected, "1m")


def test_sync_panels_show_one_series_per_sync_whatever_the_number_of_workers(tmp_path: Path) -> None:
    # Every processors worker exports the same values from the shared sync state.
    failures = {
        f'carinho_sync_consecutive_failures{{job="carinho-processors",instance="{w}",sync="agenda-operacao"}}': "2x5"
        for w in ("w1:6066", "w2:6067")
    }
    _evaluate(tmp_path, _panel_expr(13), failures, "3m", [{"labels": '{sync="agenda-operacao"}', "value": 2}], "1m")
    success = {  # last success one hour after the epoch; evaluated two hours after it
        f'carinho_sync_last_success_timestamp_seconds{{job="carinho-processors",instance="{w}",sync="report.daily"}}': (
            "3600x20"
        )
        for w in ("w1:6066", "w2:6067")
    }
    _evaluate(tmp_path, _panel_expr(14), success, "2h", [{"labels": '{sync="report.daily"}', "value": 1}], "10m")
