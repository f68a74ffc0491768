"""Circuit breaker per destination.

closed    -> every call allowed; opens after `consecutive_failures` transient failures in a row, or when
             the error rate over the last `window` reaches `error_rate` with at least `min_calls` calls.
             "In a row" counts a failure only when its call started after the last failure counted:
             calls that were in flight together and fail together (one stall of the destination, up
             to `concurrency` of them) are one failure in the row, not `concurrency` of them.
open      -> no call allowed for `open_for`; the worker pauses the destination's consumption so records
             wait in Kafka and no attempts are spent.
half_open -> exactly one probe call; success closes the breaker, failure opens it again.

Time comes from an injectable monotonic clock, so the transitions are unit-tested without sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from hub.topology import BreakerPolicy

State = Literal["closed", "open", "half_open"]
STATE_VALUE: dict[State, int] = {"closed": 0, "half_open": 1, "open": 2}


@dataclass
class Permit:
    probe: bool
    generation: int
    settled: bool = False
    started_at: float = 0.0  # breaker clock; mark_started() moves it to when the call is really sent


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        policy: BreakerPolicy,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[State, State], None] | None = None,
    ):
        self.name = name
        self.consecutive_limit = policy.consecutive_failures
        self.error_rate = policy.error_rate
        self.window_s = policy.window.total_seconds()
        self.min_calls = policy.min_calls
        self.open_for_s = policy.open_for.total_seconds()
        self._clock = clock
        self._on_change = on_change
        self._state: State = "closed"
        self._opened_at = 0.0
        self._consecutive = 0
        self._last_failure_at = float("-inf")  # when the last failure counted in the row was recorded
        self._results: deque[tuple[float, bool]] = deque()
        self._failures_in_window = 0
        self._probe_out = False
        # Bumped on every transition: results of calls allowed under an older state are not counted
        # against the new one (a burst of in-flight failures must not re-open a breaker just closed).
        self._generation = 0
        self._changed = asyncio.Event()  # replaced on every transition; waiters wake on set()
        self.opened_count = 0

    # ---- state ---------------------------------------------------------------------------------
    @property
    def state(self) -> State:
        if self._state == "open" and self._clock() - self._opened_at >= self.open_for_s:
            self._transition("half_open")
        return self._state

    def seconds_until_half_open(self) -> float:
        if self._state != "open":
            return 0.0
        return max(0.0, self.open_for_s - (self._clock() - self._opened_at))

    def _transition(self, new: State) -> None:
        old = self._state
        if old == new:
            return
        self._state = new
        self._generation += 1
        if new == "open":
            self._opened_at = self._clock()
            self.opened_count += 1
        if new in ("open", "closed"):
            self._probe_out = False
        if new == "closed":
            self._consecutive = 0
            self._results.clear()
            self._failures_in_window = 0
        self._changed.set()
        self._changed = asyncio.Event()
        if self._on_change is not None:
            self._on_change(old, new)

    # ---- permits -------------------------------------------------------------------------------
    def try_acquire(self) -> Permit | None:
        state = self.state
        if state == "closed":
            return Permit(probe=False, generation=self._generation, started_at=self._clock())
        if state == "half_open" and not self._probe_out:
            self._probe_out = True
            return Permit(probe=True, generation=self._generation, started_at=self._clock())
        return None

    def mark_started(self, permit: Permit) -> None:
        """The call is being sent now (after waiting for a slot or a rate-limit token)."""
        permit.started_at = self._clock()

    async def acquire(self) -> Permit:
        """Wait until a call is allowed (closed, or this caller is the half-open probe)."""
        while True:
            permit = self.try_acquire()
            if permit is not None:
                return permit
            # Open: sleep until the breaker may go half-open (every transition also wakes the waiters).
            # Not a 1 s poll: a down destination holds up to max_buffered waiters here, and a wakeup per
            # waiter per second made every crm delivery in the same worker cost ~60 us more CPU (380-400
            # vs 270-335 us per delivery with financeiro down; docs/connectors.md).
            # Half-open: the probe's result wakes everybody; re-check every second meanwhile.
            wait = self.seconds_until_half_open() if self._state == "open" else 1.0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=max(0.01, wait))

    def is_current(self, permit: Permit) -> bool:
        """False when the breaker changed state since the permit was issued."""
        return permit.generation == self._generation and self.state != "open"

    def release(self, permit: Permit) -> None:
        """A permit that was not used (the caller was cancelled): give the probe slot back."""
        if not permit.settled:
            permit.settled = True
            if permit.probe and permit.generation == self._generation:
                self._probe_out = False

    def record(self, permit: Permit, failed: bool) -> None:
        if permit.settled:
            return
        permit.settled = True
        if permit.generation != self._generation:
            return  # the call was allowed under an earlier state
        if permit.probe:
            self._transition("open" if failed else "closed")
            return
        if self._state != "closed":
            return
        now = self._clock()
        self._results.append((now, failed))
        if failed:
            self._failures_in_window += 1
        cutoff = now - self.window_s
        while self._results and self._results[0][0] < cutoff:
            _, old_failed = self._results.popleft()
            if old_failed:
                self._failures_in_window -= 1
        if not failed:
            self._consecutive = 0
        elif permit.started_at >= self._last_failure_at:
            # Started after the last failure counted: the destination failed again. A call that was
            # already in flight then failed with it: bench.hub_end_to_end saw a load step time out a
            # burst of crm calls in flight together and open the breaker for 30 s, although the
            # destination had taken every one of them (docs/connectors.md).
            self._consecutive += 1
            self._last_failure_at = now
        calls = len(self._results)
        if self._consecutive >= self.consecutive_limit or (
            calls >= self.min_calls and self._failures_in_window / calls >= self.error_rate
        ):
            self._transition("open")

    def snapshot(self) -> dict[str, object]:
        calls = len(self._results)
        return {
            "state": self.state,
            "consecutive_failures": self._consecutive,
            "window_calls": calls,
            "window_error_rate": round(self._failures_in_window / calls, 4) if calls else 0.0,
            "opened_count": self.opened_count,
            "seconds_until_half_open": round(self.seconds_until_half_open(), 3),
        }
