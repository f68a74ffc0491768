"""`carinho sync status --json`, against the real broker, writes each sync's period as topics.yaml
does ("1d") and in seconds, not as a Python timedelta ("1 day, 0:00:00")."""

from __future__ import annotations

import orjson

from hub.topology import Topology
from processors.syncs.watermarks import SyncState, SyncStateStore
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


def test_sync_status_exits_1_at_the_alert_threshold_in_both_forms(
    hub: Topology, kafka_bootstrap: str, carinho: RunCli
) -> None:
    """Scripts check the exit code: the table and --json agree on it."""
    name = next(iter(hub.syncs))
    store = SyncStateStore(hub, kafka_bootstrap)
    store.save(SyncState(sync=name, consecutive_failures=hub.alerts.sync_consecutive_failures, last_error="HTTP 500"))
    table, as_json = carinho("sync", "status"), carinho("sync", "status", "--json")
    assert (table.code, as_json.code) == (1, 1), (table.err, as_json.err)
    failing = {row["sync"]: row["consecutive_failures"] for row in orjson.loads(as_json.out)}
    assert failing[name] == hub.alerts.sync_consecutive_failures
    assert " !" in next(line for line in table.out.splitlines() if line.startswith(name))
