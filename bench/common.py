"""Shared benchmark plumbing: a private broker, free ports, process RSS sampling, medians."""

from __future__ import annotations

import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import psutil  # type: ignore[import-untyped]
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from hub.kafka_config import admin_config

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
BENCH_KAFKA_PORT = int(os.environ.get("CARINHO_BENCH_KAFKA_PORT", "19992"))


class Variant(NamedTuple):
    """One side of an A/B (bench.processors_ab, bench.ingress_ab): `name:` then comma-separated parts,
    `@DIR` (run from another checkout), `python=PATH` (another interpreter), `+MODULE` (another server
    module, where the tool runs servers) and `KEY=VALUE` (the process's settings)."""

    name: str
    cwd: Path
    env: dict[str, str]
    python: str
    module: str | None


def parse_variant(text: str) -> Variant:
    name, _, spec = text.partition(":")
    if not name:
        raise SystemExit(f"--variant {text!r}: expected NAME:[@DIR][,python=PATH][,+MODULE][,KEY=VALUE...]")
    cwd, env, python, module = ROOT, {}, sys.executable, None
    for part in filter(None, spec.split(",")):
        if part.startswith("@"):
            cwd = Path(part[1:]).resolve()
        elif part.startswith("+"):
            module = part[1:]
        elif part.startswith("python="):
            python = part.removeprefix("python=")
        else:
            key, equals, value = part.partition("=")
            if not (key and equals):
                raise SystemExit(f"--variant {text!r}: {part!r} is none of @DIR, python=PATH, +MODULE, KEY=VALUE")
            env[key] = value
    return Variant(name, cwd, env, python, module)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def bench_broker() -> Iterator[str]:
    """A fresh single-node KRaft broker for the benchmark run (or KAFKA_BOOTSTRAP_SERVERS), its JIT
    warmed up before anything is measured (bench/broker_warmup.py; a broker elsewhere is not)."""
    from bench.broker_warmup import warm_up_broker  # it imports this module

    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        warm_up_broker(external)
        yield external
        return
    env = {
        **os.environ,
        "KAFKA_PORT": str(BENCH_KAFKA_PORT),
        "KAFKA_RUN_DIR": str(ROOT / ".run" / f"kafka-bench-{BENCH_KAFKA_PORT}"),
        "KAFKA_HEAP": "1g",
    }
    script = str(ROOT / "deploy" / "local" / "kafka.sh")
    subprocess.run([script, "reset"], env=env, check=True, stdout=subprocess.DEVNULL)
    subprocess.run([script, "start"], env=env, check=True, stdout=subprocess.DEVNULL)
    try:
        warm_up_broker(f"127.0.0.1:{BENCH_KAFKA_PORT}")
        yield f"127.0.0.1:{BENCH_KAFKA_PORT}"
    finally:
        subprocess.run([script, "stop"], env=env, check=False, stdout=subprocess.DEVNULL)


def drop_hub(namespace: str, bootstrap: str) -> None:
    """Delete a finished benchmark's topics (every name starting with `namespace`, and quixstreams'
    changelog and repartition topics of its consumer groups there, `changelog__<group>--...`): a
    broker reused for many runs otherwise runs out of file descriptors (every partition keeps its files
    open)."""
    admin = AdminClient(admin_config(bootstrap))
    quix = tuple(f"{kind}__{namespace}" for kind in ("changelog", "repartition"))
    names = [t for t in admin.list_topics(timeout=30).topics if t.startswith(namespace) or t.startswith(quix)]
    for future in admin.delete_topics(names, operation_timeout=30).values() if names else []:
        try:
            future.result(60)
        except KafkaException as exc:  # already gone, or the broker is busy: not worth failing the run
            print(f"could not delete a bench topic: {exc}", file=sys.stderr)


class RssSampler:
    """Peak resident memory of a process (and its children) while a load runs."""

    def __init__(self, pid: int, interval: float = 0.2):
        self.process = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                rss = self.process.memory_info().rss
                rss += sum(c.memory_info().rss for c in self.process.children(recursive=True))
                self.peak = max(self.peak, rss)
            except psutil.Error:
                return
            time.sleep(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    @property
    def peak_mb(self) -> float:
        return round(self.peak / 1_048_576, 1)


def cpu_seconds_with_children(process: Any) -> float:
    """User + system CPU seconds of a psutil process, its reaped children's included."""
    times = process.cpu_times()
    return float(times.user + times.system + times.children_user + times.children_system)


def broker_process(bootstrap: str) -> Any | None:
    """The local broker's JVM (listening on the bootstrap port), or None when it is elsewhere."""
    port = int(bootstrap.rsplit(":", 1)[1])
    for conn in psutil.net_connections("tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port and conn.pid:
            return psutil.Process(conn.pid)
    return None


class MainThreadTime:
    """How a process's main thread spent the wall time since this object was made: on a CPU, or
    runnable but waiting for one (Linux's /proc/<pid>/task/<pid>/schedstat). A single-threaded
    Python loop routes at most as fast as its thread gets a CPU, so on a shared two-core machine the
    wait share tells "more work per event" apart from "less CPU given" (docs/benchmarks.md)."""

    def __init__(self, pid: int):
        self.path = Path(f"/proc/{pid}/task/{pid}/schedstat")
        self.started = time.monotonic()
        self.first = self._read()

    def _read(self) -> tuple[int, int]:
        on_cpu_ns, waiting_ns, _slices = self.path.read_text().split()
        return int(on_cpu_ns), int(waiting_ns)

    def cpu_seconds(self) -> float:
        """CPU seconds the main thread has used since this object was made."""
        return (self._read()[0] - self.first[0]) / 1e9

    def shares(self) -> dict[str, float]:
        """{"main_thread_on_cpu": share, "main_thread_runqueue_wait": share} of the elapsed time."""
        elapsed = max(time.monotonic() - self.started, 1e-6)
        on_cpu, waiting = (now - then for now, then in zip(self._read(), self.first, strict=True))
        return {
            "main_thread_on_cpu": round(on_cpu / 1e9 / elapsed, 3),
            "main_thread_runqueue_wait": round(waiting / 1e9 / elapsed, 3),
        }


def median(values: list[float]) -> float:
    return round(statistics.median(values), 2)


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gb": round(psutil.virtual_memory().total / 1_073_741_824, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def save(name: str, result: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=2))
    return path


def save_and_show(name: str, result: dict[str, Any]) -> Path:
    """Save `result` and print it (without the machine description) and where it went."""
    path = save(name, result)
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=2))
    print(f"saved {path}")
    return path


def metric_sum(url: str, sample: str, **labels: str) -> float | None:
    """The sum of a service's /metrics samples named `sample` (e.g. `..._seconds_sum`) whose labels
    include `labels`; None when there is none. Parsed by prometheus_client, which wrote them."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(url, timeout=10).text
    values = [
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == sample and labels.items() <= s.labels.items()
    ]
    return sum(values) if values else None


def wait_http(url: str, timeout: float = 30.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")
