"""WhatsApp through Z-API send-text:

    POST {base}/instances/{instance}/token/{token}/send-text   Client-Token: <account token>
    {"phone": "5511999999999", "message": "..."}  ->  200 {"zaapId": ..., "messageId": ..., "id": ...}

Z-API reports errors as JSON {"error": "...", "message": "..."} — sometimes with a 2xx status. An
instance whose phone is disconnected ("You are not connected.", "You need to restore the session.")
is a transient outage of the whole channel (it counts against the breaker and feeds the SMS fallback);
a bad phone number or payload is permanent.
"""

from __future__ import annotations

import orjson

from connectors.classify import AttemptResult, HeaderLookup, classify_response, error_text_from_body
from connectors.destinations.base import BaseHttpSender
from connectors.destinations.sms import digits_only, message_text
from connectors.http_pool import HttpResponse, PooledClient
from hub.delivery import DeliveryRecord

_DISCONNECTED = (
    "not connected",
    "restore the session",
    "disconnected",
    "qrcode",
    "qr code",
    "instance not found",
    "instance is not",
    "timeout",
)


def is_channel_down(error_text: str) -> bool:
    lowered = error_text.lower()
    return any(marker in lowered for marker in _DISCONNECTED)


def classify_zapi(status: int, headers: HeaderLookup, body: bytes) -> AttemptResult:
    base = classify_response(status, headers, body)
    error_text = error_text_from_body(body) if body else None
    has_error = False
    if body and 200 <= status < 300:
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            parsed = None
        has_error = isinstance(parsed, dict) and bool(parsed.get("error")) and not parsed.get("messageId")
    if base.ok and not has_error:
        return base
    text = error_text or f"HTTP {status}"
    if is_channel_down(text):
        return AttemptResult("transient", status, "ZapiDisconnected", text, base.retry_after_s)
    if base.ok:  # 2xx with an error body: Z-API refused this message
        return AttemptResult("permanent", status, "ZapiError", text)
    return AttemptResult(base.kind, status, "ZapiError", text, base.retry_after_s)


class ZapiSender(BaseHttpSender):
    def __init__(
        self, destination: str, client: PooledClient, *, base_url: str, instance: str, token: str, client_token: str
    ):
        super().__init__(destination, client, base_url=base_url)
        self._url = f"{self.base_url}/instances/{instance}/token/{token}/send-text"
        self._static_headers["Client-Token"] = client_token

    def url_for(self, record: DeliveryRecord) -> str:
        return self._url

    def method_for(self, record: DeliveryRecord) -> str:
        return "POST"

    def body_for(self, record: DeliveryRecord) -> bytes:
        return orjson.dumps(
            {"phone": digits_only(record.payload.get("phone")), "message": message_text(record.payload)}
        )

    def classify(self, response: HttpResponse) -> AttemptResult:
        return classify_zapi(response.status_code, response.headers, response.content)
