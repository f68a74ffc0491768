"""bench.machine_speed.SpeedProbe: samples the machine's speed beside a benchmark."""

from __future__ import annotations

import math
import time

from bench.machine_speed import SpeedProbe
from tests.kafka_support import wait_until


def test_the_probe_reports_the_median_of_its_samples_inside_a_window() -> None:
    before = time.monotonic()
    with SpeedProbe(period=0.05) as probe:
        wait_until(lambda: len(probe._samples) >= 3, timeout=20, interval=0.05, message="three samples")
        inside = probe.median_ms(before)
        samples = [ms for _at, ms in probe._samples]
        assert inside is not None and min(samples) <= inside <= max(samples)
        assert 0 < inside < 1_000  # milliseconds of CPU for a 20,000-step loop
        assert probe.median_ms(before - 10, before - 5) is None  # no sample in that window
    closed_with = len(probe._samples)
    time.sleep(0.2)
    assert len(probe._samples) == closed_with  # the probe process is gone


def test_a_round_gets_its_speed_and_steal_and_nan_where_unknown() -> None:
    before = time.monotonic()
    with SpeedProbe(period=0.05) as probe:
        wait_until(lambda: len(probe._stat) >= 3, timeout=20, interval=0.05, message="three /proc/stat readings")
        figures = probe.figures(before)
        assert figures["probe_ms"] == probe.median_ms(before)
        assert 0.0 <= figures["steal"] <= 1.0  # a share of the machine's CPU time
        empty = probe.figures(before - 10, before - 5)
    assert math.isnan(empty["probe_ms"]) and math.isnan(empty["steal"])  # unknown is not "no steal"
