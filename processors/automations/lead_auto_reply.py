"""Lead auto-reply: every new lead gets a WhatsApp message, personalized by where it came from.

Template choice: "campaign" when the lead carries metadata.utm.campaign, else the lead's data.origin
("site", "whatsapp", ...) when topics.yaml has a template for it, else "default".
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from hub.delivery import DeliveryRecord, derive_delivery_id
from hub.envelope import EventEnvelope
from hub.topology import LeadAutoReply

MESSAGE_TYPE = "lead_auto_reply"
WHATSAPP_PATH = "/send-text"


class _SafeFormat(dict[str, str]):
    """str.format_map that leaves unknown placeholders empty instead of raising."""

    def __missing__(self, key: str) -> str:
        return ""


def first_name(full_name: object) -> str:
    """'maria da silva' -> 'Maria'; empty or missing -> '' (templates still read well)."""
    if not isinstance(full_name, str):
        return ""
    parts = full_name.strip().split()
    return parts[0][:1].upper() + parts[0][1:] if parts else ""


def render(template: str, values: Mapping[str, str]) -> str:
    text = template.format_map(_SafeFormat(values))
    # "Olá, !" reads badly when there is no name: drop the dangling separator.
    return text.replace(", !", "!").replace(" ,", ",")


def template_key(envelope: EventEnvelope, templates: Mapping[str, str]) -> str:
    utm = envelope.metadata.utm
    if utm is not None and utm.campaign and "campaign" in templates:
        return "campaign"
    origin = envelope.data.get("origin")
    if isinstance(origin, str) and origin in templates and origin not in {"campaign", "default"}:
        return origin
    return "default"


def phone_of(envelope: EventEnvelope) -> str | None:
    """The number to write to, or None: no message without one."""
    phone = envelope.data.get("phone")
    return phone if isinstance(phone, str) and phone.strip() else None


def whatsapp_message(
    envelope: EventEnvelope,
    *,
    destination: str,
    delivery_id: Any,
    entity_key: str,
    phone: str,
    message: str,
    message_type: str,
    now: datetime,
    not_before: datetime | None = None,
) -> DeliveryRecord:
    """A WhatsApp send-text delivery about `envelope` (lead auto-reply, feedback request)."""
    return DeliveryRecord(
        delivery_id=delivery_id,
        event_id=envelope.event_id,
        event_type=envelope.type,
        source=envelope.source,
        destination=destination,
        priority=envelope.priority,
        entity_key=entity_key,
        path=WHATSAPP_PATH,
        payload={"phone": phone, "message": message},
        message_type=message_type,
        created_at=now,
        not_before=not_before,
    )


def lead_auto_reply(
    envelope: EventEnvelope, config: LeadAutoReply, *, entity_key: str, now: datetime
) -> DeliveryRecord | None:
    """The WhatsApp delivery for a new lead, or None when the event is not a lead or has no phone."""
    if envelope.type != config.event_type:
        return None
    phone = phone_of(envelope)
    if phone is None:
        return None
    key = template_key(envelope, config.templates)
    utm = envelope.metadata.utm
    values: dict[str, Any] = {
        "first_name": first_name(envelope.data.get("name")),
        "utm_campaign": (utm.campaign if utm and utm.campaign else ""),
    }
    return whatsapp_message(
        envelope,
        destination=config.destination,
        entity_key=entity_key,
        phone=phone,
        now=now,
        delivery_id=derive_delivery_id(envelope.event_id_str, config.destination, MESSAGE_TYPE),
        message=render(config.templates[key], values),
        message_type=MESSAGE_TYPE,
    )
