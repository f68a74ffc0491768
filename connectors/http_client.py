"""A lean HTTP/1.1 keep-alive client for the delivery hot path: asyncio protocols + httptools' parser.

The connectors send one small JSON request per delivery and read one small answer; they never follow
redirects, stream, use cookies or proxies. aiohttp's ClientSession does all of that on every call (header
multidicts, tracing hooks, timers, a request and a response object with their writers and readers) and
measured ~510 us of CPU per request here (64 concurrent POSTs to the sandbox); this client builds the
request head as one string, writes head+body in one `write`, parses the answer with httptools (C) and
costs 85-120 us. See docs/connectors.md (design decisions).

What it does:
  * a keep-alive pool per origin (scheme, host, port), at most `limit` connections in total, LIFO reuse,
    idle connections dropped after `keepalive_s`; `Connection: close` answers close the connection;
  * one deadline per request (pool wait + connect + write + read): `httpx.ConnectTimeout` /
    `httpx.ReadTimeout`; connection errors `httpx.ConnectError`, a peer that disconnects or breaks the
    protocol `httpx.RemoteProtocolError` — the httpx exception classes, so classification is the same as
    on the httpx and aiohttp transports;
  * a request on a *reused* connection that the peer closed before answering a single byte (an idle
    keep-alive connection closed by the server) is sent once more on a new connection — the usual
    stale-connection retry; the destination deduplicates by Idempotency-Key anyway;
  * Content-Length and chunked answers, answers delimited by the connection close, gzip/deflate bodies,
    https (system trust store, SNI).
"""

from __future__ import annotations

import asyncio
import ssl
import zlib
from collections import deque
from typing import Any

import httptools
import httpx
import orjson
import yarl

_MAX_URL_CACHE = 4096
Origin = tuple[str, str, int]


class Response:
    """The part of an HTTP answer the senders use (same attribute names as httpx.Response)."""

    __slots__ = ("content", "headers", "status_code")

    def __init__(self, status_code: int, headers: dict[str, str], content: bytes):
        self.status_code = status_code
        self.headers = headers  # lower-case names; a repeated header keeps its last value
        self.content = content

    def json(self) -> Any:
        return orjson.loads(self.content)


class _StaleConnection(Exception):
    """A reused connection was closed by the peer before any byte of the answer arrived."""


class _Connection(asyncio.Protocol):
    def __init__(self, origin: Origin) -> None:
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reused = False
        self.idle_since = 0.0
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[tuple[Response, bool]] | None = None
        self._reset()

    def _reset(self) -> None:
        self._status = 0
        self._headers: dict[str, str] = {}
        self._chunks: list[bytes] = []
        self._got_bytes = False
        self._headers_done = False

    # ---- asyncio.Protocol ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not subclasses

    def data_received(self, data: bytes) -> None:
        self._got_bytes = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"invalid HTTP answer: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if (
            self._headers_done
            and "content-length" not in self._headers
            and "chunked" not in self._headers.get("transfer-encoding", "")
        ):
            self._complete(keep_alive=False)  # body delimited by the connection close
        elif not self._got_bytes and self.reused:
            self._waiter = None
            waiter.set_exception(_StaleConnection())
        else:
            self._fail(httpx.RemoteProtocolError("server disconnected without a complete answer"))

    # ---- httptools callbacks ---------------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self._headers_done = True
        self._status = self._parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)

    def on_message_complete(self) -> None:
        if 100 <= self._status < 200:  # an interim answer (100 Continue): the real one follows
            self._reset()
            return
        self._complete(keep_alive=self._parser.should_keep_alive())

    # ---- requests --------------------------------------------------------------------------------
    def _complete(self, *, keep_alive: bool) -> None:
        waiter = self._waiter
        self._waiter = None
        body = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
        encoding = self._headers.get("content-encoding")
        try:
            if encoding in ("gzip", "deflate") and body:
                body = zlib.decompress(body, 47 if encoding == "gzip" else 15)
        except zlib.error as exc:
            self._waiter = waiter
            self._fail(httpx.DecodingError(f"bad {encoding} body: {exc}"))
            return
        response = Response(self._status, self._headers, body)
        self._reset()
        if waiter is not None and not waiter.done():
            waiter.set_result((response, keep_alive))

    def _fail(self, exc: BaseException) -> None:
        waiter = self._waiter
        self._waiter = None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def send(self, data: bytes, waiter: asyncio.Future[tuple[Response, bool]]) -> None:
        assert self.transport is not None
        self._waiter = waiter
        self.transport.write(data)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


