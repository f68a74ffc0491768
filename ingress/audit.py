"""Request audit (analysis 3.3): one JSON log line per request — request_id, source, key id, event
type, status, latency — and the same record on the audit topic (kept 90 days). Personal data never
appears: bodies are not logged and the query string (which may carry a webhook token) is dropped.
`X-Request-ID` is accepted (when well-formed) and echoed."""

from __future__ import annotations

import logging
import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.logging import request_id_var
from ingress.metrics import REQUEST_LATENCY, REQUESTS

log = logging.getLogger("ingress.audit")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_AUDIT_KEY = "carinho.audit"


def request_id(request: Request) -> str | None:
    record: dict[str, Any] | None = request.scope.get(_AUDIT_KEY)
    return record.get("request_id") if record else None


def note(request: Request, **fields: Any) -> None:
    """Add fields (source, key_id, event_type, event_id...) to this request's audit record."""
    record: dict[str, Any] | None = request.scope.get(_AUDIT_KEY)
    if record is not None:
        record.update(fields)


class AuditMiddleware:
    def __init__(self, app: ASGIApp, state: dict[str, Any]):
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), "")
        rid = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        record: dict[str, Any] = {"request_id": rid}
        scope[_AUDIT_KEY] = record
        token = request_id_var.set(rid)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            latency = time.perf_counter() - started
            route = scope.get("route")
            route_path = getattr(route, "path", None) or "unmatched"
            REQUESTS.labels(route=route_path, status=str(status)).inc()
            REQUEST_LATENCY.labels(route=route_path).observe(latency)
            entry = {
                **record,
                "method": scope["method"],
                "path": scope["path"],
                "status": status,
                "latency_ms": round(latency * 1000, 2),
            }
            if not route_path.startswith(("/metrics", "/health")):
                log.info("request", extra=entry)
                self._to_kafka(entry)
            request_id_var.reset(token)

    def _to_kafka(self, entry: dict[str, Any]) -> None:
        ingress = self.state.get("ingress")
        if ingress is None or not ingress.settings.audit_to_kafka:
            return
        entry = {"kind": "request", "at": datetime.now(UTC).isoformat(), **entry}
        ingress.publisher.fire_and_forget(ingress.audit_topic, orjson.dumps(entry), entry["request_id"].encode())
