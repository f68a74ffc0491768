"""A real ingress (uvicorn on a free port) in front of the real test broker."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from hub.topology import Topology
from ingress.api_keys import ApiKeyStore
from ingress.app import create_app
from ingress.settings import IngressSettings
from tests.conftest import create_topics, delete_topics, make_test_topology
from tests.kafka_support import unique

NOBODY = "http://127.0.0.1:9"  # the discard port: connection refused


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningIngress:
    url: str
    topology: Topology
    keys: ApiKeyStore
    bootstrap: str
    server: uvicorn.Server
    thread: threading.Thread

    def key(self, source: str, types: list[str] | None = None, rate: float | None = None) -> str:
        return self.keys.create(source, types, rate_limit_per_second=rate)[1]

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def start_ingress(topology: Topology, bootstrap: str, keys_file: Path, **overrides: object) -> RunningIngress:
    port = free_port()
    settings = IngressSettings(
        kafka_bootstrap_servers=bootstrap,
        keys_file=keys_file,
        port=port,
        keys_reload_interval_s=0.1,
        # No processors or connectors behind a test ingress: addresses where nothing listens, not the
        # defaults (:6066, :9108), which a local hub running on the same machine answers.
        **{"publish_timeout_s": 20.0, "processors_url": NOBODY, "connectors_url": NOBODY, **overrides},
    )
    app = create_app(settings, topology)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        raise RuntimeError("ingress did not start")
    return RunningIngress(url, topology, ApiKeyStore(keys_file), bootstrap, server, thread)


# The ingress writes events.p1..p5, trail and audit, and reads health and the dead-letter size.
INGRESS_TOPICS = {
    "events.p1",
    "events.p2",
    "events.p3",
    "events.p4",
    "events.p5",
    "trail",
    "audit",
    "health",
    "deadletter",
}


@pytest.fixture
def ingress_topology(base_topology: Topology, kafka_bootstrap: str) -> Iterator[Topology]:
    topology = create_topics(make_test_topology(base_topology, unique("i")), kafka_bootstrap, only=INGRESS_TOPICS)
    yield topology
    delete_topics(topology, kafka_bootstrap)


@pytest.fixture
def ingress(ingress_topology: Topology, kafka_bootstrap: str, tmp_path: Path) -> Iterator[RunningIngress]:
    running = start_ingress(ingress_topology, kafka_bootstrap, tmp_path / "keys.json")
    try:
        yield running
    finally:
        running.stop()
