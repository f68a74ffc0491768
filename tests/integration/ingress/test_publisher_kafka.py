"""The publisher against the real broker: acknowledged writes leave no backstop entries behind, side
records written in one turn of the event loop all reach their topics, and closing writes the ones
still waiting for their turn."""

from __future__ import annotations

import asyncio

import pytest

from hub.topology import Topology
from ingress.publisher import Publisher
from tests.kafka_support import read_topic

pytestmark = pytest.mark.integration


def test_acks_side_records_and_close(hub: Topology, kafka_bootstrap: str) -> None:
    trail, audit = hub.system_topic("trail"), hub.system_topic("audit")

    async def scenario() -> tuple[list[tuple[int, int]], int, int]:
        publisher = Publisher(kafka_bootstrap, client_id="tests-publisher", timeout_s=15)
        publisher.start()
        acks = await asyncio.gather(*(publisher.publish(hub.priority_topic(2), b"v%d" % i, b"k") for i in range(20)))
        await asyncio.sleep(0.05)  # the poll loop's next turns drop the answered entries
        left = len(publisher._deadlines)
        for i in range(5):  # one turn: one produce_batch per topic
            publisher.fire_and_forget(trail, b'{"hop":%d}' % i, b"e%d" % i)
            publisher.fire_and_forget(audit, b'{"req":%d}' % i, b"r%d" % i)
        await asyncio.sleep(0)
        publisher.fire_and_forget(audit, b'{"req":"last"}', b"r-last")  # still waiting at close
        undelivered = await publisher.aclose(timeout_s=15)
        return acks, left, undelivered

    acks, left, undelivered = asyncio.run(scenario())
    assert len({offset for _partition, offset in acks}) == 20 and left == 0 and undelivered == 0
    assert sorted(r.value for r in read_topic(kafka_bootstrap, trail, expect=5, timeout=15)) == [
        b'{"hop":%d}' % i for i in range(5)
    ]
    audit_values = {r.value for r in read_topic(kafka_bootstrap, audit, expect=6, timeout=15)}
    assert audit_values == {b'{"req":%d}' % i for i in range(5)} | {b'{"req":"last"}'}
