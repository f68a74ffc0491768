"""How fast this machine runs Python right now, sampled beside a benchmark.

The shared 2-core VM runs at two speeds, minutes apart: the same pure-Python loop, pinned to one
CPU, took 0.36 s and 0.64 s of CPU time two minutes apart with our broker idle and almost no steal
time (docs/benchmarks.md, "The machine runs at two speeds"). A benchmark's CPU per event moves with it
by up to 1.8x, so a round is only comparable with rounds taken at the same speed.

`SpeedProbe` runs a small process that times a fixed pure-Python workload (~4 ms of CPU) every
`period` seconds, under 1 % of one CPU. `median_ms(since, until)` is the probe's median between two
`time.monotonic()` readings (CLOCK_MONOTONIC is the same clock in every process): higher means a
slower machine. Rounds report it as `probe_ms`. In five identical rounds CPU per event spread 1.40x,
CPU per event divided by `probe_ms` 1.14x (sixteenth session). The probe also feels the benchmark's
own load (a loop the scheduler cuts restarts with cold caches): compare rounds of one contender.

The VM's vCPUs are also taken away by the host at times (steal time: 9-30 % of the machine's CPU time
in the twenty-first session's worst minutes, when one worker routed 3,400 events/s instead of 9,000).
`steal_share(since, until)` is the share of the machine's CPU time stolen in a window, from
/proc/stat read at each probe sample; rounds report it as `steal`. `figures(since)` gives a round
both, NaN where unknown.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import threading
import time
from types import TracebackType

# A fixed workload: dict stores and integer arithmetic, the kind of work the services' loops do.
_PROBE = """
import sys, time
period = float(sys.argv[1])
while True:
    started = time.process_time()
    d = {}
    for i in range(20000):
        d[i & 1023] = i * 3 + (i >> 2)
    print(f"{time.monotonic():.4f} {(time.process_time() - started) * 1e3:.4f}", flush=True)
    time.sleep(period)
"""


def _cpu_ticks() -> tuple[int, int] | None:
    """(steal, all) clock ticks of every CPU since boot, from /proc/stat's `cpu` line (Linux)."""
    try:
        with open("/proc/stat", "rb") as stat:
            fields = [int(field) for field in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal [guest guest_nice: already inside user and nice]
    return (fields[7], sum(fields[:8])) if len(fields) >= 8 else None


class SpeedProbe:
    def __init__(self, period: float = 0.5):
        self._samples: list[tuple[float, float]] = []  # (monotonic time, probe CPU ms)
        self._stat: list[tuple[float, int, int]] = []  # (monotonic time, steal ticks, all ticks)
        self._process = subprocess.Popen([sys.executable, "-c", _PROBE, str(period)], stdout=subprocess.PIPE, text=True)
        self._reader = threading.Thread(target=self._read, name="speed-probe", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            at, ms = line.split()
            self._samples.append((float(at), float(ms)))
            ticks = _cpu_ticks()
            if ticks is not None:
                self._stat.append((time.monotonic(), *ticks))

    def median_ms(self, since: float, until: float | None = None) -> float | None:
        """The probe's median CPU ms between two time.monotonic() readings (None: no sample)."""
        end = time.monotonic() if until is None else until
        window = [ms for at, ms in list(self._samples) if since <= at <= end]
        return round(statistics.median(window), 3) if window else None

    def steal_share(self, since: float, until: float | None = None) -> float | None:
        """The share of the machine's CPU time the host took away (steal) between two time.monotonic()
        readings (None: fewer than two samples, or no /proc/stat)."""
        end = time.monotonic() if until is None else until
        window = [(steal, total) for at, steal, total in list(self._stat) if since <= at <= end]
        if len(window) < 2 or window[-1][1] == window[0][1]:
            return None
        return round((window[-1][0] - window[0][0]) / (window[-1][1] - window[0][1]), 3)

    def figures(self, since: float, until: float | None = None) -> dict[str, float]:
        """A round's `probe_ms` and `steal` (NaN when the window has no sample, or no /proc/stat)."""
        probe_ms, steal = self.median_ms(since, until), self.steal_share(since, until)
        return {
            "probe_ms": float("nan") if probe_ms is None else probe_ms,
            "steal": float("nan") if steal is None else steal,
        }

    def close(self) -> None:
        self._process.kill()
        self._process.wait()
        self._reader.join(5)

    def __enter__(self) -> SpeedProbe:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()
