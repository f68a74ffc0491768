"""Request audit (analysis 3.3): one JSON log line per request — request_id, source, key id, event
type, status, latency — and the same record on the audit topic (kept 90 days). Personal data never
appears: bodies are not logged and the query string (which may carry a webhook token) is dropped.
`X-Request-ID` is accepted (when well-formed and free of phone numbers, CPFs and e-mails) and echoed."""

from __future__ import annotations

import logging
import os
import re
import time
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.logging import log_info, request_id_var
from hub.masking import looks_personal, mask_text
from ingress.metrics import NOTES, REQUEST_LATENCY, REQUESTS

log = logging.getLogger("ingress.audit")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_AUDIT_KEY = "carinho.audit"
# What the ingress notes itself (audit.note): ids it generated or validated, the key's source and id,
# a known event type, counts and flags. None carries a caller's free text.
_OWN_FIELDS = frozenset({"request_id", "source", "key_id", "event_type", "event_id", "events", "accepted", "ignored"})


def request_id(request: Request) -> str | None:
    record: dict[str, Any] | None = request.scope.get(_AUDIT_KEY)
    return record.get("request_id") if record else None


def fields_of(scope: Scope) -> dict[str, Any]:
    """This request's audit record (a throwaway one when the request is not audited)."""
    record: dict[str, Any] | None = scope.get(_AUDIT_KEY)
    return record if record is not None else {}


def note(request: Request, **fields: Any) -> None:
    """Add fields (source, key_id, event_type, event_id...) to this request's audit record."""
    record: dict[str, Any] | None = request.scope.get(_AUDIT_KEY)
    if record is not None:
        record.update(fields)


class AuditRecord:
    """One request's audit: started by `begin`, written by `finish` (log line, audit topic, metrics)."""

    __slots__ = ("fields", "request_id", "started", "token")

    def __init__(self, scope: Scope, header: bytes | None = None):
        """`header`: the X-Request-ID header's value when the caller has already looked it up."""
        if header is None:
            header = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"")
        incoming = header.decode("latin-1")
        # 32 random hex digits, like uuid4().hex, at a fifth of its cost (UUID's constructor checks).
        # The request id is logged and written to the audit topic as it is (an identifier: never
        # masked), so one that carries a phone number or a CPF is replaced like a malformed one.
        if _REQUEST_ID.match(incoming) and not looks_personal(incoming):
            self.request_id = incoming
        else:
            self.request_id = os.urandom(16).hex()
        self.fields: dict[str, Any] = {"request_id": self.request_id}
        scope[_AUDIT_KEY] = self.fields
        self.token = request_id_var.set(self.request_id)
        self.started = time.perf_counter()

    def finish(self, scope: Scope, status: int, state: dict[str, Any], route_path: str | None = None) -> None:
        latency = time.perf_counter() - self.started
        if route_path is None:
            route_path = _route_label(scope)
        _request_metrics(route_path, status, latency)
        if not route_path.startswith(("/metrics", "/health")):
            entry = {
                **self.fields,
                "method": scope["method"],
                # Masked here, for the audit topic too (the log line alone was masked by its formatter):
                # a path is the caller's text (/v1/events/<an e-mail>, /v1/webhooks/<a phone>). A path
                # equal to its route's template (POST /v1/events) holds nothing of the caller's.
                "path": path if (path := scope["path"]) == route_path else mask_text(path),
                "status": status,
                "latency_ms": round(latency * 1000, 2),
            }
            # Masking the line's fields cost ~3 us a request (docs/benchmarks.md): skipped when every
            # field noted is one of the ingress's own identifiers and counts below, none the caller's
            # text (the request id is checked at `begin`, the path just above). Any other field: masked.
            log_info(log, "request", entry, fields_masked=self.fields.keys() <= _OWN_FIELDS)
            _to_kafka(state, entry)
        request_id_var.reset(self.token)


def _route_label(scope: Scope) -> str:
    """The `route` label of the request metrics: the matched route's path template. FastAPI's own
    pages (/docs, /openapi.json, /docs/oauth2-redirect, /redoc) are plain Starlette routes, which set
    the scope's `endpoint` but not its `route`: a match without parameters is labelled by its path
    (a fixed path, so no label explosion). Only a request no route matched is "unmatched"."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if path:
        return str(path)
    if scope.get("endpoint") is not None and not scope.get("path_params"):
        return str(scope["path"])
    return "unmatched"


_METRIC_CHILDREN: dict[tuple[str, int], tuple[Any, Any]] = {}


def _request_metrics(route_path: str, status: int, latency: float) -> None:
    # labels() resolves a child under a lock each call; the set of (route, status) pairs is small.
    children = _METRIC_CHILDREN.get((route_path, status)) or _request_metrics_children(route_path, status)
    NOTES.inc(children[0])
    NOTES.observe(children[1], latency)


# The routes that accept events, as the `route` label names them: their refusals are alerted on.
EVENT_ROUTES = ("/v1/events", "/v1/events/batch", "/v1/webhooks/{source}", "/v1/webhooks/{source}/{hook}")


def precreate_request_metrics() -> None:
    """Export the event routes' 503 counters at 0 from the start: a child created at its first
    increment is first scraped at 1, and rate() would miss the start of a Kafka outage."""
    for route in EVENT_ROUTES:
        _request_metrics_children(route, 503)


def _request_metrics_children(route_path: str, status: int) -> tuple[Any, Any]:
    children = _METRIC_CHILDREN.get((route_path, status))
    if children is None:
        children = (REQUESTS.labels(route=route_path, status=str(status)), REQUEST_LATENCY.labels(route=route_path))
        _METRIC_CHILDREN[(route_path, status)] = children
    return children


def _to_kafka(state: dict[str, Any], entry: dict[str, Any]) -> None:
    ingress = state.get("ingress")
    if ingress is None or not ingress.settings.audit_to_kafka:
        return
    # {"kind": "request", "at": ..., **entry} written as bytes: no second dict, and the time through
    # orjson (the same ISO text as datetime.isoformat, "+00:00" included) rather than isoformat().
    at = orjson.dumps(datetime.now(UTC))
    value = b'{"kind":"request","at":%s,%s' % (at, orjson.dumps(entry)[1:])
    ingress.publisher.fire_and_forget(ingress.audit_topic, value, entry["request_id"].encode())


class AuditMiddleware:
    def __init__(self, app: ASGIApp, state: dict[str, Any]):
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        record = AuditRecord(scope)
        rid_header = (b"x-request-id", record.request_id.encode())
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], rid_header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            record.finish(scope, status, self.state)
