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
from ingress.accept import check_body_headers, enforce_rate, key_from_headers, parse_json, receive_body, verify_key
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
    headers = header_map(scope)
    record = AuditRecord(scope, headers.get(b"x-request-id", b""))
    rid_header = (b"x-request-id", record.request_id.encode())
    status = 500
    try:
        try:
            body = await accept_single(ingress, scope, receive, headers)
            status = 202
            headers_out = [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]
        except ApiError as exc:
            response = exc.response(record.request_id)
            status, body, headers_out = exc.status, bytes(response.body), list(response.raw_headers)
        await send({"type": "http.response.start", "status": status, "headers": [*headers_out, rid_header]})
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


def header_map(scope: Scope) -> dict[bytes, bytes]:
    """The request's headers by (lower-case, as ASGI servers pass them) name; the first of repeated
    headers wins, as with Starlette's `Headers.get`. One dict instead of a list scan per lookup."""
    raw = scope["headers"]  # ASGI: an iterable of pairs; servers pass a list
    return dict(reversed(raw if isinstance(raw, list | tuple) else list(raw)))


def _text(headers: dict[bytes, bytes], name: bytes) -> str | None:
    value = headers.get(name)
    return value.decode("latin-1") if value is not None else None


async def accept_single(
    ingress: Ingress, scope: Scope, receive: Receive, headers: dict[bytes, bytes] | None = None
) -> bytes:
    """POST /v1/events up to the 202 body; refusals raise ApiError (both routes of the path call it).

    Works on the ASGI scope and channel directly (no Request object: this runs once per event); the
    checks are `ingress.accept`'s, in its documented order."""
    if headers is None:
        headers = header_map(scope)
    fields = audit.fields_of(scope)
    presented = key_from_headers(_text(headers, b"x-api-key"), _text(headers, b"authorization"))
    verified = verify_key(presented, ingress.keys)
    fields["source"] = verified.source
    fields["key_id"] = verified.key_id
    enforce_rate(verified, ingress.topology, ingress.limiter)
    max_bytes = ingress.settings.max_body_bytes
    check_body_headers(
        _text(headers, b"content-type") or "",
        _text(headers, b"content-length"),
        max_bytes,
        _text(headers, b"content-encoding"),
    )
    raw = parse_json(await receive_body(receive, max_bytes))
    header_key = _text(headers, b"idempotency-key")
    request_id: str | None = fields.get("request_id")
    fast = ingress.fast_path.prepare_single(raw, verified, header_key, request_id, datetime.now(UTC))
    if fast is None:  # an error (or a shape the fast path does not take): the reference pipeline
        accepted = await accept_event(ingress, Request(scope, receive), raw, verified, header_key)
        return orjson.dumps(accepted.model_dump())
    fields["event_type"] = fast.type
    fields["event_id"] = fast.event_id
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
