"""Failure classification: what an HTTP outcome means for the delivery.

2xx -> success. 408, 429, 5xx, timeouts and connection errors -> transient (retry tier, counts against the
breaker). Any other 4xx -> permanent (straight to the dead-letter topic; the destination is up, so it does
not count against the breaker). Error text is masked before it leaves this module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

import httpx
import orjson

from connectors.retry_policy import parse_retry_after
from hub.masking import mask_text

Kind = Literal["success", "transient", "permanent"]


class HeaderLookup(Protocol):
    """httpx.Headers, a dict with lower-case names (connectors.http_client) ..."""

    def get(self, key: str, /) -> str | None: ...


TRANSIENT_STATUSES = frozenset({408, 429})
_MAX_ERROR_CHARS = 300


@dataclass(frozen=True)
class AttemptResult:
    kind: Kind
    status: int | None = None
    error_class: str | None = None
    error_message: str | None = None
    retry_after_s: float | None = None  # the destination's Retry-After, in seconds from now

    @property
    def ok(self) -> bool:
        return self.kind == "success"

    @property
    def counts_against_breaker(self) -> bool:
        """Only transient failures say the destination is unhealthy; a 400 is the record's fault."""
        return self.kind == "transient"

    @property
    def reason(self) -> str:
        """Short machine-friendly reason for dead-letter headers and metrics: `http_<status>`, or the
        error class in lower case when there was no status (`connecttimeout`). A 2xx that carried an
        error is named by its class in snake case: Z-API answers "You are not connected." with a 200,
        and `http_200` in a dead-letter listing reads as a success (`zapi_disconnected`)."""
        if self.status is not None and 200 <= self.status < 300 and not self.ok and self.error_class:
            return _snake(self.error_class)
        if self.status is not None:
            return f"http_{self.status}"
        return (self.error_class or "error").lower()


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def kind_for_status(status: int) -> Kind:
    if 200 <= status < 300:
        return "success"
    if status in TRANSIENT_STATUSES or status >= 500:
        return "transient"
    if 400 <= status < 500:
        return "permanent"
    # 1xx/3xx: we never follow redirects for a POST; a destination that answers them is misconfigured,
    # but it may be a transient proxy issue, so it is retried rather than lost.
    return "transient"


def _short(text: str) -> str:
    return mask_text(text.strip())[:_MAX_ERROR_CHARS]


def error_text_from_body(body: bytes) -> str | None:
    """Best-effort error text from a JSON error body ({"error": ..., "message": ...}) or plain text."""
    if not body:
        return None
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return _short(body[:_MAX_ERROR_CHARS].decode("utf-8", "replace"))
    if isinstance(data, dict):
        parts = [str(data[k]) for k in ("error", "message", "detail", "title") if data.get(k) not in (None, "")]
        if parts:
            return _short(": ".join(dict.fromkeys(parts)))
    return None


def classify_response(status: int, headers: HeaderLookup, body: bytes, now: datetime | None = None) -> AttemptResult:
    kind = kind_for_status(status)
    if kind == "success":
        return AttemptResult("success", status)
    retry_after = parse_retry_after(headers.get("retry-after"), now) if status in (429, 503) else None
    return AttemptResult(kind, status, "HTTPStatusError", error_text_from_body(body) or f"HTTP {status}", retry_after)


def classify_exception(exc: BaseException) -> AttemptResult:
    """Timeouts and transport errors are transient; anything else (bad URL, bad header) is permanent:
    sending the same request again would fail the same way."""
    name = type(exc).__name__
    if isinstance(exc, httpx.TimeoutException | httpx.TransportError | OSError):
        return AttemptResult("transient", None, name, _short(str(exc)) or name)
    return AttemptResult("permanent", None, name, _short(str(exc)) or name)
