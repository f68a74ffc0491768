"""hub/delivery.py: the router's unvalidated constructor builds what validation would."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from hub.delivery import DeliveryRecord, derive_delivery_id

FIELDS: dict[str, Any] = {
    "delivery_id": derive_delivery_id("6f1c2b7e-4a55-5b8e-9d8e-63617269686f", "crm"),
    "event_id": uuid.uuid4(),
    "event_type": "lead.created",
    "source": "site",
    "destination": "crm",
    "priority": 2,
    "entity_key": "lead:1",
    "method": "PUT",
    "path": "/leads",
    "payload": {"nome": "Ana", "n": [1, {"x": None}]},
    "created_at": datetime(2026, 3, 1, 10, tzinfo=UTC),
}


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"message_type": "feedback_request", "not_before": datetime(2026, 3, 1, 12, tzinfo=UTC)},
        {"created_at": datetime(2026, 3, 1, 10, 0, 0, 123, tzinfo=UTC) - timedelta(hours=3)},
    ],
)
def test_from_router_equals_the_validated_record(extra: dict[str, Any]) -> None:
    validated = DeliveryRecord(**{**FIELDS, **extra})
    built = DeliveryRecord.from_router(**{**FIELDS, **extra})
    assert built == validated
    assert built.to_json() == validated.to_json()
    assert built.model_dump(mode="json") == validated.model_dump(mode="json")
    assert DeliveryRecord.from_json(built.to_json()) == validated
    assert built.kafka_headers() == validated.kafka_headers()


def test_from_router_records_stay_frozen_and_copy_like_validated_ones() -> None:
    built = DeliveryRecord.from_router(**FIELDS)
    with pytest.raises(ValidationError):
        built.priority = 1  # type: ignore[misc]
    copy = built.model_copy(update={"priority": 1})
    assert (copy.priority, built.priority) == (1, 2)
    for record in (built, DeliveryRecord.from_router(**FIELDS, message_type="generic")):
        assert record.model_fields_set == DeliveryRecord.from_json(record.to_json()).model_fields_set
