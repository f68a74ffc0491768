"""The three HTTP transports against the real sandbox app — served by its lean protocol server and by
uvicorn (ASGI) in the test's loop — and the mapping of network failures onto httpx exceptions (what
classify_exception relies on)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import httpx
import pytest

from connectors.classify import classify_exception
from connectors.http_pool import PooledClient
from connectors.sandbox.app import SandboxApp
from connectors.sandbox.server import serve_async
from connectors.status_server import embedded_server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(params=["lean", "asgi"])
async def sandbox_url(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    port = _free_port()
    if request.param == "lean":
        stop = asyncio.Event()
        lean = asyncio.create_task(serve_async(SandboxApp(seed=1), "127.0.0.1", port, stop))
        await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
        stop.set()
        await lean
        return
    server = embedded_server(SandboxApp(seed=1), "127.0.0.1", port)
    task = asyncio.create_task(server.serve())
    for _ in range(500):  # bounded: uvicorn exposes no started event
        if server.started:
            break
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


@pytest.mark.parametrize("transport", ["native", "aiohttp", "httpx"])
async def test_requests_answers_and_headers(sandbox_url: str, transport: str) -> None:
    client = PooledClient(16, transport=transport)  # type: ignore[arg-type]
    try:
        responses = await asyncio.gather(
            *(
                client.request(
                    "POST",
                    f"{sandbox_url}/crm/api/leads",
                    content=b'{"n": %d}' % i,
                    headers={"Idempotency-Key": f"{transport}-{i}", "Content-Type": "application/json"},
                    timeout=5,
                )
                for i in range(40)
            )
        )
        assert all(r.status_code == 200 for r in responses)
        await client.request(
            "POST",
            f"{sandbox_url}/_control/crm",
            content=b'{"fail_next": 1, "status_code": 429, "retry_after": 4}',
            headers={},
            timeout=5,
        )
        limited = await client.request("POST", f"{sandbox_url}/crm/x", content=b"{}", headers={}, timeout=5)
        assert limited.status_code == 429 and limited.headers["retry-after"] == "4"
        assert limited.json()["error"] == "injected"
        got = await client.request("GET", f"{sandbox_url}/_control/crm/received", content=b"", headers={}, timeout=5)
        assert got.json()["unique"] == 40
    finally:
        await client.aclose()


@pytest.mark.parametrize("transport", ["native", "aiohttp", "httpx"])
async def test_connection_refused_is_a_transient_connect_error(transport: str) -> None:
    client = PooledClient(2, transport=transport)  # type: ignore[arg-type]
    try:
        with pytest.raises(httpx.ConnectError) as info:
            await client.request("POST", f"http://127.0.0.1:{_free_port()}/x", content=b"{}", headers={}, timeout=2)
        assert classify_exception(info.value).kind == "transient"
    finally:
        await client.aclose()


@pytest.mark.parametrize("transport", ["native", "aiohttp", "httpx"])
async def test_slow_answer_is_a_transient_timeout(sandbox_url: str, transport: str) -> None:
    client = PooledClient(2, transport=transport)  # type: ignore[arg-type]
    try:
        await client.request(
            "POST", f"{sandbox_url}/_control/crm", content=b'{"latency_ms": 1000}', headers={}, timeout=5
        )
        with pytest.raises(httpx.TimeoutException) as info:
            await client.request("POST", f"{sandbox_url}/crm/x", content=b"{}", headers={}, timeout=0.2)
        result = classify_exception(info.value)
        assert result.kind == "transient" and result.status is None
    finally:
        await client.aclose()
