"""processors.app._retrying: the start-up calls to the broker ride out its transient errors only."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException

from processors.app import _retrying


def test_transient_errors_are_retried_until_the_call_succeeds() -> None:
    answers = [
        KafkaException(KafkaError(KafkaError.NOT_LEADER_FOR_PARTITION)),
        KafkaException(KafkaError(KafkaError._TIMED_OUT)),
    ]

    def call() -> dict[int, int]:
        if answers:
            raise answers.pop(0)
        return {0: 42}

    assert _retrying(call, timeout=5) == {0: 42}
    assert not answers


def test_other_errors_and_a_lasting_transient_one_are_raised() -> None:
    def refused() -> None:
        raise KafkaException(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED))

    with pytest.raises(KafkaException):
        _retrying(refused, timeout=5)

    calls = 0

    def never_ready() -> None:
        nonlocal calls
        calls += 1
        raise KafkaException(KafkaError(KafkaError.LEADER_NOT_AVAILABLE))

    with pytest.raises(KafkaException):
        _retrying(never_ready, timeout=0.5)
    assert calls >= 2
