from __future__ import annotations

import asyncio

from connectors.breaker import CircuitBreaker
from hub.topology import BreakerPolicy


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(clock: Clock, **overrides: object) -> tuple[CircuitBreaker, list[tuple[str, str]]]:
    policy = BreakerPolicy.model_validate(
        {"consecutive_failures": 3, "error_rate": 0.5, "window": "30s", "min_calls": 10, "open_for": "5s", **overrides}
    )
    changes: list[tuple[str, str]] = []
    return CircuitBreaker("crm", policy, clock=clock, on_change=lambda a, b: changes.append((a, b))), changes


def fail(breaker: CircuitBreaker, n: int = 1) -> None:
    for _ in range(n):
        permit = breaker.try_acquire()
        assert permit is not None
        breaker.record(permit, failed=True)


def succeed(breaker: CircuitBreaker, n: int = 1) -> None:
    for _ in range(n):
        permit = breaker.try_acquire()
        assert permit is not None
        breaker.record(permit, failed=False)


def test_opens_on_consecutive_failures_and_blocks_calls() -> None:
    clock = Clock()
    breaker, changes = make(clock)
    fail(breaker, 2)
    succeed(breaker)  # resets the streak
    fail(breaker, 2)
    assert breaker.state == "closed"
    fail(breaker)
    assert breaker.state == "open" and changes == [("closed", "open")]
    assert breaker.try_acquire() is None


def test_opens_on_error_rate_over_the_window() -> None:
    clock = Clock()
    breaker, _ = make(clock, consecutive_failures=100)
    for _ in range(5):
        succeed(breaker)
        fail(breaker)
    assert breaker.state == "open"  # 10 calls, 50 % errors


def test_old_results_leave_the_window() -> None:
    clock = Clock()
    breaker, _ = make(clock, consecutive_failures=100)
    fail(breaker, 4)
    succeed(breaker, 1)
    clock.now += 31
    succeed(breaker, 5)
    fail(breaker, 4)  # 9 calls in the window with 4 failures: below min_calls
    assert breaker.state == "closed"
    succeed(breaker, 1)
    assert breaker.state == "closed"  # 10 calls, 40 %


def test_half_open_allows_one_probe_success_closes() -> None:
    clock = Clock()
    breaker, changes = make(clock)
    fail(breaker, 3)
    clock.now += 4.9
    assert breaker.state == "open"
    clock.now += 0.2
    assert breaker.state == "half_open"
    probe = breaker.try_acquire()
    assert probe is not None and probe.probe
    assert breaker.try_acquire() is None  # only one probe
    breaker.record(probe, failed=False)
    assert breaker.state == "closed"
    assert changes == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]


def test_failed_probe_reopens_for_a_full_period() -> None:
    clock = Clock()
    breaker, _ = make(clock)
    fail(breaker, 3)
    clock.now += 5
    probe = breaker.try_acquire()
    assert probe is not None
    breaker.record(probe, failed=True)
    assert breaker.state == "open"
    clock.now += 4
    assert breaker.state == "open"
    clock.now += 1
    assert breaker.state == "half_open"


def test_released_probe_can_be_taken_again() -> None:
    clock = Clock()
    breaker, _ = make(clock)
    fail(breaker, 3)
    clock.now += 5
    probe = breaker.try_acquire()
    assert probe is not None
    breaker.release(probe)
    assert breaker.try_acquire() is not None


def test_results_from_an_older_state_are_ignored() -> None:
    clock = Clock()
    breaker, _ = make(clock)
    stale = [breaker.try_acquire() for _ in range(5)]
    fail(breaker, 3)
    clock.now += 5
    probe = breaker.try_acquire()
    assert probe is not None
    breaker.record(probe, failed=False)
    for permit in stale:  # in-flight calls from before the outage finishing late
        assert permit is not None
        breaker.record(permit, failed=True)
    assert breaker.state == "closed"


async def test_acquire_waits_until_half_open() -> None:
    breaker, _ = make(Clock(), open_for="200ms")
    breaker._clock = asyncio.get_running_loop().time  # real time for this one
    fail(breaker, 3)
    started = asyncio.get_running_loop().time()
    permit = await asyncio.wait_for(breaker.acquire(), timeout=2)
    assert permit.probe
    assert asyncio.get_running_loop().time() - started >= 0.15


def test_calls_in_flight_together_that_fail_together_count_once_in_the_row() -> None:
    """One stall of the destination times out every call in flight at once (up to the destination's
    concurrency): that is one failure in the row, not twenty. Calls started after it that fail again
    continue the row; the error-rate rule still sees all of them."""
    clock = Clock()
    breaker, changes = make(clock)  # 3 in a row; 50 % over >= 10 calls
    succeed(breaker, 100)
    in_flight = [breaker.try_acquire() for _ in range(20)]
    clock.now += 0.2
    for permit in in_flight:
        assert permit is not None
        breaker.record(permit, failed=True)
    assert breaker.state == "closed" and breaker.snapshot()["consecutive_failures"] == 1
    assert breaker.snapshot()["window_calls"] == 120  # every failure is in the error-rate window
    clock.now += 0.2
    fail(breaker)  # started after the stall's failure was seen: the row goes on
    assert breaker.state == "closed" and breaker.snapshot()["consecutive_failures"] == 2
    fail(breaker)
    assert breaker.state == "open" and changes == [("closed", "open")]


def test_a_call_counts_from_when_it_was_sent_not_when_it_was_permitted() -> None:
    """A permit taken before a failure but sent after it (it waited for a slot) is a new call."""
    clock = Clock()
    breaker, _ = make(clock)
    succeed(breaker, 100)
    waiting = breaker.try_acquire()
    assert waiting is not None
    clock.now += 0.1
    fail(breaker)
    clock.now += 0.1
    breaker.mark_started(waiting)
    breaker.record(waiting, failed=True)
    assert breaker.snapshot()["consecutive_failures"] == 2
