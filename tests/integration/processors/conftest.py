"""Processors integration fixtures: a namespaced hub, a short-delay copy of topics.yaml, a fake source
HTTP API (the sync feed contract) and real worker subprocesses (`python -m processors`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
import yaml
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic

from hub.admin import apply_topics
from hub.kafka_config import admin_config, consumer_config
from hub.topology import Topology, load_topology
from tests.kafka_support import ROOT, iter_free_ports, unique

FEEDBACK_DELAY_S = 6


@dataclass
class FakeSources:
    """Serves GET /sources/<source><path>?since=&cursor=&limit= from in-memory item lists."""

    items: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # path -> items
    requests: list[dict[str, str]] = field(default_factory=list)
    fail_pages: set[int] = field(default_factory=set)  # 1-based page numbers answering 500
    url: str = ""

    def handler(self) -> type[BaseHTTPRequestHandler]:
        sources = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def do_GET(self) -> None:
                parsed = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(parsed.query, keep_blank_values=True).items()}
                path = parsed.path.split("/", 3)[-1]  # /sources/<source>/api/... -> api/...
                sources.requests.append(
                    {"path": "/" + path, "authorization": self.headers.get("Authorization", ""), **query}
                )
                items = sorted(sources.items.get("/" + path, []), key=lambda i: i["updated_at"])
                since = query.get("since") or ""
                items = [i for i in items if not since or i["updated_at"] > since]
                start = int(query.get("cursor") or 0)
                limit = int(query.get("limit") or 200)
                page_no = start // max(limit, 1) + 1
                if page_no in sources.fail_pages:
                    self.send_response(500)
                    self.end_headers()
                    return
                page = items[start : start + limit]
                nxt = str(start + limit) if start + limit < len(items) else None
                body = json.dumps({"items": page, "next_cursor": nxt}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


@pytest.fixture(scope="session")
def fake_sources() -> Iterator[FakeSources]:
    sources = FakeSources()
    server = ThreadingHTTPServer(("127.0.0.1", 0), sources.handler())
    sources.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield sources
    server.shutdown()


@pytest.fixture(scope="session")
def short_topology_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """topics.yaml with the feedback delay and one sync interval shortened to seconds."""
    raw = yaml.safe_load((ROOT / "topics.yaml").read_text())
    raw["automations"]["feedback_request"]["delay"] = f"{FEEDBACK_DELAY_S}s"
    raw["automations"]["feedback_request"].pop("quiet_hours", None)  # the test waits seconds, not until 08:00
    raw["syncs"]["agenda-operacao"]["every"] = "3s"  # so a worker's leader timer runs it during a test
    path = tmp_path_factory.mktemp("topology") / "topics.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True))
    return path


def make_hub(topology_file: Path, bootstrap: str) -> Topology:
    topology = load_topology(topology_file).with_namespace(unique("p"))
    result = apply_topics(topology, "local", bootstrap)
    assert not result.problems, result.problems
    return topology


_ports = iter_free_ports(16100)


@dataclass
class Worker:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def health(self) -> dict[str, Any] | None:
        try:
            return httpx.get(f"{self.url}/health", timeout=2).json()  # type: ignore[no-any-return]
        except (httpx.HTTPError, ValueError):
            return None

    def trail(self, event_id: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/v1/trail/{event_id}", timeout=5)
        return response.json().get("hops", []) if response.status_code in (200, 404) else []

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@dataclass
class WorkerFactory:
    bootstrap: str
    topology_file: Path
    tmp: Path
    sources_url: str
    started: list[Worker] = field(default_factory=list)

    def start(self, topology: Topology, *, wait: bool = True, port: int | None = None, **env: str) -> Worker:
        """A worker on a new web port, or on `port` again: the data directory is per web port, so that
        restarts a worker on its previous tables."""
        port = next(_ports) if port is None else port
        log = self.tmp / f"worker-{port}-{len(self.started)}.log"
        environ = {
            **os.environ,
            "CARINHO_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "CARINHO_TOPIC_NAMESPACE": topology.namespace.rstrip("."),
            "CARINHO_TOPOLOGY_FILE": str(self.topology_file),
            "CARINHO_WEB_PORT": str(port),
            "CARINHO_DATA_DIR": str(self.tmp / "data"),
            "CARINHO_SCHEDULER_TICK": "0.5",
            "CARINHO_SYNC_CHECK_INTERVAL": "1",
            "CARINHO_SANDBOX_URL": self.sources_url,
            "CARINHO_COMMIT_INTERVAL": "0.5",
            "CARINHO_REPORT_ENABLED": "false",  # tests that want the daily report turn it on
            **env,
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "processors"], env=environ, cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT
        )
        worker = Worker(proc, port, log)
        self.started.append(worker)
        if wait:
            self.wait_ready(worker)
        return worker

    def wait_ready(self, worker: Worker, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if worker.proc.poll() is not None:
                raise AssertionError(f"worker exited: {worker.log.read_text()[-3000:]}")
            health = worker.health()
            if health and health["status"] == "ok" and health["assigned_partitions"] > 0:
                return
            time.sleep(0.5)
        raise AssertionError(f"worker not ready in {timeout}s: {worker.log.read_text()[-3000:]}")

    def stop_all(self) -> None:
        for worker in self.started:
            worker.stop()


def warm_up_group_coordinator(bootstrap: str, timeout: float = 90) -> None:
    """On a fresh broker the first consumer group waits for __consumer_offsets to be created and its
    coordinator loaded; do that once here so the first worker's timing is like every other's."""
    topic = unique("warmup")
    admin = AdminClient(admin_config(bootstrap))
    for future in admin.create_topics([NewTopic(topic, 1, 1)]).values():
        future.result(30)
    consumer = Consumer(consumer_config(bootstrap, group_id=unique("warmup"), client_id="tests"))
    consumer.subscribe([topic])
    deadline = time.monotonic() + timeout
    try:
        while not consumer.assignment() and time.monotonic() < deadline:
            consumer.poll(0.5)
    finally:
        consumer.close()


@pytest.fixture(scope="session")
def workers(
    kafka_bootstrap: str, short_topology_file: Path, tmp_path_factory: pytest.TempPathFactory, fake_sources: FakeSources
) -> Iterator[WorkerFactory]:
    warm_up_group_coordinator(kafka_bootstrap)
    factory = WorkerFactory(kafka_bootstrap, short_topology_file, tmp_path_factory.mktemp("workers"), fake_sources.url)
    yield factory
    factory.stop_all()


@pytest.fixture(scope="module")
def shared(
    workers: WorkerFactory, short_topology_file: Path, kafka_bootstrap: str
) -> Iterator[tuple[Topology, Worker]]:
    """One hub namespace + one worker shared by the independent routing tests of a module."""
    topology = make_hub(short_topology_file, kafka_bootstrap)
    worker = workers.start(topology, CARINHO_SYNC_ENABLED="false")
    yield topology, worker
    worker.stop()
