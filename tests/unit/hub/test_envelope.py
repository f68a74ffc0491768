from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from hub.envelope import EventEnvelope, Metadata, Utm, derive_event_id, envelope_json_schema, new_envelope

ROOT = Path(__file__).resolve().parents[3]


def test_event_id_is_deterministic_per_source_and_key() -> None:
    assert derive_event_id("site", "k-1") == derive_event_id("site", "k-1")
    assert derive_event_id("site", "k-1") != derive_event_id("site", "k-2")
    assert derive_event_id("site", "k-1") != derive_event_id("crm", "k-1")
    assert derive_event_id("site", "k-1").version == 5


def test_event_id_str_is_cached_and_not_a_field() -> None:
    env = new_envelope(type="lead.created", source="site", priority=2, idempotency_key="k1", data={})
    twin = EventEnvelope.from_json(env.to_json())
    assert env.event_id_str == str(env.event_id) and env.event_id_str is env.event_id_str
    assert env == twin and "event_id_str" not in env.model_dump()  # equality and dumps ignore the cache
    assert json.loads(env.to_json())["event_id"] == str(env.event_id)


def test_round_trip_key_and_headers() -> None:
    env = new_envelope(
        type="lead.created",
        source="site",
        priority=2,
        idempotency_key="form-9",
        data={"name": "Ana", "phone": "11987654321"},
        metadata=Metadata(request_id="r-1", utm=Utm(source="google", campaign="inverno")),
    )
    again = EventEnvelope.from_json(env.to_json())
    assert again == env
    assert env.kafka_key() == b"form-9"
    headers = dict(env.kafka_headers())
    assert headers["event_id"] == str(env.event_id).encode()
    assert headers["event_type"] == b"lead.created"
    assert headers["priority"] == b"2"
    assert headers["request_id"] == b"r-1"
    body = json.loads(env.to_json())
    assert body["metadata"]["utm"] == {"source": "google", "campaign": "inverno"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("priority", 0),
        ("priority", 6),
        ("type", "Lead Created"),
        ("idempotency_key", ""),
        ("idempotency_key", "has space"),
        ("source", "Site!"),
    ],
)
def test_invalid_envelopes_are_refused(field: str, value: object) -> None:
    base = new_envelope(type="lead.created", source="site", priority=2, idempotency_key="k", data={}).model_dump()
    base[field] = value
    with pytest.raises(ValidationError) as info:
        EventEnvelope.model_validate(base)
    assert info.value.errors()[0]["loc"][0] == field


def test_unknown_fields_are_refused() -> None:
    base = new_envelope(type="lead.created", source="site", priority=2, idempotency_key="k", data={}).model_dump()
    with pytest.raises(ValidationError):
        EventEnvelope.model_validate({**base, "extra": 1})


def test_published_json_schema_is_current() -> None:
    published = json.loads((ROOT / "docs" / "envelope.schema.json").read_text())
    assert published == envelope_json_schema(), "run: .venv/bin/python -m hub.schema_export"


def test_times_are_utc() -> None:
    env = new_envelope(
        type="a.b", source="s", priority=1, idempotency_key="k", data={}, occurred_at=datetime(2026, 1, 1, tzinfo=UTC)
    )
    assert env.received_at.tzinfo is not None
    assert isinstance(env.event_id, uuid.UUID)


def test_fast_serializer_matches_pydantic() -> None:
    env = new_envelope(
        type="lead.created",
        source="site",
        priority=2,
        idempotency_key="k",
        data={"name": "Ana", "n": [1, 2.5, None, {"x": True}]},
        metadata=Metadata(request_id="r", utm=Utm(source="g"), labels={"a": "b"}),
    )
    assert json.loads(env.to_json()) == json.loads(env.model_dump_json(exclude_none=True))
    bare = new_envelope(type="a.b", source="s", priority=1, idempotency_key="k", data={})
    assert json.loads(bare.to_json()) == json.loads(bare.model_dump_json(exclude_none=True))


@pytest.mark.parametrize(("source", "key"), [("site", "k-1"), ("crm", "ção/ü-ñ"), ("x", "a" * 200)])
def test_fast_event_id_equals_uuid5(source: str, key: str) -> None:
    from hub.envelope import derive_event_id_str

    assert derive_event_id_str(source, key) == str(derive_event_id(source, key))


@pytest.mark.parametrize(
    "raw",
    [
        # as the ingress writes it
        new_envelope(type="a.b", source="s", priority=1, idempotency_key="k", data={}).to_json(),
        # as another producer may: offsets other than UTC, naive and whole-second times, upper-case
        # ids, metadata and schema_version left out, utm partly set, nested data
        json.dumps(
            {
                "event_id": str(uuid.uuid4()).upper(),
                "type": "lead.created",
                "source": "site",
                "priority": 3,
                "idempotency_key": "k-9",
                "occurred_at": "2026-03-01T10:00:00-03:00",
                "received_at": "2026-03-01T13:00:00.000123",
                "data": {"name": "Ana", "n": [1, 2.5, None, {"x": True}], "s": "ção"},
            }
        ).encode(),
        json.dumps(
            {
                "schema_version": 1,
                "event_id": str(uuid.uuid4()),
                "type": "lead.created",
                "source": "site",
                "priority": 5,
                "idempotency_key": "k",
                "occurred_at": "2026-03-01T10:00:00Z",
                "received_at": "2026-03-01T10:00:00.5+00:00",
                "data": {},
                "metadata": {"request_id": "r", "utm": {"campaign": "c", "medium": None}, "labels": {"a": "b"}},
            }
        ).encode(),
    ],
)
def test_document_is_the_envelope_as_its_json_reads_back(raw: bytes) -> None:
    env = EventEnvelope.from_json(raw)
    document = env.to_document()
    assert document == json.loads(env.to_json())
    assert document["data"] is env.data  # read by the transforms, not copied
    document["metadata"]["labels"]["x"] = "y"  # the rest is the document's own
    assert "x" not in env.metadata.labels
