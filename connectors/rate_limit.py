"""Rate limit per destination (topics.yaml destinations.<d>.rate_limit), protecting the destination
systems: each worker waits for its turn on a shared token bucket (`hub.token_bucket`, queueing mode)."""

from __future__ import annotations

from hub.token_bucket import TokenBucket

__all__ = ["TokenBucket"]
