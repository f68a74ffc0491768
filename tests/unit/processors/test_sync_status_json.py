"""`carinho sync status --json` writes each sync's period as topics.yaml does ("1d") and in seconds,
not as a Python timedelta ("1 day, 0:00:00")."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import orjson
import pytest

from cli.main import main
from hub.topology import load_topology
from processors.syncs import watermarks

ROOT = Path(__file__).resolve().parents[3]


class _NoKafkaStore:
    def __init__(self, *_args: Any, **_kwargs: Any) -> None:
        pass

    def load_all(self, *_args: Any, **_kwargs: Any) -> dict[str, Any]:
        return {}  # no sync ran yet


def test_sync_status_json_gives_the_period_as_a_duration_and_in_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watermarks, "SyncStateStore", _NoKafkaStore)
    monkeypatch.setenv("CARINHO_TOPOLOGY_FILE", str(ROOT / "topics.yaml"))
    monkeypatch.delenv("CARINHO_TOPIC_NAMESPACE", raising=False)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main(["sync", "status", "--json"])
    rows = {row["sync"]: row for row in orjson.loads(out.getvalue())}
    syncs = load_topology(ROOT / "topics.yaml").syncs
    assert set(rows) == set(syncs)
    for name, sync in syncs.items():
        assert rows[name]["every_seconds"] == int(sync.every.total_seconds())
        assert "day" not in rows[name]["every"] and ":" not in rows[name]["every"]
    daily = next(name for name, sync in syncs.items() if sync.every.total_seconds() == 86400)
    assert rows[daily]["every"] == "1d" and rows[daily]["every_seconds"] == 86400
