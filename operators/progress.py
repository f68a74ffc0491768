"""Rate limiting and a progress bar (on stderr) for long operator actions such as a replay."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class RateLimiter:
    """At most `per_second` acquisitions per second (token bucket, burst of one second's worth)."""

    def __init__(self, per_second: float) -> None:
        if per_second <= 0:
            raise ValueError("rate must be greater than zero")
        self.per_second = per_second
        self.capacity = max(1.0, per_second)
        self.tokens = self.capacity
        self.updated = time.monotonic()

    def acquire(self) -> None:
        while True:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.per_second)
            self.updated = now
            if self.tokens >= 1:
                self.tokens -= 1
                return
            time.sleep((1 - self.tokens) / self.per_second)


class ProgressBar:
    """`replay [#######.....] 70/100 35.0/s`; a final line at close."""

    def __init__(self, total: int, label: str, stream: TextIO | None = None, width: int = 30) -> None:
        self.total = max(total, 0)
        self.label = label
        self.stream = stream or sys.stderr
        self.width = width
        self.done = 0
        self.started = time.monotonic()
        self._drawn = self.started
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        # A terminal is redrawn in place 10x/s; a log file gets a line every 2 s.
        if now - self._drawn >= (0.1 if self._tty else 2.0):
            self._draw(final=False)
            self._drawn = now

    def _line(self) -> str:
        fraction = self.done / self.total if self.total else 1.0
        filled = int(self.width * min(fraction, 1.0))
        elapsed = max(time.monotonic() - self.started, 1e-6)
        return (
            f"{self.label} [{'#' * filled}{'.' * (self.width - filled)}] "
            f"{self.done}/{self.total} {self.done / elapsed:.1f}/s"
        )

    def _draw(self, final: bool) -> None:
        if self._tty:
            self.stream.write("\r" + self._line() + ("\n" if final else ""))
        else:
            self.stream.write(self._line() + "\n")
        self.stream.flush()

    def close(self) -> None:
        self._draw(final=True)
