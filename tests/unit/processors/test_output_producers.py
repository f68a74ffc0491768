"""Which librdkafka producer each output record goes through (processors/output.py OutputProducer):
records of urgent events through the short-linger producer, everything else through the bulk one,
and both served by poll, flush and close. librdkafka is replaced by a recorder here: what reaches the
broker is covered by the processors' integration tests."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from processors import output
from processors.output import OutputProducer


class RecordingProducer:
    """Stands in for confluent_kafka.Producer: keeps the produce calls, acknowledges them on poll."""

    made: list[RecordingProducer] = []

    def __init__(self, config: dict[str, Any]):
        self.config = config
        self.records: list[tuple[str, bytes | None, dict[str, Any]]] = []
        self.waiting: list[Any] = []
        self.polls = 0
        self.flushed = False
        RecordingProducer.made.append(self)

    def produce(self, topic: str, value: bytes, key: bytes | None = None, **kwargs: Any) -> None:
        self.records.append((topic, key, kwargs))
        self.waiting.append(kwargs["on_delivery"])

    def poll(self, _timeout: float = 0) -> int:
        self.polls += 1
        served, self.waiting = self.waiting, []
        for callback in served:
            callback(None, _Message())
        return len(served)

    def flush(self, _timeout: float = 0) -> int:
        self.flushed = True
        return 0


class _Message:
    def topic(self) -> str:
        return "t"

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return 1


@pytest.fixture
def producers(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[RecordingProducer]]:
    RecordingProducer.made = []
    monkeypatch.setattr(output, "Producer", RecordingProducer)
    yield RecordingProducer.made


def errors(exc: BaseException) -> None:
    raise AssertionError(f"unexpected produce error: {exc}")


def test_urgent_records_take_the_short_linger_producer_and_the_rest_the_bulk_one(
    producers: list[RecordingProducer],
) -> None:
    out = OutputProducer("127.0.0.1:1", "processors", errors, linger_ms=50, urgent_linger_ms=5)
    bulk, urgent = (next(p for p in producers if p.config["linger.ms"] == ms) for ms in (50, 5))
    assert urgent.config["client.id"] == "processors-urgent" and bulk.config["client.id"] == "processors"
    out.produce_all([("deliver.crm", b"k1", b"v", [("h", b"1")], None)], urgent=True)
    out.produce("trail", b"k2", b"v", urgent=True)
    out.produce_all([("deliver.crm", b"k3", b"v", None, None)])
    out.produce("trail", b"k4", b"v")
    table = type("Table", (), {"data": type("Data", (), {"set_persisted_offset": lambda *_: None})()})()
    out.produce_changelog("dedupe-changelog", b"k5", b"v", 3, table)
    assert [key for _, key, _ in urgent.records] == [b"k1", b"k2"]
    assert [key for _, key, _ in bulk.records] == [b"k3", b"k4", b"k5"]
    assert urgent.records[0][2]["headers"] == [("h", b"1")]
    assert bulk.records[2][2]["partition"] == 3

    # flush waits for the records of both producers (acknowledged when polled), close flushes both
    asyncio.run(out.flush(limit=5))
    assert out._outstanding(out._epoch) == 0
    assert urgent.polls and bulk.polls
    out.close()
    assert urgent.flushed and bulk.flushed


def test_one_producer_when_both_lingers_are_the_same_or_no_urgent_linger_is_given(
    producers: list[RecordingProducer],
) -> None:
    for urgent_linger in (5, None):
        before = len(producers)
        out = OutputProducer("127.0.0.1:1", "processors", errors, linger_ms=5, urgent_linger_ms=urgent_linger)
        assert len(producers) == before + 1
        out.produce("trail", b"a", b"v", urgent=True)
        out.produce("trail", b"b", b"v")
        assert [key for _, key, _ in producers[-1].records] == [b"a", b"b"]
