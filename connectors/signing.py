"""Optional HMAC-SHA256 request signing with rotating secrets (Stripe-style header).

    X-Carinho-Signature: t=<unix seconds>,v1=<hex hmac(secret_1, "t.body")>,v1=<hex hmac(secret_2, ...)>

Every active secret signs (newest first), so a receiver holding either the old or the new secret
verifies during a rotation. The timestamp bounds replays (`tolerance_s`)."""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Carinho-Signature"


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def sign(body: bytes, secrets: list[str], timestamp: int | None = None) -> str:
    if not secrets:
        raise ValueError("at least one signing secret is required")
    ts = int(time.time()) if timestamp is None else timestamp
    return ",".join([f"t={ts}", *(f"v1={_mac(s, ts, body)}" for s in secrets)])


def verify(
    body: bytes, header: str | None, secrets: list[str], *, tolerance_s: float = 300.0, now: float | None = None
) -> bool:
    if not header or not secrets:
        return False
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance_s:
        return False
    expected = [_mac(s, timestamp, body) for s in secrets]
    return any(hmac.compare_digest(c, e) for c in candidates for e in expected)
