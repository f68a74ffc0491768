"""POST /v1/events served below FastAPI's routing, dependency and middleware layers.

Those layers cost more CPU than everything an event needs (measured in-process: see
docs/benchmarks.md), and this is the route source systems call most. The contract is the same and
uses the same code: `ingress.accept` for the 401 → 429 → 415/413/400 checks, `ingress.fast_path` for a
valid event, and the reference pipeline (`service.accept_event`) for anything else, so every error
body, audit record, metric and trail hop comes from one implementation. The FastAPI route of the same
path keeps the OpenAPI description and serves the request whenever this layer is not ready yet.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import FastAPI
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from ingress import audit
from ingress.accept import authenticate, enforce_rate, read_json_body
from ingress.audit import AuditRecord
from ingress.errors import ApiError
from ingress.service import Ingress, accept_event

log = logging.getLogger("ingress")
ROUTE = "/v1/events"


class IngressApp(FastAPI):
    """FastAPI, with POST /v1/events taken on the fast path once the service state is up."""

    services: dict[str, Any]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == ROUTE and scope["method"] == "POST":
            ingress = self.services.get("ingress")
            if ingress is not None:
                await serve_event(ingress, self.services, scope, receive, send)
                return
        await super().__call__(scope, receive, send)


async def serve_event(ingress: Ingress, services: dict[str, Any], scope: Scope, receive: Receive, send: Send) -> None:
    record = AuditRecord(scope)
    rid_header = (b"x-request-id", record.request_id.encode())
    status = 500
    try:
        try:
            body = await accept_single(ingress, Request(scope, receive))
            status = 202
            headers = [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]
        except ApiError as exc:
            response = exc.response(record.request_id)
            status, body, headers = exc.status, bytes(response.body), list(response.raw_headers)
        await send({"type": "http.response.start", "status": status, "headers": [*headers, rid_header]})
        await send({"type": "http.response.body", "body": body})
    except Exception:
        # What Starlette's ServerErrorMiddleware does for the other routes: log, plain 500.
        log.exception("unhandled error on POST /v1/events")
        status = 500
        await send(
            {
                "type": "http.response.start",
                "status": 500,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"), rid_header],
            }
        )
        await send({"type": "http.response.body", "body": b"Internal Server Error"})
    finally:
        record.finish(scope, status, services, ROUTE)


async def accept_single(ingress: Ingress, request: Request) -> bytes:
    """POST /v1/events up to the 202 body; refusals raise ApiError (both routes of the path call it)."""
    verified = authenticate(request, ingress.keys)
    audit.note(request, source=verified.source, key_id=verified.key_id)
    enforce_rate(verified, ingress.topology, ingress.limiter)
    raw = await read_json_body(request, ingress.settings.max_body_bytes)
    header_key = request.headers.get("idempotency-key")
    request_id = audit.request_id(request)
    fast = ingress.fast_path.prepare_single(raw, verified, header_key, request_id, datetime.now(UTC))
    if fast is None:  # an error (or a shape the fast path does not take): the reference pipeline
        return orjson.dumps((await accept_event(ingress, request, raw, verified, header_key)).model_dump())
    audit.note(request, event_type=fast.type, event_id=fast.event_id)
    await ingress.publish(
        fast.topic,
        fast.value,
        fast.key,
        fast.headers,
        source=verified.source,
        event_type=fast.type,
        priority=fast.priority,
        event_id=fast.event_id,
    )
    return orjson.dumps(
        {"event_id": fast.event_id, "status": "accepted", "topic": fast.topic, "priority": fast.priority}
    )
