"""A bound on the request head (request line + headers) the ingress's HTTP server buffers.

uvicorn's httptools protocol has none (h11's `h11_max_incomplete_event_size` does not apply to it):
a caller without any key could send one header of 64 MB and the server buffered all of it before the
application, and its 401, ever ran — measured on the local hub. Past `max_head_bytes` the connection is
answered `431` with the usual JSON error (`(headers)` / `max_bytes`) and closed.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("ingress")

DEFAULT_MAX_HEAD_BYTES = 65_536


class _HeadTooLarge(Exception):
    """Raised in the parser's callback: httptools stops parsing this connection."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol that refuses a request head larger than `max_head_bytes` (431).

    Two checks: a head that arrived whole is measured exactly (URL and header lengths, at
    headers-complete, before the application sees the request); a head still arriving is counted by
    the bytes received since its message began, so it is never buffered past the bound (plus a read).
    No per-header hook: the exact measure runs only when the bytes received could hold a head past the
    bound (an override of `on_header` cost ~9 % of the ingress's single-event rate, docs/benchmarks.md)."""

    max_head_bytes = DEFAULT_MAX_HEAD_BYTES

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # between a message's start and its headers' end
        self._head_bytes = 0  # received in later reads while in the head (a bound on its size, with...)
        self._chunk = 0  # ...the read being parsed now
        self._begin_chunk = 0  # ...and the read in which this message began
        self._head_refused = False

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = 0
        self._begin_chunk = self._chunk

    def on_headers_complete(self) -> None:
        self._in_head = False
        # The head is within the reads since its message began: measured only when those could exceed
        # the bound (the usual request arrives in one small read).
        if self._head_bytes + self._begin_chunk > self.max_head_bytes and self._head_size() > self.max_head_bytes:
            self._head_refused = True
            raise _HeadTooLarge  # the parser stops; uvicorn answers through send_400_response below
        super().on_headers_complete()

    def _head_size(self) -> int:
        return len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)

    def send_400_response(self, msg: str) -> None:
        if self._head_refused:
            self._refuse_head()
        else:
            super().send_400_response(msg)

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():  # refused already: what is still coming is not read
            return
        self._chunk = len(data)
        if self._in_head:
            self._head_bytes += self._chunk
        super().data_received(data)
        # Checked after feeding: on_message_begin resets the count, so a chunk holding a whole head
        # and its body is never counted as head; only a head that keeps coming grows past the bound.
        if self._in_head and self._head_bytes > self.max_head_bytes and not self.transport.is_closing():
            self._refuse_head()

    def _refuse_head(self) -> None:
        self._head_refused = True
        message = f"the request line and headers are larger than {self.max_head_bytes} bytes"
        log.warning("request head too large: refused", extra={"limit_bytes": self.max_head_bytes})
        body = orjson.dumps(
            {
                "status": 431,
                "error": "headers_too_large",
                "message": message,
                "errors": [{"field": "(headers)", "rule": "max_bytes", "message": message}],
            }
        )
        head = (
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: application/json\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n"
            b"connection: close\r\n\r\n"
        )
        self.transport.write(head + body)
        self.transport.close()


def bounded_http_protocol(max_head_bytes: int) -> type[BoundedHttpToolsProtocol]:
    """The protocol class to give uvicorn (`http=`), with this bound."""
    return type("BoundedHttpToolsProtocol", (BoundedHttpToolsProtocol,), {"max_head_bytes": max_head_bytes})
