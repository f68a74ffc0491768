from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from hub.topology import Topology, load_topology
from operators.dlq_edit import EditError, apply_edit, changed_paths, parse_assignment
from operators.dlq_filters import FilterError, build_filter, parse_time
from operators.dlq_items import BadDlqId, DlqId
from operators.dlq_state import OPEN_STATUSES
from operators.integrations import IntegrationIndex
from operators.progress import ProgressBar, RateLimiter
from operators.report import percentile, resolve_day

ROOT = Path(__file__).resolve().parents[3]
NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def topology() -> Topology:
    return load_topology(ROOT / "topics.yaml")


def test_filter_parsing(topology: Topology) -> None:
    flt = build_filter(
        topology,
        destination=["crm,marketing"],
        status_code=["5xx", "422"],
        since="24h",
        until="2025-03-10",
        status=["all"],
        now=NOW,
    )
    assert flt.destinations == {"crm", "marketing"}
    assert flt.since == NOW - timedelta(hours=24)
    assert flt.until == datetime(2025, 3, 10, tzinfo=UTC)
    assert flt.status_codes is not None and flt.status_codes(503) and flt.status_codes(422)
    assert not flt.status_codes(400) and not flt.status_codes(None)
    assert build_filter(topology).statuses == OPEN_STATUSES


def test_filter_errors_are_all_reported(topology: Topology) -> None:
    with pytest.raises(FilterError) as info:
        build_filter(
            topology,
            destination=["crn"],
            event_type=["x.y"],
            status_code=["abc"],
            since="yesterday-ish",
            event_id=["1"],
            status=["gone"],
            ids=["a:b"],
        )
    assert len(info.value.problems) == 7
    assert "known: atendimento, crm, cuidadores" in str(info.value)


def test_parse_time_forms() -> None:
    assert parse_time("2025-01-31T14:00:00Z", now=NOW, option="--since") == datetime(2025, 1, 31, 14, tzinfo=UTC)
    assert parse_time("30m", now=NOW, option="--since") == NOW - timedelta(minutes=30)
    with pytest.raises(ValueError, match="ISO date-time"):
        parse_time("last week", now=NOW, option="--since")


def test_dlq_id() -> None:
    assert str(DlqId.parse(" 2:17 ")) == "2:17"
    for bad in ("2", "a:1", "1:-1", "1:2:3", ""):
        with pytest.raises(BadDlqId):
            DlqId.parse(bad)


def _delivery_json() -> bytes:
    return orjson.dumps(
        {
            "schema_version": 1,
            "delivery_id": "8b7f8a47-54cb-5a5c-9f0d-6f7e1c9d0a11",
            "event_id": "2f1c2b7e-4a55-4b8e-9d8e-63617269686f",
            "event_type": "lead.created",
            "source": "site",
            "destination": "crm",
            "priority": 2,
            "entity_key": "lead-1",
            "path": "/api/leads",
            "payload": {"telefone": "x", "itens": [{"id": 1}]},
            "created_at": "2025-03-10T12:00:00+00:00",
        }
    )


def test_edit_set_unset_and_identity() -> None:
    value, paths = apply_edit(
        _delivery_json(),
        "delivery",
        sets=["payload.telefone=+5511999990000", "payload.itens.0.id=2"],
        unsets=[],
        replacement=None,
    )
    data = orjson.loads(value)
    assert data["payload"] == {"telefone": "+5511999990000", "itens": [{"id": 2}]}
    assert paths == ["payload.itens.0.id", "payload.telefone"]
    value, paths = apply_edit(_delivery_json(), "delivery", sets=[], unsets=["payload.itens"], replacement=None)
    assert "itens" not in orjson.loads(value)["payload"] and paths == ["payload.itens"]
    with pytest.raises(EditError, match="destination cannot change"):
        apply_edit(_delivery_json(), "delivery", sets=["destination=marketing"], unsets=[], replacement=None)
    with pytest.raises(EditError, match="no field"):
        apply_edit(_delivery_json(), "delivery", sets=[], unsets=["payload.nada"], replacement=None)
    with pytest.raises(EditError, match="changes nothing"):
        apply_edit(_delivery_json(), "delivery", sets=["payload.telefone=x"], unsets=[], replacement=None)
    with pytest.raises(EditError, match="not valid JSON"):
        apply_edit(_delivery_json(), "delivery", sets=[], unsets=[], replacement=b"{")
    with pytest.raises(EditError, match="either --file"):
        apply_edit(_delivery_json(), "delivery", sets=["a=1"], unsets=[], replacement=b"{}")
    # Unrecognised records may become anything JSON.
    fixed, _ = apply_edit(b"garbage", "bytes", sets=[], unsets=[], replacement=_delivery_json())
    assert orjson.loads(fixed)["destination"] == "crm"


