"""docs/integration-matrix.md is what `carinho matrix` generates from topics.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.main import main
from hub.topology import load_topology
from operators.matrix import render_matrix

ROOT = Path(__file__).resolve().parents[3]


def test_committed_matrix_is_up_to_date() -> None:
    expected = render_matrix(load_topology(ROOT / "topics.yaml"))
    committed = (ROOT / "docs" / "integration-matrix.md").read_text(encoding="utf-8")
    assert committed == expected, "docs/integration-matrix.md is stale: run `carinho matrix` and commit it"


def test_matrix_content() -> None:
    text = render_matrix(load_topology(ROOT / "topics.yaml"))
    assert (
        "| **Lead -> CRM** (`lead-crm`) | site, whatsapp (also accepted from: atendimento, marketing) "
        "| crm, marketing | `lead.created` | event | p2 (high) | 1m | Time CRM |" in text
    )
    assert "sync `servico-faturamento`: every 1d at 02:00" in text
    assert "5s → 30s → 2m → 10m → 1h (±20% jitter), then DLQ" in text
    assert "sms when breaker_open, retries_exhausted" in text
    # An automation's message whose retries run out goes to SMS (topics.yaml's fallback), not the DLQ.
    auto_reply = next(line for line in text.splitlines() if line.startswith("| Lead auto-reply |"))
    assert auto_reply.endswith("then sms (fallback) |")
    feedback = next(line for line in text.splitlines() if line.startswith("| Feedback request |"))
    assert "none sent 21:00 to 08:00 (America/Sao_Paulo)" in feedback and feedback.endswith("then sms (fallback) |")
    whatsapp = next(line for line in text.splitlines() if line.startswith("| whatsapp ("))
    assert whatsapp.endswith("then DLQ (sms for lead_auto_reply, feedback_request) |")


def test_matrix_check_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "matrix.md"
    assert main(["matrix", "--check", "--out", str(target)]) == 1  # missing
    assert main(["matrix", "--out", str(target)]) == 0
    assert main(["matrix", "--check", "--out", str(target)]) == 0
    target.write_text(target.read_text().replace("Time CRM", "Time X"))
    assert main(["matrix", "--check", "--out", str(target)]) == 1
    assert "differs from topics.yaml" in capsys.readouterr().err
