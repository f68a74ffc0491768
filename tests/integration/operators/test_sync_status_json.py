"""`carinho sync status --json`, against the real broker, writes each sync's period as topics.yaml
does ("1d") and in seconds, not as a Python timedelta ("1 day, 0:00:00")."""

from __future__ import annotations

import orjson

from hub.topology import Topology
from tests.integration.operators.conftest import RunCli


def test_sync_status_json_gives_the_period_as_a_duration_and_in_seconds(hub: Topology, carinho: RunCli) -> None:
    result = carinho("sync", "status", "--json")
    assert result.code == 0, result.err
    rows = {row["sync"]: row for row in orjson.loads(result.out)}  # one JSON array
    assert set(rows) == set(hub.syncs)
    for name, sync in hub.syncs.items():
        assert rows[name]["every_seconds"] == int(sync.every.total_seconds())
        assert "day" not in str(rows[name]["every"]) and ":" not in str(rows[name]["every"])
    daily = next(name for name, sync in hub.syncs.items() if sync.every.total_seconds() == 86400)
    assert rows[daily]["every"] == "1d" and rows[daily]["every_seconds"] == 86400
