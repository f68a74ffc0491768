"""The hot-path serializers equal the pydantic models' JSON; the output records of one routed event."""

from __future__ import annotations

import decimal
import uuid
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest

from hub.delivery import DELIVERY_ID_NAMESPACE, DeliveryRecord, derive_delivery_id
from hub.envelope import new_envelope
from hub.topology import Topology, load_topology
from hub.trail import TrailHop
from processors.automations.feedback import ScheduledMessage
from processors.output import OutputBuilder, hop_json, scheduled_json
from processors.routing import Router
from tests.kafka_support import ROOT

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TIMES = [
    datetime(2026, 1, 1, tzinfo=UTC),
    datetime(2026, 1, 1, 1, 2, 3, 4500, tzinfo=timezone(timedelta(0))),
    datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=-3))),
    datetime(2026, 1, 1, 8, 0),
]
PAYLOADS = [
    {"a": 1.5, "b": [1, None, {"x": "ç"}], "n": None, "f": 1e16, "g": 0.1, "t": True, "u": uuid.uuid4()},
    {"inf": float("inf"), "nan": float("nan")},
    {"dec": decimal.Decimal("1.5"), "tuple": (1, 2)},
    {},
]


@pytest.fixture(scope="module")
def topology() -> Topology:
    return load_topology(ROOT / "topics.yaml")


def test_derive_delivery_id_is_uuid5() -> None:
    for event_id in (uuid.uuid4(), "servico:operacao:S1"):
        for variant in ("", "lead_auto_reply"):
            expected = uuid.uuid5(DELIVERY_ID_NAMESPACE, f"{event_id}\x1fcrm\x1f{variant}")
            got = derive_delivery_id(event_id, "crm", variant)
            assert got == expected and str(got) == str(expected) and hash(got) == hash(expected)
            assert got.version == 5 and got.variant == uuid.RFC_4122


@pytest.mark.parametrize("at", TIMES)
@pytest.mark.parametrize("payload", PAYLOADS)
def test_fast_json_equals_pydantic(at: datetime, payload: dict[str, object]) -> None:
    delivery = DeliveryRecord(
        delivery_id=uuid.uuid4(),
        event_id=uuid.uuid4(),
        event_type="a.b",
        source="s",
        destination="d",
        priority=1,
        entity_key="k",
        path="/x",
        payload=payload,
        created_at=at,
        not_before=at,
        message_type="generic",
    )
    assert delivery.to_json() == orjson.dumps(delivery.model_dump(mode="json", exclude_none=True))
    plain = delivery.model_copy(update={"not_before": None, "message_type": None})
    assert plain.to_json() == orjson.dumps(plain.model_dump(mode="json", exclude_none=True))
    hop = TrailHop(
        event_id=uuid.uuid4(),
        hop="attempt",
        at=at,
        service="x",
        latency_ms=12.25,
        status=200,
        attempt=1,
        detail=payload,
    )
    assert hop.to_json() == orjson.dumps(hop.model_dump(mode="json", exclude_none=True))
    scheduled = ScheduledMessage(due_at=at, delivery=delivery)
    assert scheduled_json(scheduled) == scheduled.to_json()


def test_hop_json_equals_trail_hop() -> None:
    event_id, delivery_id = uuid.uuid4(), uuid.uuid4()
    for fields in (
        {},
        {
            "destination": "whatsapp",
            "delivery_id": delivery_id,
            "detail": {"due_at": NOW.isoformat(), "ids": {"crm": delivery_id}},
        },
    ):
        model = TrailHop(event_id=event_id, hop="scheduled", at=NOW, service="processors", **fields)  # type: ignore[arg-type]
        assert hop_json(event_id, "scheduled", NOW, "processors", **fields) == model.to_json()  # type: ignore[arg-type]


