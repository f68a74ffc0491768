from __future__ import annotations

from ingress.rate_limit import RateLimiter, TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_the_burst_then_refills_at_the_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(per_second=10, burst=5, clock=clock)
    assert [bucket.take() for _ in range(5)] == [0.0] * 5
    wait = bucket.take()
    assert 0.09 < wait <= 0.1
    clock.now += 0.1
    assert bucket.take() == 0.0


def test_limiter_answers_retry_after_in_whole_seconds_per_key() -> None:
    clock = Clock()
    limiter = RateLimiter(clock)
    assert all(limiter.check("a", 0.5, 2) == 0 for _ in range(2))
    assert limiter.check("a", 0.5, 2) == 2  # one token every 2 s
    assert limiter.check("b", 0.5, 2) == 0  # another key has its own bucket
    clock.now += 2
    assert limiter.check("a", 0.5, 2) == 0


def test_changed_limits_take_effect() -> None:
    clock = Clock()
    limiter = RateLimiter(clock)
    assert limiter.check("a", 1, 1) == 0
    assert limiter.check("a", 1, 1) == 1
    assert limiter.check("a", 100, 100) == 0  # new limit, new bucket
