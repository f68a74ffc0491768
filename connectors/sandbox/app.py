"""The sandbox ASGI app (raw ASGI: benchmarks drive it at thousands of requests/s).

POST|PUT|PATCH /<destination>/<path...>            generic HTTP/JSON destination (crm, financeiro, ...)
POST /whatsapp/instances/<i>/token/<t>/send-text    Z-API send-text (Client-Token header required)
POST /sms/<path...>                                 generic SMS provider ({"to", "message"} required)
GET  /sources/<source><sync path>?since&cursor&limit   sync changes feed

GET  /_control/health                               liveness
POST /_control/reset                                forget everything (faults, received, sources)
GET  /_control/<name>                               faults + counters
POST /_control/<name>                               change faults (JSON, partial)
POST /_control/<name>/reset  (or DELETE /_control/<name>)   reset one destination
GET  /_control/<name>/received?offset=&limit=       what it received (deduplicated) and failures
POST /_control/sources/<source>/items               seed feed items {"path", "items": [...]}
DELETE /_control/sources/<source>/items             clear a source's feed
POST /_control/sources/<source>                     faults of a source feed
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from functools import partial
from typing import Any
from urllib.parse import parse_qs

import orjson

from connectors.sandbox.faults import FaultConfig
from connectors.sandbox.sources import SourceFeeds
from connectors.sandbox.store import Received

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_JSON = [(b"content-type", b"application/json")]
_OK: dict[str, Any] = {"ok": True}
Result = tuple[int, Any, dict[str, str]]  # status, JSON-able payload, extra headers
Answer = tuple[int, bytes, dict[str, str]]  # status, serialized body, extra headers
_KEPT_HEADERS = (
    "x-event-id",
    "x-delivery-attempt",
    "x-carinho-signature",
    "authorization",
    "client-token",
    "x-api-key",
    "content-type",
)


class HttpError(Exception):
    def __init__(self, status: int, body: dict[str, Any]):
        self.status = status
        self.body = body


class SandboxApp:
    def __init__(self, seed: int | None = None):
        self.faults: dict[str, FaultConfig] = {}
        self.received: dict[str, Received] = {}
        self.sources = SourceFeeds()
        self.rng = random.Random(seed)

    def fault(self, name: str) -> FaultConfig:
        config = self.faults.get(name)
        if config is None:
            config = self.faults[name] = FaultConfig()
        return config

    def store(self, name: str) -> Received:
        store = self.received.get(name)
        if store is None:
            store = self.received[name] = Received()
        return store

    def reset(self, name: str | None = None) -> None:
        if name is None:
            self.faults.clear()
            self.received.clear()
            self.sources.clear()
        else:
            self.faults.pop(name, None)
            self.received.pop(name, None)

    # ---- ASGI ------------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        status, raw, headers = await self.handle(scope, body)
        out = [*_JSON, (b"content-length", str(len(raw)).encode())]
        out.extend((k.encode(), v.encode()) for k, v in headers.items())
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": raw})

    async def handle(self, scope: Scope, body: bytes) -> Answer:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        delay_s, finish = self.begin(scope["method"], scope["path"], scope.get("query_string", b""), headers, body)
        if delay_s > 0:
            await asyncio.sleep(delay_s)
        return finish()

    # ---- the server-independent core (ASGI above, the lean protocol server in server.py) -----------
    def begin(
        self, method: str, path: str, query_string: bytes, headers: dict[str, str], body: bytes
    ) -> tuple[float, Callable[[], Answer]]:
        """(latency to inject, then the call that produces the answer). `headers` has lower-case names.
        Split in two so a server can wait the injected latency without a task per request."""
        parts = [p for p in path.split("/") if p]
        if parts and parts[0] not in ("_control", "sources") and method in ("POST", "PUT", "PATCH"):
            name = parts[0]
            self.store(name).requests += 1
            fault = self.faults.get(name)
            delay = fault.latency_ms / 1000 if fault is not None and fault.latency_ms > 0 else 0.0
            return delay, partial(self._answer, self._destination, name, method, path, parts[1:], body, headers)
        if len(parts) >= 2 and parts[0] == "sources":
            fault = self.faults.get(f"sources:{parts[1]}")
            delay = fault.latency_ms / 1000 if fault is not None and fault.latency_ms > 0 else 0.0
            return delay, partial(self._answer, self._dispatch, method, parts, body, query_string)
        return 0.0, partial(self._answer, self._dispatch, method, parts, body, query_string)

    @staticmethod
    def _answer(fn: Callable[..., Result], *args: Any) -> Answer:
        try:
            status, payload, headers = fn(*args)
        except HttpError as exc:
            status, payload, headers = exc.status, exc.body, {}
        return status, orjson.dumps(payload), headers

    def _dispatch(self, method: str, parts: list[str], body: bytes, query_string: bytes) -> Result:
        if not parts:
            return 200, {"sandbox": "carinho", "control": "/_control/<name>"}, {}
        if parts[0] == "_control":
            return self.control(method, parts[1:], body, _query(query_string))
        if parts[0] == "sources" and len(parts) >= 2:
            return self.source_feed(parts[1], "/" + "/".join(parts[2:]), _query(query_string))
        if method == "GET":
            return 200, {"ok": True, "destination": parts[0]}, {}
        raise HttpError(405, {"error": "method not allowed"})

    # ---- destinations ----------------------------------------------------------------------------
    def _destination(
        self, name: str, method: str, path: str, rest: list[str], body: bytes, headers: dict[str, str]
    ) -> Result:
        """After the injected latency (begin() counted the request)."""
        key = headers.get("idempotency-key")
        store = self.store(name)
        fault = self.faults.get(name)
        if fault is not None:
            injected = fault.decide(self.rng)
            if injected is not None:
                store.fail(key, injected[0])
                return injected
        try:
            try:
                parsed: Any = orjson.loads(body) if body else None
            except orjson.JSONDecodeError as exc:
                raise HttpError(400, {"error": "invalid json", "message": "body is not JSON"}) from exc
            if name == "whatsapp":
                answer = self._zapi_check(rest, headers, parsed)
            elif name == "sms":
                answer = self._sms_check(parsed)
            else:
                answer = _OK
        except HttpError as exc:
            store.fail(key, exc.status)
            raise
        item = {
            "idempotency_key": key,
            "method": method,
            "path": path,
            "body": parsed,
            "headers": {h: headers[h] for h in _KEPT_HEADERS if h in headers},
            "received_at": time.time(),
        }
        if not store.accept(key, item):
            return 200, {**answer, "duplicate": True}, {}
        return 200, answer, {}

    @staticmethod
    def _zapi_check(rest: list[str], headers: dict[str, str], body: Any) -> dict[str, Any]:
        # instances/<instance>/token/<token>/send-text
        if len(rest) != 5 or rest[0] != "instances" or rest[2] != "token" or rest[4] != "send-text":
            raise HttpError(404, {"error": "NOT_FOUND", "message": "Unable to find matching target resource method"})
        if not headers.get("client-token"):
            raise HttpError(
                400, {"error": "your client-token is not configured", "message": "Client-Token header is required"}
            )
        if not isinstance(body, dict) or not body.get("phone") or not body.get("message"):
            raise HttpError(400, {"error": "phone and message are required", "message": "invalid body"})
        if not str(body["phone"]).isdigit():
            raise HttpError(400, {"error": "invalid phone", "message": "only digits, e.g. 5511999999999"})
        message_id = uuid.uuid4().hex[:20].upper()
        return {"zaapId": uuid.uuid4().hex.upper()[:32], "messageId": message_id, "id": message_id}

    @staticmethod
    def _sms_check(body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not body.get("to") or not body.get("message"):
            raise HttpError(422, {"error": "invalid_request", "message": "to and message are required"})
        return {"id": uuid.uuid4().hex, "status": "queued"}

    # ---- source feeds ----------------------------------------------------------------------------
    def source_feed(self, source: str, path: str, query: dict[str, str]) -> Result:
        """After the injected latency (see begin())."""
        fault = self.faults.get(f"sources:{source}")
        if fault is not None:
            injected = fault.decide(self.rng)
            if injected is not None:
                return injected
        try:
            limit = int(query.get("limit") or 200)
            page = self.sources.page(source, path, query.get("since", ""), query.get("cursor", ""), max(1, limit))
        except (ValueError, KeyError) as exc:
            raise HttpError(400, {"error": "bad_request", "message": str(exc)}) from exc
        return 200, page, {}

    # ---- control API -----------------------------------------------------------------------------
    def control(self, method: str, parts: list[str], body: bytes, query: dict[str, str]) -> Result:
        if parts == ["health"]:
            return 200, {"ok": True}, {}
        if parts == ["reset"] and method == "POST":
            self.reset()
            return 200, {"reset": "all"}, {}
        if not parts:
            return (
                200,
                {
                    "destinations": {n: self._counts(n) for n in sorted(self.received)},
                    "faults": {n: f.to_dict() for n, f in self.faults.items()},
                },
                {},
            )
        data = _json_body(body)
        if parts[0] == "sources" and len(parts) >= 2:
            source = parts[1]
            if parts[2:] == ["items"]:
                if method == "DELETE":
                    self.sources.clear(source)
                    return 200, {"source": source, "items": 0}, {}
                if method == "POST":
                    if not isinstance(data, dict) or "path" not in data or not isinstance(data.get("items"), list):
                        raise HttpError(400, {"error": "bad_request", "message": 'expected {"path", "items": [...]}'})
                    try:
                        total = self.sources.seed(source, str(data["path"]), data["items"])
                    except ValueError as exc:
                        raise HttpError(400, {"error": "bad_request", "message": str(exc)}) from exc
                    return 200, {"source": source, "items": total}, {}
                return 200, {"source": source, "items": self.sources.count(source)}, {}
            return self._faults(f"sources:{source}", method, parts[2:], data)
        name = parts[0]
        if parts[1:] == ["received"]:
            offset = int(query.get("offset") or 0)
            limit = int(query["limit"]) if query.get("limit") else None
            return 200, {"destination": name, **self.store(name).summary(offset, limit)}, {}
        return self._faults(name, method, parts[1:], data)

    def _faults(self, name: str, method: str, rest: list[str], data: Any) -> Result:
        if rest == ["reset"] or (not rest and method == "DELETE"):
            self.reset(name)
            return 200, {"name": name, "reset": True}, {}
        if rest:
            raise HttpError(404, {"error": "not_found", "message": "unknown control path"})
        if method == "POST":
            if not isinstance(data, dict):
                raise HttpError(400, {"error": "bad_request", "message": "expected a JSON object"})
            try:
                self.fault(name).update(data)
            except (ValueError, TypeError) as exc:
                raise HttpError(400, {"error": "bad_request", "message": str(exc)}) from exc
        return 200, {"name": name, "faults": self.fault(name).to_dict(), **self._counts(name)}, {}

    def _counts(self, name: str) -> dict[str, int]:
        store = self.received.get(name) or Received()
        return {
            "unique": len(store.items),
            "duplicates": store.duplicates,
            "requests": store.requests,
            "failed": store.failed,
        }


def _query(query_string: bytes) -> dict[str, str]:
    raw = query_string.decode("latin-1")
    return {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}


def _json_body(body: bytes) -> Any:
    if not body:
        return {}
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise HttpError(400, {"error": "bad_request", "message": "body is not JSON"}) from exc
