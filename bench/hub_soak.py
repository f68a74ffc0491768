"""The whole hub under a steady load for a long time (not a test): nothing lost or doubled in any
window, and whether any process's memory keeps growing.

    .venv/bin/python -m bench.hub_soak [--rate 200] [--windows 30] [--window-seconds 60]

Starts a local hub as bench.hub_end_to_end does (deploy/local/hub.sh in a temporary run directory,
its own broker on a free port, destinations' rate limits out of the way) and offers `lead.created`
events at --rate, window after window (bench.hub_end_to_end.run_rate: each window posts for
--window-seconds, waits until every accepted event reached crm, marketing and its WhatsApp/SMS
auto-reply, and checks each was delivered exactly once). After every window it records each
process's resident memory (RSS, with its children: the broker is a JVM, the services Python).

Reports per window the delivered rate, the 202-to-destination latency (p50/p99) and the RSS of every
process; then, per process, the RSS after the first window, the last, the peak, and the growth from
the middle window to the last (a process still warming its caches grows early; a leak keeps growing
in the second half). Exits 1 when any window breaks the invariant.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

from bench.common import ROOT, machine, save
from bench.hub_end_to_end import Hub, bench_topology, run_rate
from ingress.api_keys import ApiKeyStore


def rss_mb(process: psutil.Process) -> float:
    """Resident memory of a process and its children, in MB (a service may run under a wrapper)."""
    total = 0
    for proc in (process, *process.children(recursive=True)):
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            continue
    return round(total / 1e6, 1)


def memory_summary(samples: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Per process: RSS after the first window, the middle one and the last, the peak, and the growth
    over the second half (last minus middle)."""
    middle = samples[len(samples) // 2]
    out: dict[str, dict[str, float]] = {}
    for name in samples[0]:
        series = [s[name] for s in samples if name in s]
        out[name] = {
            "first_mb": series[0],
            "middle_mb": middle.get(name, series[0]),
            "last_mb": series[-1],
            "peak_mb": max(series),
            "second_half_growth_mb": round(series[-1] - middle.get(name, series[0]), 1),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=200.0, help="offered events/s")
    parser.add_argument("--windows", type=int, default=30)
    parser.add_argument("--window-seconds", type=float, default=60.0)
    parser.add_argument("--batch", type=int, default=20, help="events per POST /v1/events/batch")
    parser.add_argument("--drain-timeout", type=float, default=180.0)
    args = parser.parse_args(argv)
    summary: dict[str, Any] = {"machine": machine(), "command": " ".join(sys.argv), "windows": []}
    samples: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="carinho-soak-") as tmp:
        hub = Hub(Path(tmp) / "run", bench_topology(Path(tmp)))
        started = time.monotonic()
        try:
            hub.sh("up")
            api_key = ApiKeyStore(hub.run_dir / "api-keys.json").create("site", rate_limit_per_second=1e6)[1]
            time.sleep(2.0)  # the ingress reloads its key file every second
            for window in range(args.windows):
                row = run_rate(hub, api_key, args.rate, args.window_seconds, args.batch, args.drain_timeout)
                memory = {name: rss_mb(proc) for name, proc in hub.processes().items()}
                samples.append(memory)
                brief = {
                    "window": window,
                    "minutes_since_start": round((time.monotonic() - started) / 60, 1),
                    "accepted": row["accepted"],
                    "refused": row["refused"],
                    "delivered_events_per_s": row["delivered_events_per_s"],
                    "latency_ms_p50": {d: v["latency_ms_p50"] for d, v in row["destinations"].items()},
                    "latency_ms_p99": {d: v["latency_ms_p99"] for d, v in row["destinations"].items()},
                    "invariant_violations": row["invariant_violations"],
                    "rss_mb": memory,
                }
                print(json.dumps(brief), flush=True)
                summary["windows"].append(brief)
        finally:
            try:  # the windows measured so far are saved whatever `down` says
                hub.sh("down")
            except RuntimeError as exc:
                summary["down_error"] = str(exc)[-500:]
    windows = summary["windows"]
    ok = bool(windows) and all(w["invariant_violations"] == 0 and w["accepted"] > 0 for w in windows)
    summary["invariant_holds"] = ok
    summary["events_accepted"] = sum(w["accepted"] for w in windows)
    summary["events_refused"] = sum(w["refused"] for w in windows)
    if windows:
        summary["delivered_events_per_s_median"] = statistics.median(w["delivered_events_per_s"] for w in windows)
        summary["memory"] = memory_summary(samples)
    save("hub_soak", summary)
    print(json.dumps({k: v for k, v in summary.items() if k != "windows"}, indent=2))
    print(f"results: {ROOT / 'bench' / 'results' / 'hub_soak.json'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
