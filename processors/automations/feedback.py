"""Feedback request: a completed service triggers a WhatsApp message `delay` later (topics.yaml).

The wait lives in Kafka: the router writes a `ScheduledMessage` to the scheduled topic; the scheduler
agent keeps pending messages in a changelog-backed table and releases each to deliver.<destination>
when due (processors/app.py). One feedback per service: the delivery id derives from the servico id,
so a re-sent completion (webhook retry, daily sync) schedules the same message, not a second one.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

import orjson
from pydantic import BaseModel, ConfigDict

from hub.clock import parse_time_of_day
from hub.delivery import DeliveryRecord, MessageType, derive_delivery_id
from hub.envelope import EventEnvelope
from hub.topology import FeedbackRequest
from processors.automations.lead_auto_reply import first_name, phone_of, render, whatsapp_message

MESSAGE_TYPE: MessageType = "feedback_request"


class ScheduledMessage(BaseModel):
    """Value on the scheduled topic (key = delivery_id)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    kind: Literal["delayed_delivery"] = "delayed_delivery"
    due_at: datetime
    delivery: DeliveryRecord

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json", exclude_none=True))

    @classmethod
    def from_json(cls, raw: bytes | str) -> ScheduledMessage:
        return cls.model_validate_json(raw)


def _completed_at(envelope: EventEnvelope) -> datetime:
    raw = envelope.data.get("completed_at")
    if isinstance(raw, str):
        try:
            parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            return envelope.occurred_at
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=envelope.occurred_at.tzinfo)
    return envelope.occurred_at


def feedback_request(
    envelope: EventEnvelope, config: FeedbackRequest, *, entity_key: str, now: datetime
) -> ScheduledMessage | None:
    """The delayed message for a completed service, or None (other event, or no phone to write to)."""
    if envelope.type != config.event_type:
        return None
    phone = phone_of(envelope)
    if phone is None:
        return None
    # Never earlier than now: a completion that arrives late (the daily sync at 02:00 brings the day
    # before's) is due at once, and then the quiet hours apply to *now*, not to the past due time.
    due_at = outside_quiet_hours(max(_completed_at(envelope) + config.delay, now), config)
    servico = envelope.data.get("servico_id") or envelope.idempotency_key
    message = render(config.template, {"first_name": first_name(envelope.data.get("client_name"))})
    delivery = whatsapp_message(
        envelope,
        destination=config.destination,
        entity_key=entity_key,
        phone=phone,
        now=now,
        delivery_id=derive_delivery_id(f"servico:{envelope.source}:{servico}", config.destination, MESSAGE_TYPE),
        message=message,
        message_type=MESSAGE_TYPE,
        not_before=due_at,
    )
    return ScheduledMessage(due_at=due_at, delivery=delivery)


def outside_quiet_hours(moment: datetime, config: FeedbackRequest) -> datetime:
    """`moment`, or the end of the quiet hours it falls in (wall clock in the configured zone)."""
    quiet = config.quiet_hours
    if quiet is None:
        return moment
    zone = config.zone()
    local = moment.astimezone(zone)
    start, end = parse_time_of_day(quiet.start), parse_time_of_day(quiet.end)
    now = local.time().replace(tzinfo=None)
    inside = start <= now < end if start <= end else (now >= start or now < end)
    if not inside:
        return moment
    release = datetime.combine(local.date(), end)
    if now >= end:  # in the evening part of a window that wraps midnight: release tomorrow morning
        release += timedelta(days=1)
    return release.replace(tzinfo=zone).astimezone(UTC)


def quiet_until(now: datetime, config: FeedbackRequest) -> datetime | None:
    """The end of the quiet hours when `now` is inside them, else None: the scheduler holds due
    feedback requests until then (a worker that was down at the due time must not send at night)."""
    release = outside_quiet_hours(now, config)
    return release if release > now else None
