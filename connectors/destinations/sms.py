"""Generic HTTP SMS provider: POST base_url + record.path with {"to", "message", "reference"}.

The record's payload is the same shape as a WhatsApp message ({"phone", "message"}), so the WhatsApp
fallback can hand a message over unchanged."""

from __future__ import annotations

import orjson

from connectors.destinations.base import BaseHttpSender
from hub.delivery import DeliveryRecord
from hub.phones import international_digits


def digits_only(phone: object) -> str:
    """The number as the gateways want it: digits, the country code first (hub.phones: a Brazilian
    DDD + number typed without it gets 55)."""
    if not isinstance(phone, str | int):
        raise TypeError("phone must be a string")
    digits = international_digits(str(phone))
    if not 8 <= len(digits) <= 15:
        raise ValueError("phone must have 8 to 15 digits")
    return digits


def message_text(payload: dict[str, object]) -> str:
    text = payload.get("message")
    if not isinstance(text, str) or not text.strip():
        raise ValueError("message must be a non-empty string")
    return text


class SmsSender(BaseHttpSender):
    def body_for(self, record: DeliveryRecord) -> bytes:
        return orjson.dumps(
            {
                "to": digits_only(record.payload.get("phone")),
                "message": message_text(record.payload),
                "reference": str(record.delivery_id),
            }
        )
