from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import orjson
import pytest

from cli.main import main
from hub.topology import Topology
from tests.integration.operators.seed import Seeder


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def json_lines(self) -> list[dict[str, object]]:
        return [orjson.loads(line) for line in self.out.splitlines() if line.startswith("{")]


RunCli = Callable[..., CliResult]


@pytest.fixture
def seeder(hub: Topology, kafka_bootstrap: str) -> Seeder:
    return Seeder(kafka_bootstrap, hub)


def _runner(
    namespace: str,
    bootstrap: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: object,
) -> RunCli:
    monkeypatch.setenv("CARINHO_TOPIC_NAMESPACE", namespace)
    monkeypatch.setenv("CARINHO_KAFKA_BOOTSTRAP_SERVERS", bootstrap)
    monkeypatch.setenv("CARINHO_OPERATOR", "ana.operadora")
    monkeypatch.setenv("CARINHO_ARCHIVE_DIR", str(tmp_path))
    monkeypatch.setenv("CARINHO_REPLAY_RATE", "500")

    def run(*argv: str) -> CliResult:
        capsys.readouterr()
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse errors
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture
def carinho(
    hub: Topology,
    kafka_bootstrap: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: object,
) -> RunCli:
    """Run `carinho ...` in-process against the test hub's namespace; returns exit code and output."""
    return _runner(hub.namespace, kafka_bootstrap, monkeypatch, capsys, tmp_path)


@pytest.fixture
def carinho_offline(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: object) -> RunCli:
    """`carinho ...` with no reachable broker: for errors that must come before any Kafka call."""
    return _runner("offline.", "127.0.0.1:9", monkeypatch, capsys, tmp_path)


@dataclass
class OpsServer:
    url: str
    router: object


@pytest.fixture
def ops_server(hub: Topology, kafka_bootstrap: str):  # type: ignore[no-untyped-def]
    """The ops router mounted in a FastAPI app of our own, served by uvicorn on a free port."""
    import socket
    import threading
    import time

    import uvicorn
    from fastapi import FastAPI

    from operators.web import ops_router

    router = ops_router(hub, kafka_bootstrap, cache_seconds=0.5)
    app = FastAPI()
    app.include_router(router)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield OpsServer(f"http://127.0.0.1:{port}", router)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
