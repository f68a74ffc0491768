"""Riding out the broker's transient errors: a topic created a moment ago, or a leader moving, gives
some clients errors for a few moments (not always flagged retriable: `get_watermark_offsets`'
NOT_LEADER_FOR_PARTITION is not)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from confluent_kafka import KafkaError, KafkaException

T = TypeVar("T")

TRANSIENT = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._TIMED_OUT,
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,  # a broker restarting under a call that reached it before
    }
)


def is_transient(error: object) -> bool:
    return isinstance(error, KafkaError) and (error.retriable() or error.code() in TRANSIENT)


def retry_transient(call: Callable[[], T], timeout: float) -> T:
    """`call()`, again every 0.2 s while it raises a transient KafkaException, for up to `timeout`
    seconds; any other error, or the last transient one, is raised."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except KafkaException as exc:
            if not is_transient(exc.args[0] if exc.args else None) or time.monotonic() > deadline:
                raise
            time.sleep(0.2)
