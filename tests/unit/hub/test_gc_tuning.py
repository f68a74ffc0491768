"""hub.gc_tuning changes process-wide state, so each case runs in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys

from hub.settings import PROJECT_ROOT

PROBE = """
import gc, json, sys
from hub.gc_tuning import GC_PAUSE, tune_gc
from hub.metrics import REGISTRY
tune_gc(sys.argv[1] == "on")
before = gc.get_freeze_count()
cycle = []; cycle.append(cycle); del cycle
gc.collect()
pauses = REGISTRY.get_sample_value("carinho_gc_pause_seconds_count", {"generation": "2"})
print(json.dumps({"frozen": before, "threshold": gc.get_threshold()[0], "pauses": pauses}))
"""


def probe(mode: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out)  # type: ignore[no-any-return]


def test_tuning_freezes_the_start_up_heap_and_raises_the_young_threshold() -> None:
    on = probe("on")
    assert on["frozen"] > 1000  # modules, pydantic and prometheus objects are out of the scanned generations
    assert on["threshold"] == 50_000
    assert on["pauses"] == 2  # tune_gc's own full collection and the one after it, both timed


def test_disabled_tuning_keeps_the_defaults_but_still_times_pauses() -> None:
    off = probe("off")
    assert off["frozen"] == 0
    assert off["threshold"] == 700
    assert off["pauses"] is not None and off["pauses"] >= 1
