"""The Sender contract and the shared request mechanics (headers, signing, error mapping)."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Protocol

from connectors.classify import AttemptResult, classify_exception, classify_response
from connectors.http_client import header_block
from connectors.http_pool import HttpResponse, PooledClient
from connectors.signing import SIGNATURE_HEADER, sign
from hub.delivery import DeliveryRecord
from hub.masking import mask_sent_values, mask_text
from hub.topology import Auth

IDEMPOTENCY_HEADER = "Idempotency-Key"
EVENT_ID_HEADER = "X-Event-ID"


class Sender(Protocol):
    destination: str

    async def send(self, record: DeliveryRecord, timeout_s: float, attempt: int) -> AttemptResult: ...


class BaseHttpSender:
    """Builds the request, sends it on the destination's keep-alive pool, classifies the answer."""

    def __init__(
        self,
        destination: str,
        client: PooledClient,
        *,
        base_url: str,
        auth: Auth | None = None,
        token: str | None = None,
        signing_secrets: list[str] | None = None,
    ):
        self.destination = destination
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.signing_secrets = signing_secrets or []
        self._static_headers = {"Content-Type": "application/json", "User-Agent": "carinho-connectors/1"}
        self._static_block: str | None = None  # rendered on first use (subclasses add static headers)
        self._native = client.native
        if auth is not None and token:
            self._static_headers[auth.header] = f"{auth.scheme} {token}" if auth.scheme else token

    def url_for(self, record: DeliveryRecord) -> str:
        return self.base_url + record.path

    def method_for(self, record: DeliveryRecord) -> str:
        return record.method

    def body_for(self, record: DeliveryRecord) -> bytes:
        raise NotImplementedError

    def headers_for(self, record: DeliveryRecord, body: bytes, attempt: int) -> dict[str, str]:
        headers = dict(self._static_headers)
        headers[IDEMPOTENCY_HEADER] = str(record.delivery_id)
        headers[EVENT_ID_HEADER] = str(record.event_id)
        headers["X-Delivery-Attempt"] = str(attempt)
        if self.signing_secrets:
            headers[SIGNATURE_HEADER] = sign(body, self.signing_secrets, int(time.time()))
        return headers

    def header_lines(self, record: DeliveryRecord, body: bytes, attempt: int) -> str:
        """headers_for() rendered for the native client: the static part is rendered and checked once;
        the per-request values are UUIDs, an int and a hex signature (nothing to escape)."""
        static = self._static_block
        if static is None:
            static = self._static_block = header_block(self._static_headers)
        lines = (
            f"{static}{IDEMPOTENCY_HEADER}: {record.delivery_id}\r\n{EVENT_ID_HEADER}: {record.event_id}\r\n"
            f"X-Delivery-Attempt: {attempt}\r\n"
        )
        if self.signing_secrets:
            lines += f"{SIGNATURE_HEADER}: {sign(body, self.signing_secrets, int(time.time()))}\r\n"
        return lines

    def classify(self, response: HttpResponse) -> AttemptResult:
        return classify_response(response.status_code, response.headers, response.content)

    async def send(self, record: DeliveryRecord, timeout_s: float, attempt: int) -> AttemptResult:
        result = await self._send(record, timeout_s, attempt)
        if result.ok or not result.error_message:
            return result
        # Destinations echo what they were sent ("contact Maria Souza already exists"): the names and
        # free text of this payload are masked out of the error text, which goes to the dead-letter
        # headers, the deliveries topic, `carinho dlq show` and /ops (phones, e-mails and CPFs are
        # masked by pattern already; a name has no pattern).
        return replace(result, error_message=mask_sent_values(result.error_message, record.payload))

    async def _send(self, record: DeliveryRecord, timeout_s: float, attempt: int) -> AttemptResult:
        try:
            body = self.body_for(record)
        except (KeyError, TypeError, ValueError) as exc:
            # The record cannot become a request at all: retrying cannot help.
            return AttemptResult("permanent", None, "InvalidPayload", mask_text(str(exc))[:200])
        try:
            if self._native is not None:  # the default transport: no header dict, one coroutine less
                response: HttpResponse = await self._native.request_raw(
                    self.method_for(record),
                    self.url_for(record),
                    self.header_lines(record, body, attempt),
                    body,
                    timeout_s,
                )
            else:
                response = await self.client.request(
                    self.method_for(record),
                    self.url_for(record),
                    content=body,
                    headers=self.headers_for(record, body, attempt),
                    timeout=timeout_s,
                )
        except Exception as exc:
            return classify_exception(exc)
        return self.classify(response)