class _Target:
    __slots__ = ("head_prefix", "origin")

    def __init__(self, origin: Origin, head_prefix: str):
        self.origin = origin
        self.head_prefix = head_prefix


class HttpPool:
    """Keep-alive HTTP/1.1 connections, at most `limit` open at a time (sized to the destination's
    concurrency, so a request never waits for a connection in normal operation)."""

    def __init__(self, limit: int, *, keepalive_s: float = 30.0, ssl_context: ssl.SSLContext | None = None):
        self.limit = limit
        self.keepalive_s = keepalive_s
        self._ssl = ssl_context
        self._idle: dict[Origin, list[_Connection]] = {}
        self._open = 0
        self._slot_waiters: deque[asyncio.Future[None]] = deque()
        self._targets: dict[tuple[str, str], _Target] = {}
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def open_connections(self) -> int:
        return self._open

    def _target(self, method: str, url: str) -> _Target:
        target = self._targets.get((method, url))
        if target is None:
            parsed = yarl.URL(url)  # percent-encodes the path: no raw CR/LF/space can reach the wire
            if parsed.scheme not in ("http", "https") or not parsed.host:
                raise httpx.UnsupportedProtocol(f"unsupported URL {url!r}")
            port = parsed.port or (443 if parsed.scheme == "https" else 80)
            host_header = parsed.raw_host or ""
            if parsed.port is not None and not parsed.is_default_port():
                host_header = f"{host_header}:{parsed.port}"
            path = parsed.raw_path_qs or "/"
            head = f"{method} {path} HTTP/1.1\r\nHost: {host_header}\r\n"
            target = _Target((parsed.scheme, parsed.raw_host or "", port), head)
            if len(self._targets) >= _MAX_URL_CACHE:
                self._targets.clear()
            self._targets[(method, url)] = target
        return target

    async def request(
        self,
        method: str,
        url: str,
        *,
        content: bytes,
        headers: dict[str, str],
        timeout: float,  # noqa: ASYNC109 - one deadline for the whole call
    ) -> Response:
        return await self.request_raw(method, url, header_block(headers), content, timeout)

    async def request_raw(self, method: str, url: str, headers: str, content: bytes, timeout: float) -> Response:  # noqa: ASYNC109 - one deadline for the whole call
        """`headers`: "Name: value\\r\\n" lines, already checked (see header_block); Host and
        Content-Length are added here."""
        target = self._target(method, url)
        data = f"{target.head_prefix}{headers}Content-Length: {len(content)}\r\n\r\n".encode("latin-1") + content

        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        waiter: asyncio.Future[tuple[Response, bool]] = loop.create_future()
        timer = loop.call_at(deadline, _expire, waiter)
        conn: _Connection | None = None
        try:
            for _ in range(2):  # at most one re-send, after a stale keep-alive connection
                conn = self._idle_connection(target.origin, loop.time())
                if conn is None:
                    conn = await self._acquire(target.origin, deadline, waiter)
                conn.send(data, waiter)
                try:
                    response, keep_alive = await waiter
                except _StaleConnection:
                    self._discard(conn)
                    conn = None
                    waiter = loop.create_future()
                    timer.cancel()
                    timer = loop.call_at(deadline, _expire, waiter)
                    continue
                self._release(conn, keep_alive)
                conn = None
                return response
            raise httpx.RemoteProtocolError("server disconnected without sending an answer")
        except _Expired as exc:
            raise httpx.ReadTimeout(f"no answer within {timeout:.3f}s") from exc
        finally:
            timer.cancel()
            if waiter.done() and not waiter.cancelled():
                waiter.exception()  # mark an expiry that hit during connect as retrieved (no asyncio warning)
            if conn is not None:  # failed, timed out or cancelled mid-request: the connection is unusable
                self._discard(conn)

    def _idle_connection(self, origin: Origin, now: float) -> _Connection | None:
        idle = self._idle.get(origin)
        while idle:
            conn = idle.pop()
            if not conn.closed and now - conn.idle_since < self.keepalive_s:
                conn.reused = True
                return conn
            self._discard(conn)
        return None

    async def _acquire(
        self, origin: Origin, deadline: float, waiter: asyncio.Future[tuple[Response, bool]]
    ) -> _Connection:
        loop = asyncio.get_running_loop()
        conn = self._idle_connection(origin, loop.time())
        if conn is not None:
            return conn
        while self._open >= self.limit:
            if not self._evict_idle():
                slot: asyncio.Future[None] = loop.create_future()
                self._slot_waiters.append(slot)
                try:
                    await _wait_or_expire(slot, waiter)
                finally:
                    if not slot.done():
                        slot.cancel()
                conn = self._idle_connection(origin, loop.time())
                if conn is not None:
                    return conn
        self._open += 1
        try:
            return await self._connect(origin, deadline)
        except BaseException:
            self._open -= 1
            self._wake_one()
            raise

    async def _connect(self, origin: Origin, deadline: float) -> _Connection:
        loop = asyncio.get_running_loop()
        scheme, host, port = origin
        context: ssl.SSLContext | None = None
        if scheme == "https":
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            context = self._ssl
        try:
            async with asyncio.timeout_at(deadline):
                _, protocol = await loop.create_connection(
                    lambda: _Connection(origin),
                    host,
                    port,
                    ssl=context,
                    server_hostname=host if context is not None else None,
                )
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(f"connect to {host}:{port} timed out") from exc
        except OSError as exc:
            raise httpx.ConnectError(f"connect to {host}:{port}: {exc}") from exc
        return protocol

    def _release(self, conn: _Connection, keep_alive: bool) -> None:
        if not keep_alive or conn.closed or self._closed:
            self._discard(conn)
            return
        conn.idle_since = self._loop.time() if self._loop is not None else 0.0
        self._idle.setdefault(conn.origin, []).append(conn)
        self._wake_one()

    def _discard(self, conn: _Connection) -> None:
        conn.close()
        self._open -= 1
        self._wake_one()

    def _evict_idle(self) -> bool:
        """At the limit with idle connections to another origin: close one of those instead of waiting."""
        for conns in self._idle.values():
            if conns:
                self._discard(conns.pop(0))
                return True
        return False

    def _wake_one(self) -> None:
        while self._slot_waiters:
            slot = self._slot_waiters.popleft()
            if not slot.done():
                slot.set_result(None)
                return

    async def aclose(self) -> None:
        self._closed = True
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
                self._open -= 1
        self._idle.clear()


def header_block(headers: dict[str, str]) -> str:
    """Render headers as request-head lines; a value with a line break (header injection) is refused."""
    parts = []
    for name, value in headers.items():
        if "\n" in value or "\r" in value or "\n" in name or "\r" in name or ":" in name:
            raise httpx.LocalProtocolError(f"invalid header {name!r}")
        parts.append(f"{name}: {value}\r\n")
    return "".join(parts)


class _Expired(Exception):
    pass


def _expire(waiter: asyncio.Future[Any]) -> None:
    if not waiter.done():
        waiter.set_exception(_Expired())


async def _wait_or_expire(slot: asyncio.Future[None], waiter: asyncio.Future[Any]) -> None:
    """Wait for a free connection slot, unless the request's deadline passes first."""
    done, _ = await asyncio.wait((slot, waiter), return_when=asyncio.FIRST_COMPLETED)
    if waiter in done:
        waiter.result()  # raises _Expired
