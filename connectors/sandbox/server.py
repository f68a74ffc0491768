"""Serve the sandbox: a lean HTTP/1.1 server (asyncio protocol + httptools' parser, uvloop when installed).

The sandbox is a test stand-in that the connectors benchmark drives at thousands of requests/s on the
same cores as the worker and the broker. Under uvicorn (ASGI scope, receive/send messages, a task per
request) it cost ~180-230 us of CPU per request; this server parses with httptools, calls
`SandboxApp.begin()` directly and writes the answer in one `write` (65-95 us). Injected latency is a timer,
not a sleeping task. The ASGI interface of SandboxApp stays (in-process tests use it)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import signal
import time
from collections import deque
from collections.abc import Callable
from http import HTTPStatus

import httptools
import httpx

from connectors.sandbox.app import Answer, SandboxApp
from hub.gc_tuning import tune_gc

DEFAULT_PORT = 8090
log = logging.getLogger("connectors.sandbox")

_REASONS = {s.value: s.phrase for s in HTTPStatus}


def _response(status: int, body: bytes, headers: dict[str, str], keep_alive: bool) -> bytes:
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    connection = "" if keep_alive else "connection: close\r\n"
    head = (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n{connection}{extra}\r\n"
    )
    return head.encode("latin-1") + body


class _Request:
    __slots__ = ("body", "headers", "keep_alive", "method", "url")

    def __init__(self) -> None:
        self.url = b""
        self.headers: dict[str, str] = {}
        self.body: list[bytes] = []
        self.method = ""
        self.keep_alive = True


class SandboxProtocol(asyncio.Protocol):
    """One client connection. Requests are answered in order (pipelined requests wait their turn)."""

    def __init__(self, app: SandboxApp) -> None:
        self.app = app
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.current = _Request()
        self.queue: deque[_Request] = deque()
        self.busy = False  # an answer is waiting for its injected latency

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not subclasses

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.queue.clear()

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._write(_response(400, b'{"error": "upgrade not supported"}', {}, False), close=True)
        except httptools.HttpParserError:
            self._write(_response(400, b'{"error": "bad request"}', {}, False), close=True)

    # ---- httptools callbacks ---------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self.current = _Request()

    def on_url(self, url: bytes) -> None:
        self.current.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.current.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        if self.current.headers.get("expect", "").lower() == "100-continue" and self.transport is not None:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self.current.body.append(body)

    def on_message_complete(self) -> None:
        request = self.current
        request.method = self.parser.get_method().decode("ascii")
        request.keep_alive = self.parser.should_keep_alive()
        self.queue.append(request)
        if not self.busy:
            self._run_queue()

    # ---- answering -------------------------------------------------------------------------------
    def _run_queue(self) -> None:
        while self.queue and not self.busy and self.transport is not None:
            request = self.queue.popleft()
            try:
                url = httptools.parse_url(request.url)
                path = url.path.decode("latin-1") if url.path else "/"
                delay_s, finish = self.app.begin(
                    request.method, path, url.query or b"", request.headers, b"".join(request.body)
                )
            except Exception:  # a bug in the sandbox must not kill the connection silently
                log.exception("sandbox request failed")
                self._write(
                    _response(500, b'{"error": "sandbox error"}', {}, request.keep_alive), close=not request.keep_alive
                )
                continue
            if delay_s > 0:
                self.busy = True
                asyncio.get_running_loop().call_later(delay_s, self._finish_later, finish, request.keep_alive)
                return
            self._finish(finish, request.keep_alive)

    def _finish_later(self, finish: Callable[[], Answer], keep_alive: bool) -> None:
        self.busy = False
        if self.transport is None:
            return
        self._finish(finish, keep_alive)
        self._run_queue()

    def _finish(self, finish: Callable[[], Answer], keep_alive: bool) -> None:
        try:
            status, body, headers = finish()
        except Exception:
            log.exception("sandbox request failed")
            status, body, headers = 500, b'{"error": "sandbox error"}', {}
        self._write(_response(status, body, headers, keep_alive), close=not keep_alive)

    def _write(self, data: bytes, *, close: bool) -> None:
        if self.transport is None:
            return
        self.transport.write(data)
        if close:
            self.transport.close()
            self.transport = None


async def serve_async(app: SandboxApp, host: str, port: int, stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SandboxProtocol(app), host, port, backlog=4096, reuse_address=True)
    try:
        await stop.wait()
    finally:
        server.close()
        await server.wait_closed()


def serve(host: str = "127.0.0.1", port: int = DEFAULT_PORT, seed: int | None = None) -> None:
    """Run until SIGTERM/SIGINT (uvloop when installed)."""
    log.info("sandbox listening", extra={"host": host, "port": port})

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        # What the sandbox records only grows (items per destination): see hub/gc_tuning.py.
        tune_gc()
        await serve_async(SandboxApp(seed), host, port, stop)

    if importlib.util.find_spec("uvloop") is not None:
        import uvloop

        with contextlib.suppress(KeyboardInterrupt):
            uvloop.run(main())
    else:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(main())


def wait_ready(base_url: str, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/_control/health", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"sandbox at {base_url} did not become ready in {timeout_s}s")
