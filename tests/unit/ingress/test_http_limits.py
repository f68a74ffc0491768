"""The ingress's HTTP server refuses an oversized request head with a JSON 431 instead of buffering it
(uvicorn's httptools protocol has no bound: a 64 MB header from a caller without a key was read)."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn

from ingress.http_limits import bounded_http_protocol
from ingress.settings import IngressSettings


async def echo_app(scope: dict, receive, send) -> None:  # type: ignore[no-untyped-def,type-arg]
    assert scope["type"] == "http"
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = json.dumps({"path": scope["path"], "body_bytes": size}).encode()
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", str(len(body)).encode())]}
    )
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = int(s.getsockname()[1])
    config = uvicorn.Config(
        echo_app, host="127.0.0.1", port=free, http=bounded_http_protocol(16_384), log_config=None, lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield free
    server.should_exit = True
    thread.join(timeout=10)


def exchange(port: int, data: bytes, *, until: int = 1) -> bytes:
    """Send `data`, read until the server closes or `until` answers came."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # refused mid-send: answer on its way
            conn.sendall(data)
        out = b""
        while out.count(b"HTTP/1.1 ") < until or not out.endswith(b"}"):
            try:
                chunk = conn.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
        return out


def test_the_ingress_serves_with_the_bound_from_its_settings() -> None:
    assert IngressSettings().max_header_bytes == 65_536


@pytest.mark.parametrize("size", [20_000, 4_000_000])
def test_an_oversized_header_is_a_json_431_and_the_connection_closes(port: int, size: int) -> None:
    answer = exchange(port, b"POST /v1/events HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * size + b"\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431 ") and b"connection: close" in head, answer[:200]
    error = json.loads(body)
    assert error["status"] == 431 and error["errors"][0] == {
        "field": "(headers)",
        "rule": "max_bytes",
        "message": "the request line and headers are larger than 16384 bytes",
    }


def test_an_oversized_url_is_refused_too(port: int) -> None:
    answer = exchange(port, b"GET /" + b"a" * 40_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 431 ")


def test_large_bodies_and_keep_alive_requests_are_untouched(port: int) -> None:
    body = b"x" * 1_000_000  # a body far larger than the head bound, in the same writes as the head
    one = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    small = b"GET /b HTTP/1.1\r\nHost: x\r\nX-Ok: " + b"b" * 10_000 + b"\r\n\r\n"
    answer = exchange(port, one + small + small, until=3)
    assert answer.count(b"HTTP/1.1 200 ") == 3, answer[:300]
    assert b'"body_bytes": 1000000' in answer and answer.count(b'"path": "/b"') == 2
