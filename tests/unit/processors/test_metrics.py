"""The processors' metrics as Prometheus must see them: counter children exported at 0 from the start
(a child created at its first increment is first scraped at 1, and increase() never sees the rise),
and the sync gauges set from the recorded sync state (whoever ran the sync, and for the daily report)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hub.metrics import REGISTRY
from hub.topology import Topology
from processors import daily_report, metrics
from processors.app import Processors
from processors.settings import ProcessorSettings
from processors.syncs.watermarks import SyncState

ROOT = Path(__file__).resolve().parents[3]


def _sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def offline_worker(namespace: str, data_dir: Path) -> Processors:
    """A worker built without a broker (nothing connects until it runs), in a namespace of its own."""
    settings = ProcessorSettings(
        kafka_bootstrap_servers="127.0.0.1:9",
        topic_namespace=namespace,
        data_dir=data_dir,
        table_store="memory",
        report_enabled=False,
    )
    return Processors(settings)


def test_a_worker_exports_its_offset_hole_and_dead_letter_counters_at_zero_once_built(tmp_path: Path) -> None:
    # A namespace of its own: the topics are labelled as the worker names them, and no other test counts there.
    processors = offline_worker("precreated", tmp_path)
    topology = processors.topology
    guarded = [topology.priority_topic(level) for level in range(1, 6)] + [topology.system_topic("trail")]
    assert all(topic.startswith("precreated.") for topic in guarded)
    for topic in guarded:
        assert _sample("carinho_processor_offset_holes_total", topic=topic) == 0.0, topic
    for reason in metrics.DEAD_LETTER_REASONS:
        assert _sample("carinho_processor_dead_letters_total", reason=reason) is not None, reason


def test_the_precreated_dead_letter_reasons_are_the_ones_the_code_writes() -> None:
    routing = (ROOT / "processors" / "routing.py").read_text()
    app = (ROOT / "processors" / "app.py").read_text()
    written = set(re.findall(r'InvalidRecord\(\s*"([a-z_]+)"', routing))
    written |= {r for pair in re.findall(r'reason = "([a-z_]+)" if .* else "([a-z_]+)"', routing) for r in pair}
    written |= set(re.findall(r'_failed\(\s*\w+,\s*"([a-z_]+)"', app))
    assert {"empty_record", "transform_failed", "processing_error"} <= written  # the patterns still match
    assert written == set(metrics.DEAD_LETTER_REASONS)


def test_sync_gauges_come_from_the_recorded_state_of_the_named_syncs_only() -> None:
    success = datetime(2025, 3, 1, 5, 0, tzinfo=UTC)
    states = {
        "gauge-sync-a": SyncState(sync="gauge-sync-a", consecutive_failures=3, last_success_at=success),
        "gauge-sync-b": SyncState(sync="gauge-sync-b"),  # never succeeded: no last-success value
        "gauge-sync-gone": SyncState(sync="gauge-sync-gone", consecutive_failures=5),  # removed from topics.yaml
    }
    metrics.export_sync_states(states, ["gauge-sync-a", "gauge-sync-b", "gauge-sync-never-ran"])
    assert _sample("carinho_sync_consecutive_failures", sync="gauge-sync-a") == 3
    assert _sample("carinho_sync_last_success_timestamp_seconds", sync="gauge-sync-a") == success.timestamp()
    assert _sample("carinho_sync_consecutive_failures", sync="gauge-sync-b") == 0
    assert _sample("carinho_sync_last_success_timestamp_seconds", sync="gauge-sync-b") is None
    assert _sample("carinho_sync_consecutive_failures", sync="gauge-sync-gone") is None
    assert _sample("carinho_sync_consecutive_failures", sync="gauge-sync-never-ran") is None

    # A later state (another worker ran it, or this one restarted) replaces the values.
    metrics.export_sync_states(
        {"gauge-sync-a": SyncState(sync="gauge-sync-a", consecutive_failures=0)}, ["gauge-sync-a"]
    )
    assert _sample("carinho_sync_consecutive_failures", sync="gauge-sync-a") == 0
    assert _sample("carinho_sync_last_success_timestamp_seconds", sync="gauge-sync-a") == success.timestamp()


class _Store:
    """SyncStateStore's load_all/save, in memory."""

    def __init__(self) -> None:
        self.states: dict[str, SyncState] = {}

    def load_all(self) -> dict[str, SyncState]:
        return dict(self.states)

    def save(self, state: SyncState) -> None:
        self.states[state.sync] = state


class _Schedule:
    report_daily_at = "06:00"
    report_timezone = "UTC"
    report_webhook_url = None
    report_dir = Path("/nonexistent")


def test_daily_report_failures_and_success_reach_the_sync_gauges(
    base_topology: Topology, monkeypatch: pytest.MonkeyPatch
) -> None:
    store: Any = _Store()
    now = datetime(2025, 3, 2, 7, 0, tzinfo=UTC)

    def broken(*_args: Any, **_kwargs: Any) -> Path:
        raise RuntimeError("report webhook down")

    monkeypatch.setattr(daily_report, "run_scheduled_report", broken)
    for attempt in (1, 2):
        at = now + timedelta(hours=attempt)
        daily_report.run_due_report(base_topology, "127.0.0.1:9", _Schedule(), store, at, timedelta(minutes=5))
        assert _sample("carinho_sync_consecutive_failures", sync="report.daily") == attempt

    monkeypatch.setattr(daily_report, "run_scheduled_report", lambda *_a, **_k: Path("/tmp/daily.md"))
    done = now + timedelta(hours=3)
    state = daily_report.run_due_report(base_topology, "127.0.0.1:9", _Schedule(), store, done, timedelta(minutes=5))
    assert state is not None and state.watermark == date(2025, 3, 1).isoformat()
    assert _sample("carinho_sync_consecutive_failures", sync="report.daily") == 0
    assert _sample("carinho_sync_last_success_timestamp_seconds", sync="report.daily") == done.timestamp()


def test_the_worker_writes_no_terminal_spinner_into_its_json_log(tmp_path: Path) -> None:
    """Faust's start-up spinner wrote "\\b" and cursor escapes to stdout, a file of JSON lines here."""
    assert offline_worker("nospinner", tmp_path).worker().spinner is None
