"""operators.scheduled: the latest state per delivery id of the schedule table's changelog, without
the message's payload."""

from __future__ import annotations

import orjson

from operators.kafka_io import RawRecord
from operators.scheduled import latest_states


def record(offset: int, key: bytes | None, value: object) -> RawRecord:
    raw = None if value is None else value if isinstance(value, bytes) else orjson.dumps(value)
    return RawRecord("x-scheduled-changelog", 0, offset, 0, key, raw, ())


def entry(state: str, due_at: str, event_id: str, **extra: object) -> dict[str, object]:
    delivery = {
        "event_id": event_id,
        "event_type": "servico.completed",
        "destination": "whatsapp",
        "message_type": "feedback_request",
        "payload": {"phone": "+5511977776666", "message": "Oi Ana"},
    }
    return {"state": state, "due_at": due_at, "partition": 0, "at": 1.0, "delivery": delivery, **extra}


def test_latest_state_per_key_sorted_by_due_time_without_payload() -> None:
    states = latest_states(
        [
            record(0, b"d-late", entry("pending", "2026-12-01T12:00:00+00:00", "e-1")),
            record(1, b'"d-early"', entry("pending", "2026-12-01T10:00:00+00:00", "e-2")),  # a JSON-encoded key
            record(
                2, b"d-late", entry("fired", "2026-12-01T12:00:00+00:00", "e-1", fired_at="2026-12-01T12:00:01+00:00")
            ),
            record(3, b"d-gone", entry("pending", "2026-12-01T09:00:00+00:00", "e-3")),
            record(4, b"d-gone", None),  # tombstone: compacted away
            record(5, b"d-junk", b"not json"),
            record(6, b"d-other", {"state": "pending"}),  # not a schedule entry
            record(7, None, entry("pending", "2026-12-01T08:00:00+00:00", "e-4")),
        ]
    )
    assert [(m.delivery_id, m.state, m.event_id) for m in states] == [
        ("d-early", "pending", "e-2"),
        ("d-late", "fired", "e-1"),
    ]
    fired = states[1].as_dict()
    assert fired["fired_at"] == "2026-12-01T12:00:01+00:00" and fired["message_type"] == "feedback_request"
    assert "payload" not in fired and "+5511977776666" not in orjson.dumps(fired).decode()
