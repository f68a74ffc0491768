"""The native HTTP client (connectors.http_client) against scripted raw servers — framing, keep-alive,
stale connections, failures — and the sandbox's lean server (pipelining, latency, Expect)."""

from __future__ import annotations

import asyncio
import gzip
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from connectors.http_client import HttpPool
from connectors.sandbox.app import SandboxApp
from connectors.sandbox.server import serve_async

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
StartServer = Callable[[Handler], Awaitable[str]]


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return lines[0].encode(), headers, body


@pytest.fixture
async def raw_server() -> AsyncIterator[StartServer]:
    servers: list[asyncio.Server] = []

    async def start(handler: Handler) -> str:
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    yield start
    for server in servers:
        server.close()


async def test_content_length_chunked_gzip_and_close_delimited_bodies(raw_server: StartServer) -> None:
    seen: list[tuple[bytes, dict[str, str], bytes]] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                line, headers, body = await read_request(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            seen.append((line, headers, body))
            if line.startswith(b"POST /chunked"):
                writer.write(
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nRetry-After: 7\r\n\r\n"
                    b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"
                )
            elif line.startswith(b"POST /gzip"):
                packed = gzip.compress(b'{"ok": true}')
                writer.write(
                    b"HTTP/1.1 201 Created\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s"
                    % (len(packed), packed)
                )
            elif line.startswith(b"POST /close"):
                writer.write(b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\nuntil close")
                await writer.drain()
                writer.close()
                return
            else:
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
        writer.close()

    url = await raw_server(handler)
    pool = HttpPool(4)
    try:
        plain = await pool.request("POST", f"{url}/plain", content=b"{}", headers={"X-A": "1"}, timeout=5)
        assert (plain.status_code, plain.content) == (200, b"ok")
        chunked = await pool.request("POST", f"{url}/chunked", content=b"x", headers={}, timeout=5)
        assert chunked.content == b"abcdefg" and chunked.headers.get("retry-after") == "7"
        zipped = await pool.request("POST", f"{url}/gzip", content=b"x", headers={}, timeout=5)
        assert zipped.status_code == 201 and zipped.json() == {"ok": True}
        assert pool.open_connections == 1  # all three on one keep-alive connection
        closed = await pool.request("POST", f"{url}/close", content=b"x", headers={}, timeout=5)
        assert (closed.status_code, closed.content) == (503, b"until close")
        assert pool.open_connections == 0
    finally:
        await pool.aclose()
    line, headers, body = seen[0]
    assert line == b"POST /plain HTTP/1.1" and headers["x-a"] == "1" and headers["content-length"] == "2"
    assert headers["host"].startswith("127.0.0.1:") and body == b"{}"


async def test_a_stale_keep_alive_connection_is_retried_once_on_a_new_one(raw_server: StartServer) -> None:
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        # The next request on this connection finds it closed by the server (as an idle timeout would),
        # after the client already sent it and before any byte of an answer.
        await read_request(reader)
        writer.transport.abort()

    url = await raw_server(handler)
    pool = HttpPool(2)
    try:
        for _ in range(3):
            assert (await pool.request("POST", f"{url}/x", content=b"", headers={}, timeout=5)).status_code == 200
    finally:
        await pool.aclose()
    assert connections == 3


async def test_failures_map_onto_httpx_exceptions(raw_server: StartServer) -> None:
    async def half_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        await writer.drain()
        writer.close()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        await writer.drain()

    pool = HttpPool(2)
    try:
        with pytest.raises(httpx.RemoteProtocolError):
            await pool.request("POST", f"{await raw_server(half_answer)}/x", content=b"", headers={}, timeout=5)
        with pytest.raises(httpx.ReadTimeout):
            await pool.request("POST", f"{await raw_server(silent)}/x", content=b"", headers={}, timeout=0.2)
        with pytest.raises(httpx.RemoteProtocolError):
            await pool.request("POST", f"{await raw_server(garbage)}/x", content=b"", headers={}, timeout=5)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            refused = f"http://127.0.0.1:{s.getsockname()[1]}/x"
        with pytest.raises(httpx.ConnectError):
            await pool.request("POST", refused, content=b"", headers={}, timeout=2)
        with pytest.raises(httpx.LocalProtocolError):
            await pool.request("POST", refused, content=b"", headers={"X-Evil": "a\r\nInjected: 1"}, timeout=2)
        with pytest.raises(httpx.UnsupportedProtocol):
            await pool.request("POST", "ftp://127.0.0.1/x", content=b"", headers={}, timeout=2)
        assert pool.open_connections == 0  # every failed connection was discarded
    finally:
        await pool.aclose()


async def test_the_pool_never_opens_more_than_its_limit_and_paths_are_encoded(raw_server: StartServer) -> None:
    open_now = peak = 0
    lines: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal open_now, peak
        open_now += 1
        peak = max(peak, open_now)
        try:
            while True:
                line, _, _ = await read_request(reader)
                lines.append(line)
                await asyncio.sleep(0.02)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            open_now -= 1

    url = await raw_server(handler)
    pool = HttpPool(2)
    try:
        answers = await asyncio.gather(
            *(pool.request("POST", f"{url}/a b/{i}?q=1", content=b"", headers={}, timeout=5) for i in range(6))
        )
    finally:
        await pool.aclose()
    assert all(a.status_code == 200 for a in answers) and peak == 2
    assert b"POST /a%20b/0?q=1 HTTP/1.1" in lines


@pytest.fixture
async def lean_sandbox() -> AsyncIterator[tuple[SandboxApp, int]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = SandboxApp(seed=1)
    stop = asyncio.Event()
    task = asyncio.create_task(serve_async(app, "127.0.0.1", port, stop))
    await asyncio.sleep(0.05)
    yield app, port
    stop.set()
    await task


async def test_lean_sandbox_answers_pipelined_requests_in_order(lean_sandbox: tuple[SandboxApp, int]) -> None:
    app, port = lean_sandbox
    app.fault("crm").update({"latency_ms": 30})
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    requests = b"".join(
        b"POST /crm/x HTTP/1.1\r\nHost: s\r\nIdempotency-Key: k%d\r\nContent-Length: 2\r\n\r\n{}" % i for i in range(3)
    )
    writer.write(requests + b"GET /_control/crm HTTP/1.1\r\nHost: s\r\n\r\n")
    started = asyncio.get_running_loop().time()
    statuses = []
    for _ in range(4):
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.split(b"content-length: ")[1].split(b"\r\n")[0])
        statuses.append((head.split(b" ")[1], await reader.readexactly(length)))
    elapsed = asyncio.get_running_loop().time() - started
    writer.close()
    assert [s for s, _ in statuses] == [b"200"] * 4 and elapsed >= 0.085  # 3 x 30 ms, one after the other
    assert b'"unique":3' in statuses[3][1]
    assert [i["idempotency_key"] for i in app.store("crm").items] == ["k0", "k1", "k2"]


async def test_lean_sandbox_expect_continue_close_and_bad_requests(lean_sandbox: tuple[SandboxApp, int]) -> None:
    _, port = lean_sandbox
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /sms/messages HTTP/1.1\r\nHost: s\r\nExpect: 100-continue\r\nContent-Length: 38\r\n\r\n")
    assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
    writer.write(b'{"to": "5511999990000", "message": "oi"}'[:38])
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 ")
    writer.close()

    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /_control/health HTTP/1.1\r\nHost: s\r\nConnection: close\r\n\r\n")
    answer = await reader.read()  # the server closes after answering
    assert answer.startswith(b"HTTP/1.1 200 OK") and b"connection: close" in answer
    writer.close()

    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"\x00\x01 nonsense\r\n\r\n")
    assert (await reader.read()).startswith(b"HTTP/1.1 400")
    writer.close()


def _answering_server() -> tuple[str, Callable[[], None]]:
    """An HTTP server on its own thread (a stalled client loop does not stall it): 200 at once."""
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def serve() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            buffered = b""
            while True:
                try:
                    chunk = conn.recv(65536)
                except OSError:
                    return
                if not chunk:
                    return
                buffered += chunk
                while b"\r\n\r\n" in buffered:  # bodies are empty in this test
                    _, buffered = buffered.split(b"\r\n\r\n", 1)
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    threading.Thread(target=serve, daemon=True).start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}", listener.close


