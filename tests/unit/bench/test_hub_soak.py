"""bench.hub_soak's memory summary: the growth it reports is the second half's, so a process that
fills its caches early is not taken for a leak, and one that keeps growing is."""

from __future__ import annotations

from bench.hub_soak import memory_summary


def test_growth_is_measured_over_the_second_half() -> None:
    samples = [
        {"ingress": 80.0, "processors": 100.0},
        {"ingress": 95.0, "processors": 110.0},
        {"ingress": 95.5, "processors": 120.0},
        {"ingress": 95.0, "processors": 130.0},
        {"ingress": 96.0, "processors": 140.0},
    ]
    summary = memory_summary(samples)
    assert summary["ingress"] == {
        "first_mb": 80.0,
        "middle_mb": 95.5,
        "last_mb": 96.0,
        "peak_mb": 96.0,
        "second_half_growth_mb": 0.5,
    }
    assert summary["processors"]["second_half_growth_mb"] == 20.0
    assert summary["processors"]["peak_mb"] == 140.0


def test_a_process_missing_from_some_samples_is_summarised_from_those_it_has() -> None:
    summary = memory_summary([{"ingress": 80.0, "broker": 500.0}, {"ingress": 81.0}, {"ingress": 82.0}])
    assert summary["broker"]["first_mb"] == 500.0 and summary["broker"]["last_mb"] == 500.0
    assert summary["ingress"]["second_half_growth_mb"] == 1.0
