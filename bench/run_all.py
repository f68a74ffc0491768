"""`make bench`: every benchmark in one run, each with its baseline measured side by side, each in
its own process (a benchmark's broker, threads and memory never leak into the next one).

Output: bench/results/<name>.log (everything the benchmark printed, its JSON summary last) and
bench/results/summary.json. Figures are copied into docs/benchmarks.md with the machine and the
command: the machines are shared and noisy, so report medians and ratios."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from bench.common import RESULTS, machine, save

BENCHMARKS = (
    ("ingress", ["-m", "bench.ingress_throughput"]),
    ("ingress_cpu", ["-m", "bench.ingress_cpu"]),
    ("processors", ["-m", "bench.processors_routing"]),
    ("processors_state", ["-m", "bench.processors_state"]),
    ("processors_release", ["-m", "bench.processors_release"]),
    ("processors_restart", ["-m", "bench.processors_restart"]),
    ("processors_standby", ["-m", "bench.processors_standby"]),
    ("processors_idle", ["-m", "bench.processors_idle"]),
    ("processors_trail_index", ["-m", "bench.processors_trail_index"]),
    ("processors_trail_recovery", ["-m", "bench.processors_trail_recovery"]),
    ("connectors", ["-m", "bench.connectors_throughput"]),
    ("hub_end_to_end", ["-m", "bench.hub_end_to_end"]),
    ("hub_idle", ["-m", "bench.hub_idle"]),
)


def main(argv: list[str] | None = None) -> int:
    only = set(argv if argv is not None else sys.argv[1:])
    RESULTS.mkdir(parents=True, exist_ok=True)
    summary: dict[str, object] = {"machine": machine(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    failed = []
    for name, args in BENCHMARKS:
        if only and name not in only:
            continue
        command = [sys.executable, *args]
        print(f"=== {name}: {' '.join(command[1:])}", flush=True)
        started = time.monotonic()
        with open(RESULTS / f"{name}.log", "w") as log:
            code = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=False).returncode
        seconds = round(time.monotonic() - started, 1)
        summary[name] = {"exit_code": code, "seconds": seconds, "log": str(RESULTS / f"{name}.log")}
        print(f"    exit {code} in {seconds}s -> {RESULTS / f'{name}.log'}", flush=True)
        if code != 0:
            failed.append(name)
    save("summary", summary)
    print(json.dumps(summary, indent=2, default=str))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
