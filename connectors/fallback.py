"""WhatsApp -> SMS fallback (topics.yaml destinations.whatsapp.fallback).

When the WhatsApp breaker is open, or a message has spent its WhatsApp retries, a message of a listed
type becomes a new DeliveryRecord on deliver.sms. Its delivery_id is derived with variant
"sms-fallback", so re-running the fallback (after a crash before the commit) yields the same SMS
Idempotency-Key and the SMS provider deduplicates it."""

from __future__ import annotations

from datetime import UTC, datetime

from hub.delivery import DeliveryRecord, derive_delivery_id
from hub.topology import Fallback, FallbackCondition

FALLBACK_VARIANT = "sms-fallback"


def fallback_applies(rule: Fallback | None, record: DeliveryRecord, condition: FallbackCondition) -> bool:
    return (
        rule is not None
        and condition in rule.when
        and record.message_type is not None
        and record.message_type in rule.message_types
    )


def fallback_record(
    record: DeliveryRecord, rule: Fallback, sms_path: str, now: datetime | None = None
) -> DeliveryRecord:
    return DeliveryRecord(
        delivery_id=derive_delivery_id(record.event_id, rule.destination, FALLBACK_VARIANT),
        event_id=record.event_id,
        event_type=record.event_type,
        source=record.source,
        destination=rule.destination,
        priority=record.priority,
        entity_key=record.entity_key,
        method="POST",
        path=sms_path,
        payload={"phone": record.payload.get("phone"), "message": record.payload.get("message")},
        message_type=record.message_type,
        created_at=now or datetime.now(UTC),
    )
