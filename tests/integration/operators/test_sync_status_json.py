"""`carinho sync status --json`, against the real broker, writes each sync's period as topics.yaml
does ("1d") and in seconds, not as a Python timedelta ("1 day, 0:00:00")."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest

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


def test_a_failed_manual_sync_says_what_the_source_answered(
    hub: Topology, carinho: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`carinho sync run` against a source that refuses: the source's own words (masked) in one line,
    not a bare "sync failed" from a logger nobody configured."""
    said = b'{"error": "token expirado para o cliente joana@example.com"}'

    class Refusing(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(401)
            self.send_header("Content-Length", str(len(said)))
            self.end_headers()
            self.wfile.write(said)

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Refusing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        name, sync = next(iter(hub.syncs.items()))
        url = f"http://127.0.0.1:{server.server_address[1]}"
        monkeypatch.setenv("CARINHO_SOURCE_URLS", orjson.dumps({sync.source: url}).decode())
        result = carinho("sync", "run", name)
    finally:
        server.shutdown()
    assert result.code == 1
    assert result.err.strip().splitlines() == [result.err.strip()], result.err  # one line
    assert "answered HTTP 401: " in result.err and "token expirado" in result.err
    assert "joana@example.com" not in result.err and "sync failed\n" not in result.err
