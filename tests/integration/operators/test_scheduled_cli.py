"""`carinho scheduled` against the real broker: the delayed messages of the processors' schedule
table, read from its changelog (the format the processors write is checked end to end in
tests/integration/processors/test_lifecycle.py), pending first by due time, never the payload."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from hub.kafka_config import admin_config
from hub.topology import Topology, changelog_topic
from tests.integration.operators.conftest import RunCli
from tests.kafka_support import produce, wait_topics_ready

PHONE = "+5511977776666"


@pytest.fixture
def schedule_changelog(hub: Topology, kafka_bootstrap: str) -> Iterator[str]:
    topic = changelog_topic(hub.router_group, "scheduled")
    admin = AdminClient(admin_config(kafka_bootstrap))
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])[topic].result(timeout=30)
    wait_topics_ready(kafka_bootstrap, [topic])
    yield topic
    admin.delete_topics([topic], operation_timeout=30)[topic].result(timeout=30)


def entry(state: str, due_at: str, event_id: str, **extra: str) -> bytes:
    delivery = {
        "delivery_id": "ignored-the-key-names-it",
        "event_id": event_id,
        "event_type": "servico.completed",
        "destination": "whatsapp",
        "message_type": "feedback_request",
        "payload": {"phone": PHONE, "message": "Oi Ana, como foi o atendimento?"},
    }
    return orjson.dumps({"state": state, "due_at": due_at, "partition": 0, "at": 1.0, "delivery": delivery, **extra})


def test_scheduled_lists_pending_by_due_time_and_released_with_all(
    schedule_changelog: str, kafka_bootstrap: str, carinho: RunCli
) -> None:
    produce(kafka_bootstrap, schedule_changelog, entry("pending", "2026-12-01T14:00:00+00:00", "e-late"), b"d-late")
    produce(kafka_bootstrap, schedule_changelog, entry("pending", "2026-12-01T12:00:00+00:00", "e-soon"), b"d-soon")
    produce(kafka_bootstrap, schedule_changelog, entry("pending", "2026-12-01T09:00:00+00:00", "e-done"), b"d-done")
    fired = entry("fired", "2026-12-01T09:00:00+00:00", "e-done", fired_at="2026-12-01T09:00:02+00:00")
    produce(kafka_bootstrap, schedule_changelog, fired, b"d-done")

    table = carinho("scheduled")
    assert table.code == 0, table.err
    rows = [line.split() for line in table.out.splitlines()[1:-1]]
    assert [row[-1] for row in rows] == ["d-soon", "d-late"]  # pending only, the next due first
    assert "2 pending (next due 2026-12-01T12:00:00+00:00), 1 released in the last 8 days" in table.out
    assert PHONE not in table.out and "Oi Ana" not in table.out

    everything = carinho("scheduled", "--all", "--json")
    assert everything.code == 0, everything.err
    listed = everything.json_lines()
    assert [(r["delivery_id"], r["state"]) for r in listed] == [
        ("d-done", "fired"),
        ("d-soon", "pending"),
        ("d-late", "pending"),
    ]
    assert listed[0]["fired_at"] == "2026-12-01T09:00:02+00:00" and listed[1]["event_id"] == "e-soon"
    assert PHONE not in everything.out
    assert [r["delivery_id"] for r in carinho("scheduled", "--json", "--limit", "1").json_lines()] == ["d-soon"]


def test_scheduled_before_the_processors_ever_ran_fails_in_one_line(hub: Topology, carinho: RunCli) -> None:
    result = carinho("scheduled")
    assert result.code == 1
    assert len(result.err.strip().splitlines()) == 1 and "scheduled-changelog" in result.err, result.err
    assert "the processors create it when they first start" in result.err and "topics apply" not in result.err
