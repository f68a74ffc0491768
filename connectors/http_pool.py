"""The keep-alive HTTP pool of one destination, sized to the destination's concurrency:

* `native` (default): connectors.http_client.HttpPool, asyncio protocols + httptools (~8x less CPU per
  request than aiohttp's ClientSession here; see docs/connectors.md);
* `aiohttp`: the httpx API on aiohttp's connector (http_transport);
* `httpx`: httpx's own httpcore pool.

All three answer with an object that has `status_code`, `headers` (case-insensitive `get`) and
`content`, and raise httpx's exception classes, so the senders and classification are the same.

httpcore's pool re-scans every connection for every queued request, so the native option is split into
shards of <= 8 connections, each request going to the least-busy shard."""

from __future__ import annotations

import math
from typing import Literal, Protocol

import httpx

from connectors.classify import HeaderLookup
from connectors.http_client import HttpPool
from connectors.http_transport import AiohttpTransport

SHARD_SIZE = 8
TransportName = Literal["native", "aiohttp", "httpx"]


class HttpResponse(Protocol):
    @property
    def status_code(self) -> int: ...
    @property
    def headers(self) -> HeaderLookup: ...
    @property
    def content(self) -> bytes: ...


class PooledClient:
    def __init__(self, concurrency: int, *, transport: TransportName = "native", shard_size: int = SHARD_SIZE):
        self._native: HttpPool | None = HttpPool(concurrency) if transport == "native" else None
        # aiohttp: requests go straight to the transport (no auth/cookie/redirect layers to run: the
        # connector sets every header itself and never follows redirects).
        self._transport: AiohttpTransport | None = None
        self._clients: list[httpx.AsyncClient] = []
        if transport == "native":
            pass
        elif transport == "aiohttp":
            self._transport = AiohttpTransport(limit=concurrency)
        else:
            shards = max(1, math.ceil(concurrency / shard_size))
            per_shard = math.ceil(concurrency / shards)
            limits = httpx.Limits(max_connections=per_shard, max_keepalive_connections=per_shard, keepalive_expiry=30.0)
            self._clients = [
                httpx.AsyncClient(limits=limits, follow_redirects=False, trust_env=False) for _ in range(shards)
            ]
        self._busy = [0] * len(self._clients)

    @property
    def native(self) -> HttpPool | None:
        """The native pool when that is the transport (the senders call it directly)."""
        return self._native

    @property
    def shards(self) -> int:
        return max(1, len(self._clients))

    async def request(
        self,
        method: str,
        url: str,
        *,
        content: bytes,
        headers: dict[str, str],
        timeout: float,  # noqa: ASYNC109 - per request
    ) -> HttpResponse:
        if self._native is not None:
            return await self._native.request(method, url, content=content, headers=headers, timeout=timeout)
        if self._transport is not None:
            request = httpx.Request(
                method,
                url,
                content=content,
                headers=headers,
                extensions={"timeout": {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout}},
            )
            return await self._transport.handle_async_request(request)
        index = min(range(len(self._busy)), key=self._busy.__getitem__) if len(self._busy) > 1 else 0
        self._busy[index] += 1
        try:
            return await self._clients[index].request(method, url, content=content, headers=headers, timeout=timeout)
        finally:
            self._busy[index] -= 1

    async def aclose(self) -> None:
        if self._native is not None:
            await self._native.aclose()
        if self._transport is not None:
            await self._transport.aclose()
        for client in self._clients:
            await client.aclose()
