"""A token bucket (requests/s with a burst), shared by the ingress (per API key: refuse with a
Retry-After) and the connectors (per destination: wait for a turn)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class TokenBucket:
    def __init__(self, per_second: float, burst: int, *, clock: Callable[[], float] = time.monotonic):
        self.rate = per_second
        self.capacity = float(burst)
        self._tokens = float(burst)
        self._clock = clock
        self._last = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
        self._last = now

    def take(self) -> float:
        """Refusing mode: take a token if there is one (0 returned), else the seconds until there is."""
        self._refill()
        if self._tokens >= 1.0 - 1e-9:  # float refill must not refuse an exactly-due token
            self._tokens = max(0.0, self._tokens - 1.0)
            return 0.0
        return (1.0 - self._tokens) / self.rate

    def reserve(self) -> float:
        """Queueing mode: take one token (the balance may go negative, so waiting callers are served in
        arrival order and the long-run rate never exceeds `per_second`); return the wait before using it."""
        self._refill()
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def try_acquire(self) -> bool:
        self._refill()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    async def acquire(self) -> None:
        wait = self.reserve()
        if wait > 0:
            await asyncio.sleep(wait)
