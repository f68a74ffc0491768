"""The connectors' local HTTP endpoint (127.0.0.1:9108): /health, /status, /metrics. A raw ASGI app
served by uvicorn inside the service's own event loop."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Generator, MutableMapping
from typing import Any

import orjson
import uvicorn

from hub.metrics import render

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class StatusApp:
    def __init__(self, status: Callable[[], dict[str, Any]], healthy: Callable[[], bool]):
        self.status = status
        self.healthy = healthy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/metrics":
            body, ctype = render()
            await _respond(send, 200, body, ctype)
        elif path == "/status":
            await _respond(send, 200, orjson.dumps(self.status(), default=str), "application/json")
        elif path == "/health":
            ok = self.healthy()
            await _respond(
                send, 200 if ok else 503, orjson.dumps({"status": "ok" if ok else "degraded"}), "application/json"
            )
        else:
            await _respond(send, 404, b'{"error":"not found"}', "application/json")


async def _respond(send: Send, status: int, body: bytes, content_type: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class EmbeddedServer(uvicorn.Server):
    """uvicorn without its own signal handling: the service owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def embedded_server(app: Any, host: str, port: int) -> EmbeddedServer:
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", access_log=False, lifespan="off", loop="none", http="auto"
    )
    return EmbeddedServer(config)
