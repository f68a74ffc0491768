"""The publisher's own bookkeeping, with stand-in producers (no Kafka behaviour is claimed here: the
real acks and side records are tested against the broker in tests/integration/ingress): the backstop
for a delivery report that never comes, and side records written once per turn of the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from ingress.publisher import Publisher, PublishFailed


class SilentProducer:
    """Takes writes and never reports on them (what the backstop exists for)."""

    def __init__(self) -> None:
        self.pending: list[Callable[[Any, Any], None]] = []
        self.batches: list[tuple[str, list[dict[str, Any]]]] = []
        self.refuse = False

    def produce_batch(self, topic: str, records: list[dict[str, Any]]) -> int:
        self.batches.append((topic, list(records)))
        return 0 if self.refuse else len(records)

    def produce(self, topic: str, value: bytes, key: bytes | None, headers: Any, on_delivery: Any) -> None:
        self.pending.append(on_delivery)

    def poll(self, timeout: float) -> int:
        return 0

    def __len__(self) -> int:
        return len(self.pending)


class Message:
    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return 7


class AnsweringProducer(SilentProducer):
    """Reports every write as acknowledged on the next poll."""

    def poll(self, timeout: float) -> int:
        served, self.pending = self.pending, []
        for report in served:
            report(None, Message())
        return len(served)


def publisher(producer: SilentProducer, timeout_s: float) -> Publisher:
    pub = Publisher("127.0.0.1:9", client_id="test-backstop", timeout_s=timeout_s)
    pub._producer = producer
    pub._side = SilentProducer()
    return pub


async def test_a_write_without_a_report_fails_after_its_bound() -> None:
    pub = publisher(SilentProducer(), timeout_s=0.2)
    pub.start()
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(PublishFailed, match="did not acknowledge in time"):
        await asyncio.wait_for(pub.publish("t", b"v", b"k"), timeout=5)
    # The bound is timeout_s + 1 s; the poll loop checks it at least every 50 ms.
    assert 1.2 <= loop.time() - started < 2.0
    assert not pub._deadlines


async def test_answered_writes_leave_nothing_behind() -> None:
    pub = publisher(AnsweringProducer(), timeout_s=5.0)
    pub.start()
    results = await asyncio.gather(*(pub.publish("t", b"v", b"k") for _ in range(50)))
    assert results == [(0, 7)] * 50
    for _ in range(3):  # the poll loop drops answered entries on its next turn
        await asyncio.sleep(0.01)
    assert not pub._deadlines


async def test_side_records_of_one_turn_go_out_in_one_batch_per_topic() -> None:
    pub = publisher(AnsweringProducer(), timeout_s=5.0)
    side = pub._side
    assert isinstance(side, SilentProducer)
    pub.fire_and_forget("trail", b"h1", b"e1")
    pub.fire_and_forget("audit", b"a1", b"r1")
    pub.fire_and_forget("trail", b"h2", b"e2")
    assert side.batches == []  # not before the end of this turn
    await asyncio.sleep(0)
    assert side.batches == [
        ("trail", [{"value": b"h1", "key": b"e1"}, {"value": b"h2", "key": b"e2"}]),
        ("audit", [{"value": b"a1", "key": b"r1"}]),
    ]
    pub.fire_and_forget("trail", b"h3", b"e3")  # a later turn: a new batch
    await asyncio.sleep(0)
    assert side.batches[-1] == ("trail", [{"value": b"h3", "key": b"e3"}])


async def test_refused_side_records_are_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    pub = publisher(AnsweringProducer(), timeout_s=5.0)
    side = pub._side
    assert isinstance(side, SilentProducer)
    side.refuse = True
    pub.fire_and_forget("audit", b"a1", b"r1")
    await asyncio.sleep(0)
    assert "side records dropped" in caplog.text


async def test_close_writes_side_records_still_waiting_for_their_turn() -> None:
    pub = publisher(AnsweringProducer(), timeout_s=5.0)
    side = pub._side
    assert isinstance(side, SilentProducer)
    pub.fire_and_forget("audit", b"a1", b"r1")
    await pub.aclose(timeout_s=0.1)
    assert side.batches == [("audit", [{"value": b"a1", "key": b"r1"}])]
