"""Lead auto-reply: every new lead gets a WhatsApp message, personalized by where it came from.

Template choice: "campaign" when the lead's metadata.utm.campaign is one topics.yaml lists under
`campaigns` (its display name fills {utm_campaign}), else the lead's data.origin ("site", "whatsapp",
...; any case) when topics.yaml has a template for it, else "default".

Why a list: UTM values come from the landing page's URL, which any visitor can write, and the form
lets them choose the phone too. Pasting the campaign as sent let anyone make the company's WhatsApp
send their text ("...pague a taxa via PIX para...") to any number.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from hub.delivery import DeliveryRecord, MessageType, derive_delivery_id
from hub.envelope import EventEnvelope
from hub.phones import international_digits
from hub.topology import LeadAutoReply

MESSAGE_TYPE: MessageType = "lead_auto_reply"
WHATSAPP_PATH = "/send-text"


class _SafeFormat(dict[str, str]):
    """str.format_map that leaves unknown placeholders empty instead of raising."""

    def __missing__(self, key: str) -> str:
        return ""


# Forms of address people type before their name ("Sra. Ana", "Seu Zé"): the greeting takes the name.
_TITLES = frozenset({"sr", "sra", "srta", "dr", "dra", "seu", "dona", "d", "prof", "profa"})


def first_name(full_name: object) -> str:
    """'maria da silva' -> 'Maria', 'MARIA' -> 'Maria', 'Sra. Ana Lima' -> 'Ana'; a first word without
    letters (an emoji), empty or missing -> '' (templates still read well)."""
    if not isinstance(full_name, str):
        return ""
    words = [w for w in full_name.split() if w.rstrip(".").lower() not in _TITLES] or full_name.split()
    word = words[0] if words else ""
    if not any(c.isalpha() for c in word):
        return ""
    return word.capitalize() if word.isupper() or word.islower() else word[:1].upper() + word[1:]


def render(template: str, values: Mapping[str, str]) -> str:
    text = template.format_map(_SafeFormat(values))
    # "Olá, !" reads badly when there is no name: drop the dangling separator.
    return text.replace(", !", "!").replace(" ,", ",")


_RESERVED = frozenset({"campaign", "default"})  # template names that are not origins


def campaign_name(envelope: EventEnvelope, campaigns: Mapping[str, str]) -> str | None:
    """The display name of the lead's campaign when topics.yaml knows it (slugs compared trimmed,
    in lower case), else None: an unknown campaign's text never reaches a message."""
    utm = envelope.metadata.utm
    if utm is None or not utm.campaign:
        return None
    return campaigns.get(utm.campaign.strip().lower())


def template_key(envelope: EventEnvelope, templates: Mapping[str, str], campaigns: Mapping[str, str]) -> str:
    if "campaign" in templates and campaign_name(envelope, campaigns) is not None:
        return "campaign"
    origin = envelope.data.get("origin")
    if isinstance(origin, str) and (origin := origin.strip().lower()) in templates and origin not in _RESERVED:
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
    message_type: MessageType,
    now: datetime,
    not_before: datetime | None = None,
) -> DeliveryRecord:
    """A WhatsApp send-text delivery about `envelope` (lead auto-reply, feedback request)."""
    return DeliveryRecord.from_router(
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
    key = template_key(envelope, config.templates, config.campaigns)
    values: dict[str, Any] = {
        "first_name": first_name(envelope.data.get("name")),
        "utm_campaign": campaign_name(envelope, config.campaigns) or "",
    }
    if config.once_per_phone_per_day:
        # One delivery id per phone and day, on one partition (keyed by the phone): the connectors
        # send a delivery id once and skip it after (`duplicate_dropped`, reason already_delivered).
        digits = international_digits(phone)
        day = envelope.received_at.astimezone(config.zone()).date().isoformat()
        delivery_id = derive_delivery_id(f"phone:{digits}/{day}", config.destination, MESSAGE_TYPE)
        entity_key = f"phone:{digits}"
    else:
        delivery_id = derive_delivery_id(envelope.event_id_str, config.destination, MESSAGE_TYPE)
    return whatsapp_message(
        envelope,
        destination=config.destination,
        entity_key=entity_key,
        phone=phone,
        now=now,
        delivery_id=delivery_id,
        message=render(config.templates[key], values),
        message_type=MESSAGE_TYPE,
    )