def test_routed_records(topology: Topology) -> None:
    router, build = Router(topology), OutputBuilder(topology, "processors")
    servico = new_envelope(
        type="servico.completed",
        source="operacao",
        priority=3,
        idempotency_key="k1",
        data={
            "servico_id": "S1",
            "cliente_id": "C1",
            "completed_at": "2026-03-01T10:00:00Z",
            "phone": "+5511977776666",
        },
    )
    outcome = router.route(servico, NOW)
    records = build.routed(servico, outcome, level=3)
    topics = [r[0] for r in records]
    n = len(outcome.deliveries)
    assert topics[:n] == [topology.delivery_topic(d.destination) for d in outcome.deliveries]
    assert topics[n:] == [topology.system_topic(t) for t in ("scheduled", "trail", "trail")]
    for (_, key, value, headers, partition), delivery in zip(records, outcome.deliveries, strict=False):
        assert key == delivery.entity_key.encode() and value == delivery.to_json()
        assert headers == delivery.kafka_headers() and partition is None
    [scheduled] = outcome.scheduled
    assert records[n][1] == str(scheduled.delivery.delivery_id).encode() and records[n][2] == scheduled.to_json()
    routed, parked = (TrailHop.from_json(r[2]) for r in records[n + 1 :])
    assert records[n + 1][1] == str(servico.event_id).encode()
    assert routed.hop == "routed" and routed.detail == {
        "priority": 3,
        "destinations": outcome.destinations,
        "redelivery": False,
        "deliveries": {d.destination: str(d.delivery_id) for d in outcome.deliveries},
    }
    assert parked.hop == "scheduled" and parked.delivery_id == scheduled.delivery.delivery_id
    assert parked.detail == {"due_at": scheduled.due_at.isoformat(), "message_type": "feedback_request"}


def test_route_document_is_the_envelope_as_json(topology: Topology) -> None:
    seen: list[object] = []

    def spy(document: dict[str, object]) -> dict[str, object]:
        seen.append(document)
        return {}

    hooks = {"cliente_to_financeiro": spy}
    envelope = new_envelope(
        type="cliente.created", source="crm", priority=2, idempotency_key="k", data={"cliente_id": "C1", "name": "Ana"}
    )
    Router(topology, hooks=hooks).route(envelope, NOW)
    assert seen == [envelope.model_dump(mode="json", exclude_none=True)]


def test_a_hook_returning_a_non_object_fails_the_transform(topology: Topology) -> None:
    from processors.routing import TransformFailed

    envelope = new_envelope(
        type="cliente.created", source="crm", priority=2, idempotency_key="k", data={"cliente_id": "C1", "name": "Ana"}
    )
    with pytest.raises(TransformFailed):
        Router(topology, hooks={"cliente_to_financeiro": lambda d: ["no"]}).route(envelope, NOW)  # type: ignore[dict-item,return-value]


def test_dedupe_changelog_bytes_are_fausts_json_codec() -> None:
    from faust.serializers import codecs

    from processors import dedupe

    key = dedupe.dedupe_key("crm", "b-1é")
    fingerprint = dedupe.fingerprint("lead.created", {"name": "Ana"})
    value = dedupe.entry(dedupe.RecordRef("x.events.p3", 5, 10), 1795943537.6221209, str(uuid.uuid4()), fingerprint)
    assert orjson.dumps(key) == codecs.dumps("json", key) and orjson.dumps(value) == codecs.dumps("json", value)


def test_trail_index_changelog_bytes_are_what_faust_writes_for_that_table() -> None:
    """processors.app writes the trail-index changelog itself: raw key (key_type=bytes), json value."""
    from faust.serializers import codecs

    from hub.trail import TrailHop
    from processors import trail_index

    hop = TrailHop(
        event_id=uuid.uuid4(),
        hop="routed",
        at=NOW,
        service="processors",
        detail={"destinations": ["crm", "whatsapp"], "note": "coração", "priority": 2},
    )
    later = TrailHop(
        event_id=hop.event_id,
        hop="delivered",
        at=NOW,
        service="connectors",
        destination="crm",
        delivery_id=uuid.uuid4(),
        detail={"status": 200, "latency_ms": 12.5},
    )
    for partition, offset, record in ((0, 7, hop), (5, 1_000_000, later)):
        event_id, entry = trail_index.index_entry(record.to_json())
        key = trail_index.hop_key(event_id, partition, offset)
        assert codecs.dumps("raw", key) == key
        assert orjson.dumps(entry) == codecs.dumps("json", entry)
