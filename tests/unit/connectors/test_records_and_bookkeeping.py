from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson
import pytest

from connectors.fallback import fallback_applies, fallback_record
from connectors.history import delivered_rows, deliveries_record, trail_hop
from connectors.kafka_io import OffsetTracker, PauseBook
from connectors.retry_state import RetryState, strip_retry_headers
from connectors.settings import ConnectorSettings
from hub.delivery import DeliveryRecord, derive_delivery_id
from hub.topology import Fallback
from hub.trail import TrailHop

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def record(message_type: str | None = "lead_auto_reply") -> DeliveryRecord:
    event_id = uuid.uuid4()
    return DeliveryRecord(
        delivery_id=derive_delivery_id(event_id, "whatsapp"),
        event_id=event_id,
        event_type="lead.created",
        source="site",
        destination="whatsapp",
        priority=2,
        entity_key="lead-1",
        path="/send-text",
        payload={"phone": "5511999990000", "message": "Olá"},
        message_type=message_type,
        created_at=NOW,
    )  # type: ignore[arg-type]


def test_retry_state_round_trips_through_headers() -> None:
    state = RetryState().with_failure(
        tier=2,
        due_at_ms=123,
        status=503,
        error_class="HTTPStatusError",
        origin=("deliver.crm", 4, 99),
        attempts=2,
        now=NOW,
    )
    headers = [("event_id", b"x"), *state.to_headers()]
    back = RetryState.from_headers(headers)
    assert back == state
    assert back.origin("deliver.crm.retry.2", 1, 5) == ("deliver.crm", 4, 99)
    assert strip_retry_headers(headers) == [("event_id", b"x")]
    # A later failure keeps the first failure time and the original coordinates.
    later = back.with_failure(
        tier=3,
        due_at_ms=456,
        status=500,
        error_class="X",
        origin=("deliver.crm.retry.2", 1, 5),
        attempts=3,
        now=datetime.now(UTC),
    )
    assert later.first_failed_at == NOW and later.origin("a", 0, 0) == ("deliver.crm", 4, 99)


def test_damaged_retry_headers_do_not_break_the_record() -> None:
    state = RetryState.from_headers([("retry.attempts", b"two"), ("retry.due_at_ms", b"17")])
    assert state.attempts == 0 and state.due_at_ms == 17


def test_history_and_trail_match_the_shared_contracts() -> None:
    r = record()
    key, value = deliveries_record(
        r, attempt=2, status=503, latency_ms=12.345, outcome="retry", error="phone 11987654321 bad", at=NOW
    )
    row = orjson.loads(value)
    assert key == str(r.delivery_id).encode()
    assert set(row) == {
        "delivery_id",
        "event_id",
        "event_type",
        "destination",
        "attempt",
        "status",
        "latency_ms",
        "outcome",
        "error",
        "at",
    }
    assert "11987654321" not in row["error"] and row["latency_ms"] == 12.35
    key, value = trail_hop(r, "attempt", at=NOW, attempt=1, status=200, latency_ms=3.0, detail={"result": "success"})
    hop = TrailHop.from_json(value)
    assert key == str(r.event_id).encode() and hop.hop == "attempt" and hop.delivery_id == r.delivery_id


def test_the_delivered_fast_path_writes_exactly_the_generic_rows() -> None:
    r = record()
    at = NOW.isoformat()
    fast = delivered_rows(r, (str(r.delivery_id), str(r.event_id)), attempt=3, status=201, latency_ms=4.567, at=at)
    generic = (
        deliveries_record(r, attempt=3, status=201, latency_ms=4.567, outcome="delivered", error=None, at=NOW),
        trail_hop(
            r,
            "attempt",
            at=NOW,
            attempt=3,
            status=201,
            latency_ms=4.567,
            detail={"result": "success", "error_class": None},
        ),
        trail_hop(r, "delivered", at=NOW, attempt=3, status=201, latency_ms=4.567),
    )
    assert fast == generic
    assert TrailHop.from_json(fast[2][1]).hop == "delivered"


async def test_concurrency_slots_are_fifo_and_survive_cancellation() -> None:
    import asyncio

    from connectors.delivery_loop import Slots

    slots = Slots(1)
    assert slots.try_take() and not slots.try_take()
    order: list[str] = []

    async def user(name: str) -> None:
        await slots.take()
        order.append(name)
        slots.give()

    first, cancelled, last = (asyncio.create_task(user(n)) for n in ("first", "cancelled", "last"))
    await asyncio.sleep(0)
    cancelled.cancel()
    slots.give()
    await asyncio.gather(first, last, cancelled, return_exceptions=True)
    assert order == ["first", "last"] and slots.free == 1


