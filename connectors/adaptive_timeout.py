"""Adaptive request timeout: p99 of recently observed latencies x p99_factor, kept within the
destination's [min, max] from topics.yaml; `initial` until enough samples exist. A timed-out call is
observed as its timeout, so a slowing destination pushes the timeout up instead of failing forever."""

from __future__ import annotations

import heapq
from collections import deque

from hub.topology import TimeoutPolicy


class AdaptiveTimeout:
    def __init__(self, policy: TimeoutPolicy, *, window: int = 512, min_samples: int = 20, recompute_every: int = 16):
        self.min_s = policy.min.total_seconds()
        self.max_s = policy.max.total_seconds()
        self.factor = policy.p99_factor
        self._current = policy.initial.total_seconds()
        self._samples: deque[float] = deque(maxlen=window)
        self._min_samples = min_samples
        self._every = recompute_every
        self._since = 0

    def current(self) -> float:
        return self._current

    def observe(self, latency_s: float) -> None:
        self._samples.append(latency_s)
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
