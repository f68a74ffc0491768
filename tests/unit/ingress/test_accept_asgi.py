"""The single-event route's ASGI-level helpers: the same answers as Starlette's Request would give."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect

from ingress.accept import check_body_headers, key_from_headers, receive_body
from ingress.errors import ApiError
from ingress.fast_events_route import header_map


def channel(*messages: dict[str, Any]) -> Any:
    queue = list(messages)

    async def receive() -> dict[str, Any]:
        return queue.pop(0)

    return receive


def test_header_map_keeps_the_first_of_repeated_headers_like_starlette() -> None:
    raw = [(b"x-api-key", b"first"), (b"content-type", b"application/json"), (b"x-api-key", b"second")]
    mapped = header_map({"headers": raw})
    assert mapped[b"x-api-key"] == b"first" == Headers(raw=raw).get("x-api-key", "").encode()
    assert mapped[b"content-type"] == b"application/json"
    assert header_map({"headers": iter(raw)}) == mapped  # any iterable of pairs, as ASGI allows
    assert header_map({"headers": tuple([k, v] for k, v in raw)}) == mapped


@pytest.mark.parametrize(
    ("api_key", "authorization", "expected"),
    [
        (" ck_abc ", None, "ck_abc"),
        (None, "Bearer ck_abc", "ck_abc"),
        (None, "bearer  ck_abc ", "ck_abc"),
        ("", "Bearer ck_abc", "ck_abc"),
        (None, "Basic dXNlcg==", None),
        (None, "Bearer ", None),
        (None, None, None),
    ],
)
def test_key_from_headers(api_key: str | None, authorization: str | None, expected: str | None) -> None:
    assert key_from_headers(api_key, authorization) == expected


async def test_receive_body_joins_chunks() -> None:
    receive = channel(
        {"type": "http.request", "body": b'{"a":', "more_body": True},
        {"type": "http.request", "body": b"1}", "more_body": False},
    )
    assert await receive_body(receive, 100) == b'{"a":1}'


async def test_receive_body_refuses_past_the_limit_with_413() -> None:
    receive = channel(
        {"type": "http.request", "body": b"x" * 60, "more_body": True},
        {"type": "http.request", "body": b"x" * 60, "more_body": False},
    )
    with pytest.raises(ApiError) as refused:
        await receive_body(receive, 100)
    assert refused.value.status == 413


async def test_receive_body_reports_a_client_that_left() -> None:
    with pytest.raises(ClientDisconnect):
        await receive_body(channel({"type": "http.disconnect"}), 100)


@pytest.mark.parametrize(
    ("content_type", "length", "status"),
    [
        ("text/plain", None, 415),
        ("", None, 415),
        ("application/json", "2000", 413),
        ("application/json; charset=utf-8", "10", None),
        ("application/cloudevents+json", None, None),
    ],
)
def test_check_body_headers(content_type: str, length: str | None, status: int | None) -> None:
    if status is None:
        check_body_headers(content_type, length, 1024)
        return
    with pytest.raises(ApiError) as refused:
        check_body_headers(content_type, length, 1024)
    assert refused.value.status == status