STALLS = 5  # a client that woke a task to read (asyncio.StreamReader) lost most such races, tried by hand


@pytest.mark.parametrize("loop_kind", ["uvloop", "asyncio"])
def test_an_answer_that_arrived_while_the_loop_was_stalled_is_not_a_timeout(loop_kind: str) -> None:
    """The connector's own loop stalls past a request's deadline (a GC pause, a burst of other work)
    while the destination's answer is already in the socket: that is an answer, not a timeout. It
    holds because the client completes the request inside the socket's read callback, which both
    loops run before the deadline's timer; a client that woke a task to read the answer (as
    asyncio.StreamReader does) would lose that race, fail every request in flight on one stall and
    open the breaker."""
    import time

    import uvloop

    url, close = _answering_server()

    async def scenario() -> list[str]:
        pool = HttpPool(1)
        outcomes = []
        try:
            await pool.request("POST", f"{url}/warm", content=b"", headers={}, timeout=5)  # connected
            for _ in range(STALLS):
                call = asyncio.ensure_future(pool.request("POST", f"{url}/x", content=b"", headers={}, timeout=0.2))
                await asyncio.sleep(0)  # the request is written (and answered during the stall):
                time.sleep(0.3)  # noqa: ASYNC251 - the point: the loop stalls past the deadline
                try:
                    response = await call
                    outcomes.append(f"answer {response.status_code}")
                except httpx.TimeoutException:
                    outcomes.append("timeout")
        finally:
            await pool.aclose()
        return outcomes

    try:
        outcomes = uvloop.run(scenario()) if loop_kind == "uvloop" else asyncio.run(scenario())
    finally:
        close()
    assert outcomes == ["answer 200"] * STALLS
