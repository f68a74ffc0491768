"""Adaptive request timeout: p99 of recently observed latencies x p99_factor, kept within the
destination's [min, max] from topics.yaml; `initial` until enough samples exist. A timed-out call is
observed as its timeout, and it raises the timeout at once: back to `initial` when it was below it,
else doubled (up to `max`). Without that, a destination that only got slower than a timeout learned
from fast days stayed shut out: its calls timed out, the breaker opened, and with one probe a minute
the p99 took many minutes to move."""

from __future__ import annotations

import heapq
from collections import deque

from hub.topology import TimeoutPolicy


class AdaptiveTimeout:
    def __init__(self, policy: TimeoutPolicy, *, window: int = 512, min_samples: int = 20, recompute_every: int = 16):
        self.min_s = policy.min.total_seconds()
        self.max_s = policy.max.total_seconds()
        self.factor = policy.p99_factor
        self.initial_s = policy.initial.total_seconds()
        self._current = self.initial_s
        self._samples: deque[float] = deque(maxlen=window)
        self._min_samples = min_samples
        self._every = recompute_every
        self._since = 0

    def current(self) -> float:
        return self._current

    def observe(self, latency_s: float, *, timed_out: bool = False) -> None:
        self._samples.append(latency_s)
        if timed_out:
            self._current = min(self.max_s, max(self.initial_s, self._current * 2))
            self._since = 0  # the next recompute waits for samples taken at the new timeout
            return
        self._since += 1
        if len(self._samples) >= self._min_samples and self._since >= self._every:
            self._since = 0
            self._current = min(self.max_s, max(self.min_s, self.p99() * self.factor))

    def p99(self) -> float:
        n = len(self._samples)
        if not n:
            return 0.0
        index = min(n - 1, max(0, round(0.99 * n) - 1))
        # sorted(samples)[index] without sorting the whole window: it is the (n - index)-th largest.
        return heapq.nlargest(n - index, self._samples)[-1]
