"""What a sandbox destination received: accepted requests deduplicated by Idempotency-Key (duplicates
counted separately), plus the injected failures."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

MAX_FAILURES_KEPT = 2000


@dataclass
class Received:
    requests: int = 0  # every request, failed or not
    failed: int = 0  # answered with an injected fault
    duplicates: int = 0  # accepted again with an Idempotency-Key already seen
    items: list[dict[str, Any]] = field(default_factory=list)  # first acceptance of each key, in order
    seen: set[str] = field(default_factory=set)
    duplicate_keys: dict[str, int] = field(default_factory=dict)
    failures: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=MAX_FAILURES_KEPT))

    def accept(self, key: str | None, item: dict[str, Any]) -> bool:
        """Record an accepted request; False when it is a duplicate of an earlier Idempotency-Key."""
        if key is not None:
            if key in self.seen:
                self.duplicates += 1
                self.duplicate_keys[key] = self.duplicate_keys.get(key, 1) + 1
                return False
            self.seen.add(key)
        self.items.append(item)
        return True

    def fail(self, key: str | None, status: int) -> None:
        self.failed += 1
        self.failures.append({"idempotency_key": key, "status": status, "at": time.time()})

    def summary(self, offset: int = 0, limit: int | None = None) -> dict[str, Any]:
        end = None if limit is None else offset + limit
        return {
            "unique": len(self.items),
            "duplicates": self.duplicates,
            "requests": self.requests,
            "failed": self.failed,
            "duplicate_keys": self.duplicate_keys,
            "failures": list(self.failures),
            "items": self.items[offset:end],
        }
