"""Garbage-collector settings for the long-running services (process-wide, so set by each service's
entry point and never by library code).

CPython's cyclic collector walks every tracked container of a generation on each collection. Two
costs showed up under load (figures in docs/benchmarks.md):
  * full collections re-walk the whole start-up heap (modules, FastAPI/pydantic schemas, Faust, the
    topology): the ingress spent ~3.4 s of every 10 s of batch load in them, and each one stalled
    every request in flight (single-event p99 63 ms with them, 28 ms without; `bench.ingress_ab`);
  * young collections every 700 net allocations: a delivery or a request allocates a few dozen
    short-lived containers, so the collector ran hundreds of times a second.
Refcounting frees almost all of these objects anyway; the collector only exists for cycles. So after
start-up `gc.freeze()` moves the start-up heap out of the scanned generations (frozen objects are still
freed by refcounting when released), and young collections run every 50,000 allocations, which bounds
what cyclic garbage can pile up. Every collection's pause is a histogram on /metrics.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from hub import metrics

GC_PAUSE = metrics.histogram(
    "gc_pause_seconds",
    "Pauses of Python's cyclic garbage collector, by generation (every request or event in flight waits)",
    ("generation",),
    buckets=(0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
YOUNG_THRESHOLD = 50_000
_children = [GC_PAUSE.labels(str(generation)) for generation in range(3)]
_started = [0.0]


def _observe(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _started[0] = time.perf_counter()
    else:
        _children[info["generation"]].observe(time.perf_counter() - _started[0])


def tune_gc(enabled: bool = True) -> None:
    """Call once the service has started (everything imported and built). With `enabled` False
    (CARINHO_GC_TUNING=false, for comparisons) only the pause histogram is installed."""
    if _observe not in gc.callbacks:
        gc.callbacks.append(_observe)
    if not enabled:
        return
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, 20, 20)


__all__ = ["GC_PAUSE", "tune_gc"]
