"""A new broker's JIT, out of the way before a benchmark measures.

A freshly started Kafka broker compiles its hot paths with the JVM's JIT (the C1/C2 "CompilerThread"s)
during its first minute or so under load. On the two-core machines these benchmarks run on, that took
0.3-0.6 of a core for ~80 s of traffic (docs/benchmarks.md, fifteenth session): CPU taken from the
services being measured, and counted as the broker's. Every `make bench` benchmark starts its own
broker, and the end-to-end benchmark's hub another one, so each measured while the JIT ran.

`JitWatch` reads the compiler threads' CPU from /proc; `warm_up_broker` (called by
`bench.common.bench_broker`) drives produce, fetch and offset-commit requests at a new broker until the
JIT has settled (its share of a core under `SETTLED_SHARE` for two 5 s windows in a row), or
`MAX_SECONDS` pass; `warm_until_settled` repeats a benchmark's own warm-up load until the JIT is quiet
during it. Both report on stderr (the benchmarks print their JSON on stdout).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from bench.common import broker_process
from hub.kafka_config import admin_config, consumer_config, producer_config

SETTLED_SHARE = 0.05  # of one core: a settled broker's compiler threads stay around 0.01-0.05
WINDOW_SECONDS = 5.0
MAX_SECONDS = 180.0
PACED_RATE = 3_000  # records/s with a 1 ms linger: many small produce requests, like the services'
BULK_RATE = 20_000  # records/s with a 5 ms linger: large compressed batches


class JitWatch:
    """CPU seconds of one JVM's JIT compiler threads (Linux /proc; their names contain "Compiler")."""

    def __init__(self, pid: int):
        self.pid = pid
        self._tick = os.sysconf("SC_CLK_TCK")
        self._last = self.cpu_seconds()
        self._last_at = time.monotonic()

    def cpu_seconds(self) -> float:
        total = 0
        for task in Path(f"/proc/{self.pid}/task").iterdir():
            try:
                if "Compiler" not in (task / "comm").read_text():
                    continue
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # a thread that ended meanwhile
                continue
            total += int(fields[11]) + int(fields[12])  # utime + stime
        return total / self._tick

    def share(self) -> float:
        """The JIT's share of one core since the previous call (or since this watch was made)."""
        now, cpu = time.monotonic(), self.cpu_seconds()
        share = (cpu - self._last) / max(now - self._last_at, 1e-6)
        self._last, self._last_at = cpu, now
        return share


def jit_watch(bootstrap: str) -> JitWatch | None:
    """A watch on the broker listening on `bootstrap`'s port, or None when it is not on this machine."""
    process = broker_process(bootstrap)
    return JitWatch(process.pid) if process is not None else None


def _stderr(*args: Any, **kwargs: Any) -> None:
    print(*args, file=sys.stderr, **kwargs)  # stdout carries the benchmarks' JSON


def warm_until_settled(
    bootstrap: str, step: Callable[[], object], *, log: Any = _stderr, max_seconds: float = 150.0
) -> dict[str, Any]:
    """Run a benchmark's own warm-up `step` (a few seconds of its real load) again and again until the
    broker's JIT used under SETTLED_SHARE of a core during one, or `max_seconds` pass: the generic
    warm-up in `bench_broker` does not reach every path a benchmark's load takes."""
    watch = jit_watch(bootstrap)
    if watch is None:  # a broker elsewhere: one step, as before
        step()
        return {"steps": 1, "settled": None}
    result = _settle(watch, step, quiet_steps=1, max_seconds=max_seconds)
    log(f"warm-up with the benchmark's load: {result}", flush=True)
    return result


