"""/status `dead_letter_size` counts the OPEN dead-letter records (pending or edited), as `carinho dlq
stats` and /ops do, not every record on the topic; the total stays in `dead_letter_records`, and the
gauge the DLQ alert watches follows the open count."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import ingress.metrics  # noqa: F401  (registers the gauge)
import operators.dlq_state as dlq_state
from hub.metrics import REGISTRY
from hub.topology import Topology, load_topology
from ingress import health
from ingress.health import HealthReporter
from operators.dlq_filters import DlqFilter
from operators.dlq_items import DlqItem
from operators.dlq_state import OPEN_STATUSES, DlqState, Status, dead_letter_counts, effective_status
from operators.kafka_io import RawRecord

ROOT = Path(__file__).resolve().parents[3]


def _record(offset: int) -> RawRecord:
    return RawRecord("deadletter", 0, offset, 1_700_000_000_000 + offset, b"k", b"{}", ())


def _state(offset: int, status: Status, timestamp_ms: int | None = None) -> DlqState:
    return DlqState(
        dlq_id=f"0:{offset}",
        record_timestamp_ms=1_700_000_000_000 + offset if timestamp_ms is None else timestamp_ms,
        status=status,
        updated_at=datetime.now(UTC),
        updated_by="tester",
    )


class _FakeReader:
    """The consumer dead_letter_counts asks for metadata and offsets: one partition holding
    offsets [low, high) of the dead-letter topic."""

    def __init__(self, topics: set[str], low: int = 0, high: int = 5) -> None:
        self.topics = topics
        self.low, self.high = low, high

    def list_topics(self, topic: str | None = None, timeout: float = 10.0) -> Any:
        names = self.topics if topic is None else self.topics & {topic}
        return SimpleNamespace(topics={name: SimpleNamespace(error=None, partitions={0: None}) for name in names})

    def get_watermark_offsets(self, _partition: Any, timeout: float = 10.0) -> tuple[int, int]:
        return self.low, self.high

    def close(self) -> None:
        pass


@pytest.fixture
def topology() -> Topology:
    return load_topology(ROOT / "topics.yaml")


def _reporter(topology: Topology) -> HealthReporter:
    reporter = HealthReporter.__new__(HealthReporter)  # no Kafka clients: the readers are stubbed
    reporter.settings = SimpleNamespace(kafka_bootstrap_servers="127.0.0.1:1")  # type: ignore[assignment]
    reporter.topology = topology
    reporter.view = SimpleNamespace(by_prefix=lambda _prefix: {})  # type: ignore[assignment]
    reporter._cache = {}
    return reporter


def _stub_kafka(monkeypatch: pytest.MonkeyPatch, topology: Topology, states: dict[str, DlqState]) -> None:
    records = [_record(offset) for offset in range(5)]

    def scan(_bootstrap: str, topic: str, **_kw: Any) -> Iterator[RawRecord]:
        assert topic == topology.dead_letter_topic
        yield from records

    monkeypatch.setattr(health, "router_and_trail_backlog", lambda *_a, **_k: ({n: 0 for n in range(1, 6)}, None))
    monkeypatch.setattr(health, "topic_records", lambda *_a, **_k: len(records), raising=False)  # the old count
    monkeypatch.setattr(dlq_state, "scan_topic", scan)
    monkeypatch.setattr(dlq_state.DlqStateStore, "load", lambda _self: states)
    present = {topology.dead_letter_topic, topology.system_topic("dead_letter_state")}
    monkeypatch.setattr(dlq_state, "reader", lambda _bootstrap, **_k: _FakeReader(present))


def test_status_reports_the_open_dead_letters_like_the_dlq_tools(
    monkeypatch: pytest.MonkeyPatch, topology: Topology
) -> None:
    states = {
        "0:0": _state(0, "replayed"),
        "0:1": _state(1, "archived"),
        "0:2": _state(2, "purged"),
        "0:3": _state(3, "edited"),  # still open
        "0:4": _state(4, "purged", timestamp_ms=1),  # the state of another (older) record: still open
    }
    _stub_kafka(monkeypatch, topology, states)
    status = asyncio.run(_reporter(topology).status())
    assert status["dead_letter_size"] == 2
    assert status["dead_letter_records"] == 5
    assert REGISTRY.get_sample_value("carinho_dead_letter_records") == 2


def test_nothing_open_when_every_record_was_closed(monkeypatch: pytest.MonkeyPatch, topology: Topology) -> None:
    statuses: list[Status] = ["replayed", "archived", "purged", "replayed", "purged"]
    _stub_kafka(monkeypatch, topology, {f"0:{n}": _state(n, s) for n, s in enumerate(statuses)})
    status = asyncio.run(_reporter(topology).status())
    assert (status["dead_letter_size"], status["dead_letter_records"]) == (0, 5)
    assert REGISTRY.get_sample_value("carinho_dead_letter_records") == 0


def test_counts_match_dlq_stats_default_filter(monkeypatch: pytest.MonkeyPatch, topology: Topology) -> None:
    """dead_letter_counts applies the same rule as DlqTool.stats (default filter: open statuses)."""
    states = {"0:1": _state(1, "replayed"), "0:3": _state(3, "edited")}
    _stub_kafka(monkeypatch, topology, states)
    counts = dead_letter_counts(topology, "127.0.0.1:1")
    assert DlqFilter().statuses == OPEN_STATUSES
    expected = sum(effective_status(DlqItem(_record(n)), states.get(f"0:{n}")) in OPEN_STATUSES for n in range(5))
    assert (counts.open, counts.total) == (expected, 5) == (4, 5)


def test_a_missing_state_topic_means_every_record_is_open(monkeypatch: pytest.MonkeyPatch, topology: Topology) -> None:
    _stub_kafka(monkeypatch, topology, {"0:0": _state(0, "purged")})
    monkeypatch.setattr(dlq_state, "reader", lambda _bootstrap, **_k: _FakeReader({topology.dead_letter_topic}))
    counts = dlq_state.dead_letter_counts(topology, "127.0.0.1:1")
    assert (counts.open, counts.total) == (5, 5)
    monkeypatch.setattr(dlq_state, "reader", lambda _bootstrap, **_k: _FakeReader(set()))
    assert dlq_state.dead_letter_counts(topology, "127.0.0.1:1") == dlq_state.DeadLetterCounts(0, 0)


def test_past_the_exact_limit_open_is_counted_from_offsets_and_states(
    monkeypatch: pytest.MonkeyPatch, topology: Topology
) -> None:
    """A big dead-letter topic is not read record by record: open = records kept - closed states of
    kept records (offsets 100..199 kept here: two closed states count, one is for a record gone)."""
    states = {
        "0:150": _state(150, "replayed"),
        "0:151": _state(151, "purged"),
        "0:152": _state(152, "edited"),  # open
        "0:20": _state(20, "archived"),  # its record is past retention: not counted
        "bogus": _state(0, "purged"),  # not a DLQ id: ignored
    }
    _stub_kafka(monkeypatch, topology, states)

    def no_scan(*_a: Any, **_k: Any) -> Iterator[RawRecord]:
        raise AssertionError("the dead-letter topic must not be read past the limit")

    monkeypatch.setattr(dlq_state, "scan_topic", no_scan)
    present = {topology.dead_letter_topic, topology.system_topic("dead_letter_state")}
    monkeypatch.setattr(dlq_state, "reader", lambda _bootstrap, **_k: _FakeReader(present, low=100, high=200))
    counts = dead_letter_counts(topology, "127.0.0.1:1", exact_limit=50)
    assert (counts.open, counts.total) == (98, 100)
