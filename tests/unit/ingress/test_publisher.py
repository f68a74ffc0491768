"""The publisher's backstop for a delivery report that never comes (librdkafka always reports, so
this is bookkeeping with no Kafka in it; the real acks and side records are tested against the
broker in tests/integration/ingress/test_publisher_kafka.py)."""

from __future__ import annotations

import asyncio
from collections import deque

import pytest

from ingress.publisher import PublishFailed, expire_overdue


async def test_overdue_writes_fail_and_answered_ones_leave() -> None:
    loop = asyncio.get_running_loop()
    answered, waiting, later = loop.create_future(), loop.create_future(), loop.create_future()
    answered.set_result((0, 1))
    deadlines = deque([(5.0, answered), (6.0, waiting), (9.0, later)])
    expire_overdue(deadlines, now=5.5)
    assert list(deadlines) == [(6.0, waiting), (9.0, later)]  # the answered head left; nothing due yet
    assert not waiting.done()
    expire_overdue(deadlines, now=6.0)
    with pytest.raises(PublishFailed, match="did not acknowledge in time"):
        waiting.result()
    assert list(deadlines) == [(9.0, later)] and not later.done()
    later.set_result((0, 2))
    expire_overdue(deadlines, now=7.0)  # answered before its deadline: just dropped
    assert not deadlines and later.result() == (0, 2)
