"""Generic HTTP SMS provider: POST base_url + record.path with {"to", "message", "reference"}.

The record's payload is the same shape as a WhatsApp message ({"phone", "message"}), so the WhatsApp
fallback can hand a message over unchanged."""

from __future__ import annotations

import re

import orjson

from connectors.destinations.base import BaseHttpSender
from hub.delivery import DeliveryRecord

_NOT_DIGITS = re.compile(r"\D")


def digits_only(phone: object) -> str:
    if not isinstance(phone, str | int):
        raise TypeError("phone must be a string")
    digits = _NOT_DIGITS.sub("", str(phone))
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
