"""Retry schedule: which tier comes next, how long to wait (exponential tiers from topics.yaml with
jitter, never earlier than the destination's Retry-After), and Retry-After parsing."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from hub.topology import RetryPolicy

# A destination asking us to come back in more than a day is treated as a day: the record still moves on.
MAX_RETRY_AFTER_S = 86_400.0


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After is either delay-seconds or an HTTP-date (RFC 9110 10.2.3). Returns seconds >= 0."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER_S)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    delta = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(delta, 0.0), MAX_RETRY_AFTER_S)


def jittered(delay_s: float, jitter: float, rng: random.Random | None = None) -> float:
    """delay +- jitter*delay, uniformly (spreads a burst of failures so retries don't stampede)."""
    if jitter <= 0:
        return delay_s
    r = (rng or random).uniform(-jitter, jitter)
    return max(0.0, delay_s * (1.0 + r))


@dataclass(frozen=True)
class RetryStep:
    tier: int  # 1-based retry tier (topic deliver.<dest>.retry.<tier>)
    delay_s: float  # wait before the next attempt


def next_retry(
    policy: RetryPolicy, attempts_done: int, retry_after_s: float | None = None, rng: random.Random | None = None
) -> RetryStep | None:
    """After `attempts_done` failed attempts (1 = the main-topic attempt), the next tier, or None when the
    schedule is spent (-> dead letter or fallback)."""
    if attempts_done < 1 or attempts_done > len(policy.tiers):
        return None
    base = policy.tiers[attempts_done - 1].total_seconds()
    delay = jittered(base, policy.jitter, rng)
    if retry_after_s is not None:
        delay = max(delay, min(retry_after_s, MAX_RETRY_AFTER_S))
    return RetryStep(tier=attempts_done, delay_s=delay)


def parking_tier(policy: RetryPolicy, remaining_s: float) -> RetryStep:
    """Where a record with a future `not_before` waits: the longest tier not longer than the wait (so a
    tier's records stay roughly ordered by due time), hopping again if the wait is longer."""
    tiers = [t.total_seconds() for t in policy.tiers]
    chosen = 1
    for index, delay in enumerate(tiers, start=1):
        if delay <= remaining_s:
            chosen = index
    return RetryStep(tier=chosen, delay_s=min(remaining_s, max(tiers[chosen - 1], 0.0)))
