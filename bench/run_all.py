"""`make bench`: every benchmark in one run, each with its baseline measured side by side.
Results: bench/results/<name>.json; figures are copied by hand into docs/benchmarks.md with the
machine and the command (the machines are shared and noisy: medians and ratios)."""

from __future__ import annotations

import importlib
import json
import sys
import time
import traceback

from bench.common import machine, save

BENCHMARKS = (
    ("ingress", "bench.ingress_throughput"),
    ("processors", "bench.processors_routing"),
    ("connectors", "bench.connectors_throughput"),
)


def main(argv: list[str] | None = None) -> int:
    only = set(argv if argv is not None else sys.argv[1:])
    summary: dict[str, object] = {"machine": machine(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    failed = []
    for name, module in BENCHMARKS:
        if only and name not in only:
            continue
        print(f"=== {name}: python -m {module}", flush=True)
        try:
            result = importlib.import_module(module).main([])
            summary[name] = result.get("targets") if isinstance(result, dict) else None
        except Exception:  # one broken benchmark must not hide the others' figures
            traceback.print_exc()
            failed.append(name)
            summary[name] = "failed"
    save("summary", summary)
    print(json.dumps(summary, indent=2, default=str))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
