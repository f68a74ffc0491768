"""bench.broker_warmup reads a JVM's JIT compiler threads from /proc: checked here on a thread of this
process named as HotSpot names them (Linux lets a thread rename itself through its comm file)."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import pytest

from bench.broker_warmup import SETTLED_SHARE, JitWatch

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


class BusyThread(threading.Thread):
    """Spends `seconds` of CPU under an OS thread name, then stays alive (its /proc entry with it)
    until released, as a JVM's compiler threads live as long as the JVM."""

    def __init__(self, name: str, seconds: float):
        super().__init__(daemon=True)
        self.os_name, self.seconds = name, seconds
        self.spent, self.release = threading.Event(), threading.Event()

    def run(self) -> None:
        Path(f"/proc/self/task/{threading.get_native_id()}/comm").write_text(self.os_name)
        end = time.thread_time() + self.seconds
        while time.thread_time() < end:
            pass
        self.spent.set()
        self.release.wait(30)

    def __enter__(self) -> BusyThread:
        self.start()
        assert self.spent.wait(30)
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.join(30)


def test_counts_the_cpu_of_compiler_threads_only() -> None:
    watch = JitWatch(os.getpid())
    before = watch.cpu_seconds()
    with BusyThread("kafka-handler", 0.3):
        assert watch.cpu_seconds() - before < 0.05  # a busy thread of another name is not the JIT
    with BusyThread("C2 CompilerThre", 0.3):
        assert watch.cpu_seconds() - before >= 0.2


def test_share_is_the_jit_share_of_a_core_since_the_last_call() -> None:
    watch = JitWatch(os.getpid())
    watch.share()
    with BusyThread("C1 CompilerThre", 0.3):
        # 0.3 s of CPU over however long the busy machine took: a compiling JIT, not a settled one
        assert SETTLED_SHARE < watch.share() <= 1.2  # (1.2: clock ticks of 10 ms on both sides)
        assert watch.share() < SETTLED_SHARE  # nothing compiled since the previous call
