"""Fault injection for one sandbox destination (or source feed)."""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any

_FIELDS = {"error_rate", "status_code", "latency_ms", "down", "retry_after", "fail_next", "body"}


@dataclass
class FaultConfig:
    error_rate: float = 0.0  # share of requests answered with status_code
    status_code: int = 500  # status of injected failures
    latency_ms: float = 0.0  # added to every answer
    down: bool = False  # every request -> 503 (service unavailable)
    retry_after: float | None = None  # Retry-After seconds on injected 429/503 answers
    fail_next: int = 0  # the next N requests fail with status_code (deterministic tests)
    body: dict[str, Any] | None = field(default=None)  # JSON body of injected failures

    def update(self, changes: dict[str, Any]) -> None:
        unknown = set(changes) - _FIELDS
        if unknown:
            raise ValueError(f"unknown fault field(s) {sorted(unknown)}; known: {sorted(_FIELDS)}")
        for name, value in changes.items():
            setattr(self, name, value)
        if not 0.0 <= float(self.error_rate) <= 1.0:
            raise ValueError("error_rate must be within 0..1")
        if not 100 <= int(self.status_code) <= 599:
            raise ValueError("status_code must be an HTTP status")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def _default_body(self) -> dict[str, Any]:
        return {"error": "injected", "message": f"sandbox fault {self.status_code}"}

    def decide(self, rng: random.Random) -> tuple[int, dict[str, Any], dict[str, str]] | None:
        """None = answer normally; else (status, body, headers) of the injected failure."""
        if self.down:
            status = 503
            body = {"error": "service unavailable", "message": "sandbox: destination down"}
        elif self.fail_next > 0:
            self.fail_next -= 1
            status, body = self.status_code, self.body or self._default_body()
        elif self.error_rate > 0 and rng.random() < self.error_rate:
            status, body = self.status_code, self.body or self._default_body()
        else:
            return None
        headers = {}
        if self.retry_after is not None and status in (429, 503):
            headers["retry-after"] = (
                str(int(self.retry_after)) if float(self.retry_after).is_integer() else str(self.retry_after)
            )
        return status, body, headers