def test_assignment_and_diff() -> None:
    assert parse_assignment("a.b=12") == ("a.b", 12)
    assert parse_assignment("a=texto livre") == ("a", "texto livre")
    assert parse_assignment('a="12"') == ("a", "12")
    with pytest.raises(EditError):
        parse_assignment("no-equals")
    assert changed_paths({"a": 1, "b": {"c": 2}}, {"a": 1, "b": {"c": 3}, "d": 0}) == ["b.c", "d"]


def test_percentile_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert percentile([5.0], 99) == 5.0
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50 and percentile(values, 95) == 95 and percentile(values, 99) == 99


def test_resolve_day() -> None:
    now = datetime(2025, 3, 10, 2, 0, tzinfo=UTC)  # 23:00 on the 9th in São Paulo
    assert resolve_day(None, "America/Sao_Paulo", now).isoformat() == "2025-03-09"
    assert resolve_day("yesterday", "UTC", now).isoformat() == "2025-03-09"
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        resolve_day("10/03/2025", "UTC", now)


def test_integration_index(topology: Topology) -> None:
    index = IntegrationIndex(topology)
    assert index.of("lead.created", "crm") == "lead-crm"
    assert index.of("lead.created", "whatsapp") == "automation:lead_auto_reply"
    assert index.of("lead.created", "sms") == "automation:lead_auto_reply"
    assert index.of("servico.completed", "whatsapp") == "automation:feedback_request"
    assert index.of("cuidador.updated", "crm") == "cuidadores-crm"
    assert index.of(None, "crm") == "other"


def test_rate_limiter_and_progress(capsys: pytest.CaptureFixture[str]) -> None:
    import io
    import time

    limiter = RateLimiter(200)
    start = time.monotonic()
    for _ in range(300):
        limiter.acquire()
    elapsed = time.monotonic() - start
    assert 0.4 <= elapsed < 3.0  # 200 burst, then 100 more at 200/s
    stream = io.StringIO()
    bar = ProgressBar(4, "replay", stream=stream)
    for _ in range(4):
        bar.advance()
    bar.close()
    assert stream.getvalue().strip().splitlines()[-1].startswith("replay [" + "#" * 30 + "] 4/4")


def test_dlq_show_masks_the_names_a_destination_echoed_in_its_error() -> None:
    """A dead letter's error text may repeat the record's name (written before the connectors masked
    it, or by another writer): `carinho dlq show` / export mask the record's own names and text."""
    from datetime import UTC, datetime

    import orjson

    from hub.dead_letter import DeadLetterInfo
    from operators.dlq_items import DlqItem
    from operators.kafka_io import RawRecord

    info = DeadLetterInfo(
        stage="connectors",
        reason="http_422",
        permanent=True,
        error_class="HTTPStatusError",
        error_message="duplicate contact: Contato Fulano Teste Beltrano, tel 11 90000-0004",
        original_topic="deliver.crm",
        original_partition=0,
        original_offset=0,
        failed_at=datetime(2026, 12, 1, tzinfo=UTC),
    )
    value = orjson.dumps({"payload": {"nome": "Fulano Teste Beltrano", "telefone": "11900000004"}})
    item = DlqItem(RawRecord("deadletter", 0, 7, 0, b"k", value, tuple(info.to_headers())))
    shown = item.detail(reveal=False)["error_message"]
    assert shown.startswith("duplicate contact: Contato F*** T*** B***")
    assert "Fulano" not in shown and "Beltrano" not in shown and "90000" not in shown
    broken = DlqItem(RawRecord("deadletter", 0, 8, 0, b"k", b"not json", tuple(info.to_headers())))
    assert broken.error_text() is not None and "90000" not in (broken.error_text() or "")
