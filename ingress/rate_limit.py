"""Token bucket per API key: `per_second` refill, `burst` capacity (topics.yaml sources.*.rate_limit)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class TokenBucket:
    __slots__ = ("burst", "clock", "rate", "tokens", "updated")

    def __init__(self, per_second: float, burst: int, clock: Callable[[], float] = time.monotonic):
        self.rate = per_second
        self.burst = float(burst)
        self.tokens = float(burst)
        self.clock = clock
        self.updated = clock()

    def take(self, n: float = 1.0) -> float:
        """Take n tokens; return 0 when allowed, else the seconds until n tokens are available."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= n - 1e-9:  # float refill must not refuse an exactly-due token
            self.tokens = max(0.0, self.tokens - n)
            return 0.0
        return (n - self.tokens) / self.rate


class RateLimiter:
    """One bucket per key id; a key's own limit overrides its source's."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._buckets: dict[str, TokenBucket] = {}
        self._clock = clock

    def check(self, key_id: str, per_second: float, burst: int) -> int:
        """0 when allowed; otherwise the Retry-After in whole seconds (at least 1)."""
        bucket = self._buckets.get(key_id)
        if bucket is None or bucket.rate != per_second or bucket.burst != float(burst):
            bucket = self._buckets[key_id] = TokenBucket(per_second, burst, self._clock)
        wait = bucket.take()
        return 0 if wait == 0 else max(1, math.ceil(wait))
