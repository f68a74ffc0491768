from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from connectors.retry_policy import jittered, next_retry, parking_tier, parse_retry_after
from hub.topology import RetryPolicy

POLICY = RetryPolicy.model_validate({"tiers": ["5s", "30s", "2m"], "jitter": 0.2})


def test_tiers_follow_the_schedule_then_run_out() -> None:
    rng = random.Random(1)
    steps = [next_retry(POLICY, n, rng=rng) for n in (1, 2, 3, 4)]
    assert [s.tier for s in steps[:3] if s] == [1, 2, 3]
    assert steps[3] is None
    assert next_retry(POLICY, 0) is None


def test_jitter_stays_within_bounds_and_spreads() -> None:
    rng = random.Random(42)
    delays = [jittered(10.0, 0.2, rng) for _ in range(2000)]
    assert min(delays) >= 8.0 and max(delays) <= 12.0
    assert max(delays) - min(delays) > 3.0  # actually spread, not constant
    assert jittered(10.0, 0.0) == 10.0


def test_retry_after_wins_when_longer() -> None:
    step = next_retry(RetryPolicy.model_validate({"tiers": ["1s"], "jitter": 0}), 1, retry_after_s=9.0)
    assert step is not None and step.delay_s == 9.0
    step = next_retry(RetryPolicy.model_validate({"tiers": ["10s"], "jitter": 0}), 1, retry_after_s=2.0)
    assert step is not None and step.delay_s == 10.0


def test_parse_retry_after_seconds_and_http_date() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=30), usegmt=True), now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after("") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("999999999") == 86_400.0


def test_parking_uses_the_longest_tier_not_longer_than_the_wait() -> None:
    assert parking_tier(POLICY, 3.0).tier == 1 and parking_tier(POLICY, 3.0).delay_s == 3.0
    assert parking_tier(POLICY, 45.0).tier == 2 and parking_tier(POLICY, 45.0).delay_s == 30.0
    long_wait = parking_tier(POLICY, 7200.0)
    assert long_wait.tier == 3 and long_wait.delay_s == 120.0
