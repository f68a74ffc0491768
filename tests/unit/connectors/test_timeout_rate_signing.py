from __future__ import annotations

import asyncio
import time

from connectors.adaptive_timeout import AdaptiveTimeout
from connectors.rate_limit import TokenBucket
from connectors.signing import sign, verify
from hub.topology import TimeoutPolicy

POLICY = TimeoutPolicy.model_validate({"initial": "2s", "min": "200ms", "max": "10s", "p99_factor": 3})


def test_timeout_starts_at_initial_then_follows_p99() -> None:
    timeout = AdaptiveTimeout(POLICY)
    assert timeout.current() == 2.0
    for _ in range(200):
        timeout.observe(0.1)
    assert abs(timeout.current() - 0.3) < 1e-9  # p99 100 ms x 3


def test_timeout_is_clamped_to_bounds() -> None:
    fast = AdaptiveTimeout(POLICY)
    for _ in range(100):
        fast.observe(0.001)
    assert fast.current() == 0.2
    slow = AdaptiveTimeout(POLICY)
    for _ in range(100):
        slow.observe(8.0)
    assert slow.current() == 10.0


def test_timeout_grows_when_the_tail_grows() -> None:
    timeout = AdaptiveTimeout(POLICY, window=100)
    for _ in range(100):
        timeout.observe(0.1)
    low = timeout.current()
    for _ in range(10):
        timeout.observe(1.0)
    for _ in range(16):
        timeout.observe(0.1)
    assert timeout.current() > low and timeout.current() == 3.0


def test_a_timeout_raises_the_timeout_at_once() -> None:
    """Learned on fast days (floor 0.2 s), a destination now answering in 350 ms must get through on
    the next call, not after the p99 of many more samples (one a minute while the breaker is open)."""
    timeout = AdaptiveTimeout(POLICY)
    for _ in range(200):
        timeout.observe(0.01)
    assert timeout.current() == 0.2
    timeout.observe(0.2, timed_out=True)
    assert timeout.current() == 2.0  # back to `initial`: the 350 ms answer fits
    timeout.observe(2.0, timed_out=True)
    assert timeout.current() == 4.0  # above `initial`: doubled
    for _ in range(3):
        timeout.observe(4.0, timed_out=True)
    assert timeout.current() == 10.0  # never past `max`
    for _ in range(15):
        timeout.observe(0.35)
    assert timeout.current() == 10.0  # no recompute before 16 answers at the new timeout
    timeout.observe(0.35)
    assert timeout.current() == 10.0  # the window's p99 is still a timed-out call: 4 s x 3, capped


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_burst_then_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, 5, clock=clock)
    assert all(bucket.try_acquire() for _ in range(5))
    assert not bucket.try_acquire()
    clock.now += 0.1
    assert bucket.try_acquire()
    assert not bucket.try_acquire()
    clock.now += 10
    assert sum(bucket.try_acquire() for _ in range(20)) == 5  # refill capped at burst


def test_token_bucket_reservations_queue_in_order() -> None:
    clock = FakeClock()
    bucket = TokenBucket(100, 1, clock=clock)
    waits = [bucket.reserve() for _ in range(4)]
    assert all(abs(a - b) < 1e-9 for a, b in zip(waits, [0.0, 0.01, 0.02, 0.03], strict=True))


async def test_token_bucket_limits_real_throughput() -> None:
    bucket = TokenBucket(200, 10)
    started = time.monotonic()
    await asyncio.gather(*(bucket.acquire() for _ in range(60)))
    elapsed = time.monotonic() - started
    assert 0.2 <= elapsed < 0.6  # (60 - 10 burst) / 200 per s = 0.25 s


def test_signature_verifies_with_any_active_secret_and_rejects_tampering() -> None:
    body = b'{"a":1}'
    header = sign(body, ["new", "old"], timestamp=1_700_000_000)
    assert header.startswith("t=1700000000,v1=") and header.count("v1=") == 2
    assert verify(body, header, ["new"], now=1_700_000_010)
    assert verify(body, header, ["old"], now=1_700_000_010)
    assert not verify(body, header, ["other"], now=1_700_000_010)
    assert not verify(b'{"a":2}', header, ["new"], now=1_700_000_010)
    assert not verify(body, header, ["new"], now=1_700_000_000 + 301)  # replay window
    assert not verify(body, None, ["new"])
    assert not verify(body, "garbage", ["new"])
