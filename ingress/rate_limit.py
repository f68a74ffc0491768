"""Rate limit per API key: a token bucket each (`hub.token_bucket`, refusing mode); limits from
topics.yaml sources.*.rate_limit or the key's own."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from hub.token_bucket import TokenBucket


class RateLimiter:
    """One bucket per key id; a key's own limit overrides its source's."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._buckets: dict[str, TokenBucket] = {}
        self._clock = clock

    def check(self, key_id: str, per_second: float, burst: int) -> int:
        """0 when allowed; otherwise the Retry-After in whole seconds (at least 1)."""
        bucket = self._buckets.get(key_id)
        if bucket is None or bucket.rate != per_second or bucket.capacity != float(burst):
            bucket = self._buckets[key_id] = TokenBucket(per_second, burst, clock=self._clock)
        wait = bucket.take()
        return 0 if wait == 0 else max(1, math.ceil(wait))