def test_fallback_rules_and_record() -> None:
    rule = Fallback(
        destination="sms",
        when=["breaker_open", "retries_exhausted"],
        message_types=["lead_auto_reply", "feedback_request"],
    )
    assert fallback_applies(rule, record("lead_auto_reply"), "breaker_open")
    assert not fallback_applies(rule, record("generic"), "breaker_open")
    assert not fallback_applies(rule, record(None), "retries_exhausted")
    assert not fallback_applies(None, record(), "breaker_open")
    only_exhausted = Fallback(destination="sms", when=["retries_exhausted"], message_types=["lead_auto_reply"])
    assert not fallback_applies(only_exhausted, record(), "breaker_open")
    original = record()
    sms = fallback_record(original, rule, "/messages", NOW)
    assert sms.destination == "sms" and sms.path == "/messages" and sms.event_id == original.event_id
    assert sms.delivery_id == derive_delivery_id(original.event_id, "sms", "sms-fallback")
    assert sms.payload == {"phone": "5511999990000", "message": "Olá"}
    assert fallback_record(original, rule, "/messages").delivery_id == sms.delivery_id  # stable on re-run


def test_offset_tracker_commits_only_the_contiguous_durable_prefix() -> None:
    tracker = OffsetTracker()
    tp = ("deliver.crm", 0)
    for offset in (10, 11, 12, 13):
        tracker.register(tp, offset)
    assert tracker.commit_due() == []
    tracker.done(tp, 12)
    assert tracker.commit_due() == []  # 10 and 11 still in flight
    tracker.done(tp, 10)
    due = tracker.commit_due()
    assert [(t.topic, t.partition, t.offset) for t in due] == [("deliver.crm", 0, 11)]
    tracker.mark_committed(due)
    assert tracker.commit_due() == []
    tracker.done(tp, 11)
    assert tracker.commit_due()[0].offset == 13
    tracker.done(tp, 13)
    assert tracker.commit_due()[0].offset == 14 and tracker.in_flight() == 0
    tracker.forget(tp)
    tracker.done(tp, 99)  # a late result for a revoked partition is ignored
    assert tracker.commit_due() == []


def test_pause_book_resumes_only_when_no_reason_is_left() -> None:
    book = PauseBook()
    a, b = ("t", 0), ("t", 1)
    book.assign([a, b])
    book.add_local(a, "not_due")
    assert book.reconcile() == ([a], [])
    assert book.add_global("breaker")
    assert book.reconcile() == ([b], [])
    book.remove_local(a, "not_due")
    assert book.reconcile() == ([], [])  # the breaker still holds both
    assert book.remove_global("breaker")
    assert sorted(book.reconcile()[1]) == [a, b]
    book.revoke([a])
    assert a not in book.assigned and book.reconcile([a]) == ([], [])


def test_settings_base_urls_and_zapi_credentials() -> None:
    settings = ConnectorSettings(sandbox_url="http://127.0.0.1:8090/", destination_urls={"crm": "https://crm.example/"})
    assert settings.base_url("crm") == "https://crm.example"
    assert settings.base_url("financeiro") == "http://127.0.0.1:8090/financeiro"
    assert settings.zapi_credentials() == ("sandbox-instance", "sandbox-token", "sandbox-client-token")
    with pytest.raises(ValueError, match="CARINHO_DESTINATION_URLS"):
        ConnectorSettings(sandbox_url=None).base_url("crm")
    with pytest.raises(ValueError, match="CARINHO_ZAPI_INSTANCE"):
        ConnectorSettings(zapi_base_url="https://api.z-api.io").zapi_credentials()
    real = ConnectorSettings(zapi_instance="i", zapi_token="t", zapi_client_token="client-secret-1")
    assert real.zapi_credentials() == ("i", "t", "client-secret-1")
    assert "client-secret-1" not in repr(real)


def test_settings_read_json_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARINHO_DESTINATION_URLS", '{"crm": "https://crm.example"}')
    monkeypatch.setenv("CARINHO_SIGNING_SECRETS", '{"crm": ["new", "old"]}')
    monkeypatch.setenv("CARINHO_TOPIC_NAMESPACE", "t1")
    settings = ConnectorSettings()
    assert settings.destination_urls == {"crm": "https://crm.example"}
    assert [s.get_secret_value() for s in settings.signing_secrets["crm"]] == ["new", "old"]
    assert settings.topology().delivery_topic("crm") == "t1.deliver.crm"
