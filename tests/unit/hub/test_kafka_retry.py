"""hub.kafka_retry: calls to the broker ride out its transient errors, and only those."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException

from hub.kafka_retry import retry_transient


def test_transient_errors_are_retried_until_the_call_succeeds() -> None:
    answers = [
        KafkaException(KafkaError(KafkaError.NOT_LEADER_FOR_PARTITION)),
        KafkaException(KafkaError(KafkaError._TIMED_OUT)),
        KafkaException(KafkaError(KafkaError._ALL_BROKERS_DOWN)),
    ]

    def call() -> dict[int, int]:
        if answers:
            raise answers.pop(0)
        return {0: 42}

    assert retry_transient(call, timeout=5) == {0: 42}
    assert not answers


def test_other_errors_and_a_lasting_transient_one_are_raised() -> None:
    def refused() -> None:
        raise KafkaException(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED))

    with pytest.raises(KafkaException):
        retry_transient(refused, timeout=5)

    calls = 0

    def never_ready() -> None:
        nonlocal calls
        calls += 1
        raise KafkaException(KafkaError(KafkaError.LEADER_NOT_AVAILABLE))

    with pytest.raises(KafkaException):
        retry_transient(never_ready, timeout=0.5)
    assert calls >= 2