def warm_up_broker(bootstrap: str, *, log: Any = _stderr) -> dict[str, Any]:
    """Drive traffic at the broker until its JIT settles (two quiet windows in a row); returns what it took."""
    watch = jit_watch(bootstrap)
    if watch is None:
        log(f"broker warm-up: no local broker process on {bootstrap}; not warmed", flush=True)
        return {"warmed": False, "reason": "broker not on this machine"}
    topic = f"bench-warmup-{uuid.uuid4().hex[:8]}"
    admin = AdminClient(admin_config(bootstrap))
    for future in admin.create_topics([NewTopic(topic, 6, 1)]).values():
        future.result(30)
    stop = threading.Event()
    load = [
        *(threading.Thread(target=_produce, args=(bootstrap, topic, stop, *p), daemon=True) for p in _PRODUCERS),
        threading.Thread(target=_consume, args=(bootstrap, topic, stop), daemon=True),
    ]
    for thread in load:
        thread.start()
    try:
        result = _settle(watch, lambda: time.sleep(WINDOW_SECONDS), quiet_steps=2, max_seconds=MAX_SECONDS)
    finally:
        stop.set()
        for thread in load:
            thread.join(30)
        for future in admin.delete_topics([topic], operation_timeout=30).values():
            with contextlib.suppress(KafkaException):  # a scratch topic: gone with the broker anyway
                future.result(30)
    log(f"broker warm-up: {result}", flush=True)
    return {"warmed": True, **result}


def _settle(watch: JitWatch, step: Callable[[], object], *, quiet_steps: int, max_seconds: float) -> dict[str, Any]:
    """Run `step` until the JIT used under SETTLED_SHARE of a core during each of the last `quiet_steps`
    steps, or `max_seconds` pass."""
    started = time.monotonic()
    jit_before = watch.cpu_seconds()
    shares: list[float] = []

    def settled() -> bool:
        return len(shares) >= quiet_steps and max(shares[-quiet_steps:]) < SETTLED_SHARE

    while not settled() and time.monotonic() - started < max_seconds:
        watch.share()
        step()
        shares.append(round(watch.share(), 3))
    return {
        "steps": len(shares),
        "seconds": round(time.monotonic() - started, 1),
        "settled": settled(),
        "jit_cpu_seconds": round(watch.cpu_seconds() - jit_before, 1),
        "jit_share_per_step": shares,
    }


# Small paced records (many small produce requests, like the services') and large compressed batches
# (like the ingress's batch route and the routers' outputs): (client id, linger ms, records/s, records
# written between two looks at the clock, values).
_PRODUCERS = (
    ("bench-warmup", 1, PACED_RATE, 30, [b"x" * 600]),
    (
        "bench-warmup-bulk",
        5,
        BULK_RATE,
        500,
        [(b'{"n": %d, "pad": "' % n) + b"ab" * (50 + n * 40) + b'"}' for n in range(20)],
    ),
)


def _produce(
    bootstrap: str,
    topic: str,
    stop: threading.Event,
    client_id: str,
    linger_ms: int,
    rate: int,
    burst: int,
    values: list[bytes],
) -> None:
    producer = Producer(producer_config(bootstrap, client_id=client_id, linger_ms=linger_ms))
    sent, started = 0, time.monotonic()
    while not stop.is_set():
        for n in range(burst):
            value = values[n % len(values)]
            try:
                producer.produce(topic, value, str(sent).encode())
            except BufferError:
                producer.poll(0.05)
            sent += 1
        producer.poll(0)
        ahead = sent / rate - (time.monotonic() - started)
        if ahead > 0:
            time.sleep(ahead)
    producer.flush(30)


def _consume(bootstrap: str, topic: str, stop: threading.Event) -> None:
    consumer = Consumer(
        consumer_config(
            bootstrap,
            group_id=f"{topic}-group",
            client_id="bench-warmup",
            **{"fetch.wait.max.ms": 50, "enable.auto.offset.store": True},
        )
    )
    consumer.subscribe([topic])
    last_commit = time.monotonic()
    try:
        while not stop.is_set():
            messages = consumer.consume(500, 0.2)
            if messages and time.monotonic() - last_commit > 0.5:
                consumer.commit(asynchronous=True)
                last_commit = time.monotonic()
    finally:
        consumer.close()
