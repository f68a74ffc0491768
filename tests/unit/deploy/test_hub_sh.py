"""deploy/local/hub.sh without a broker: a taken port stops `up` before anything starts (naming the port
and its holder), a start-up is not "ready" when the process that was started is gone (a zombie
included) even if something answers its health URL, and status/down use the ports `up` wrote to
.run/hub.env when the environment does not set them."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
HUB_SH = ROOT / "deploy" / "local" / "hub.sh"
needs_venv = pytest.mark.skipif(not (ROOT / ".venv" / "bin" / "carinho").exists(), reason="hub.sh up needs the venv")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def listener() -> Iterator[int]:
    """A port this test process listens on (what the tester's stray process did)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def hub_env(run_dir: Path, **extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("CARINHO_", "KAFKA_"))}
    return {**base, "HUB_RUN_DIR": str(run_dir), **extra}


def hub(action: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(HUB_SH), action], env=env, capture_output=True, text=True, timeout=60)


def write_hub_env(run_dir: Path, **ports: int) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "hub.env"
    lines = ["# written by deploy/local/hub.sh up", f"KAFKA_RUN_DIR={run_dir / 'kafka'}"]
    lines += [f"{name}={port}" for name, port in ports.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def free_ports() -> dict[str, int]:
    return {
        "KAFKA_PORT": free_port(),
        "CARINHO_INGRESS_PORT": free_port(),
        "CARINHO_SANDBOX_PORT": free_port(),
        "CARINHO_PROCESSORS_PORT": free_port(),
        "CARINHO_CONNECTORS_PORT": free_port(),
    }


@needs_venv
def test_up_refuses_a_taken_port_before_starting_anything(tmp_path: Path, listener: int) -> None:
    ports = {k: str(v) for k, v in free_ports().items()} | {"CARINHO_INGRESS_PORT": str(listener)}
    up = hub("up", hub_env(tmp_path, **ports))
    assert up.returncode == 1, up.stdout + up.stderr
    assert f"cannot start ingress: port {listener} is already in use" in up.stderr
    assert "CARINHO_INGRESS_PORT" in up.stderr
    if subprocess.run(["sh", "-c", "command -v ss"], capture_output=True).returncode == 0:
        assert f"(pid {os.getpid()})" in up.stderr  # who holds it, as `ss -ltnp` tells
    assert "ready" not in up.stdout
    assert not (tmp_path / "kafka").exists() and not (tmp_path / "hub.env").exists()  # nothing started


def test_down_and_status_use_the_ports_in_hub_env(tmp_path: Path, listener: int) -> None:
    ports = free_ports() | {"CARINHO_SANDBOX_PORT": listener}
    path = write_hub_env(tmp_path, **ports)
    down = hub("down", hub_env(tmp_path))
    assert down.returncode == 1 and f"ports still answering after down: {listener}" in down.stderr, down.stderr
    assert path.exists()  # kept: a second `down` looks at the same ports
    # the environment wins over the file
    down = hub("down", hub_env(tmp_path, CARINHO_SANDBOX_PORT=str(free_port())))
    assert down.returncode == 0, down.stdout + down.stderr
    assert "down: nothing left running" in down.stdout
    assert not path.exists()


def test_status_reports_the_hub_env_ports_and_no_zombie(tmp_path: Path) -> None:
    ports = free_ports()
    write_hub_env(tmp_path, **ports)
    (tmp_path / "pids").mkdir()
    sleeper = subprocess.Popen(["sleep", "30"])
    zombie = subprocess.Popen(["true"])  # exits, never reaped here: a zombie, as a dead service was
    try:
        wait_for_zombie(zombie.pid)
        (tmp_path / "pids" / "sandbox.pid").write_text(f"{sleeper.pid}\n")
        (tmp_path / "pids" / "ingress.pid").write_text(f"{zombie.pid}\n")
        status = hub("status", hub_env(tmp_path))
        sandbox_port = ports["CARINHO_SANDBOX_PORT"]
        assert f"sandbox: running (pid {sleeper.pid}) http://127.0.0.1:{sandbox_port}/" in status.stdout
        assert "ingress: stopped" in status.stdout, status.stdout
    finally:
        sleeper.kill()
        sleeper.wait()
        zombie.wait()


def wait_for_zombie(pid: int) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return
        time.sleep(0.02)
    raise AssertionError(f"pid {pid} did not become a zombie")


# ---- the readiness wait, on its own (functions taken from hub.sh) ----------------------------------
def functions(*names: str) -> str:
    text = HUB_SH.read_text()
    out = []
    for name in names:
        match = re.search(rf"^{name}\(\) \{{.*?\}}$", text, re.M) or re.search(
            rf"^{name}\(\) \{{.*?^\}}$", text, re.M | re.S
        )
        assert match, name
        out.append(match.group(0))
    return "\n".join(out)


class Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"status": "ok"}')

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def foreign_health() -> Iterator[str]:
    """Another process's server answering the health URL."""
    server = HTTPServer(("127.0.0.1", 0), Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/health"
    server.shutdown()
    server.server_close()


def wait_http(run_dir: Path, pid: int, url: str) -> subprocess.CompletedProcess[str]:
    (run_dir / "pids").mkdir(exist_ok=True)
    (run_dir / "pids" / "ingress.pid").write_text(f"{pid}\n")
    script = "\n".join(
        [
            "set -euo pipefail",
            f"RUN={run_dir}",
            functions("say", "die", "alive", "running", "ready", "wait_http"),
            f"wait_http {url} 10 ingress",
            "say ingress up",
        ]
    )
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)


def test_ready_needs_the_started_process_alive(tmp_path: Path, foreign_health: str) -> None:
    zombie = subprocess.Popen(["true"])
    try:
        wait_for_zombie(zombie.pid)
        result = wait_http(tmp_path, zombie.pid, foreign_health)
        assert result.returncode == 1 and "ingress exited during start-up" in result.stderr, result.stderr
        assert "ingress up" not in result.stdout
    finally:
        zombie.wait()
    gone = zombie.pid  # reaped now: no such process
    result = wait_http(tmp_path, gone, foreign_health)
    assert result.returncode == 1 and "exited during start-up" in result.stderr


def test_ready_when_the_started_process_runs_and_answers(tmp_path: Path, foreign_health: str) -> None:
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        result = wait_http(tmp_path, sleeper.pid, foreign_health)
        assert result.returncode == 0, result.stderr
        assert "hub: ingress up" in result.stdout
    finally:
        sleeper.kill()
        sleeper.wait()
