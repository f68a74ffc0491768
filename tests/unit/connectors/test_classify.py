from __future__ import annotations

import httpx
import pytest

from connectors.classify import classify_exception, classify_response, kind_for_status
from connectors.destinations.zapi import classify_zapi


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (200, "success"),
        (201, "success"),
        (204, "success"),
        (408, "transient"),
        (429, "transient"),
        (500, "transient"),
        (502, "transient"),
        (503, "transient"),
        (504, "transient"),
        (400, "permanent"),
        (401, "permanent"),
        (403, "permanent"),
        (404, "permanent"),
        (409, "permanent"),
        (422, "permanent"),
        (301, "transient"),
    ],
)
def test_status_classes(status: int, kind: str) -> None:
    assert kind_for_status(status) == kind


def test_retry_after_only_read_on_429_and_503() -> None:
    assert classify_response(429, {"retry-after": "7"}, b"").retry_after_s == 7.0
    assert classify_response(503, {"retry-after": "3"}, b"").retry_after_s == 3.0
    assert classify_response(500, {"retry-after": "3"}, b"").retry_after_s is None


def test_error_body_is_summarised_and_masked() -> None:
    result = classify_response(400, {}, b'{"error": "invalid phone", "message": "phone 11987654321 rejected"}')
    assert result.kind == "permanent" and result.reason == "http_400"
    assert result.error_message is not None
    assert "11987654321" not in result.error_message and "invalid phone" in result.error_message


def test_permanent_failures_do_not_count_against_the_breaker() -> None:
    assert not classify_response(400, {}, b"").counts_against_breaker
    assert classify_response(500, {}, b"").counts_against_breaker


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.ConnectTimeout("slow"),
        httpx.RemoteProtocolError("closed"),
        ConnectionResetError("reset"),
    ],
)
def test_network_errors_are_transient(exc: Exception) -> None:
    result = classify_exception(exc)
    assert result.kind == "transient" and result.status is None and result.error_class == type(exc).__name__


def test_unexpected_exceptions_are_permanent() -> None:
    assert classify_exception(httpx.InvalidURL("bad")).kind == "permanent"


def test_zapi_success_and_errors() -> None:
    assert classify_zapi(200, {}, b'{"zaapId": "x", "messageId": "y", "id": "y"}').ok
    disconnected = classify_zapi(400, {}, b'{"error": "You are not connected."}')
    assert disconnected.kind == "transient" and disconnected.error_class == "ZapiDisconnected"
    restore = classify_zapi(200, {}, b'{"error": "You need to restore the session."}')
    assert restore.kind == "transient"
    refused = classify_zapi(200, {}, b'{"error": "invalid phone", "message": "bad number"}')
    assert refused.kind == "permanent"
    # A 2xx that carried an error is not reported as "http_200" (reads as a success in a DLQ listing).
    assert (restore.reason, refused.reason) == ("zapi_disconnected", "zapi_error")
    assert disconnected.reason == "http_400"
    assert classify_zapi(400, {}, b'{"error": "phone and message are required"}').kind == "permanent"
    assert classify_zapi(500, {}, b"oops").kind == "transient"
