"""The CLI finds the running local hub (`make up` writes .run/hub.env), fails in one line when Kafka
does not answer, and a sync it cannot even address is not recorded as a run."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

import cli.processors
from cli.main import main
from cli.settings import CliSettings
from hub.settings import HUB_ENV_FILE, PROJECT_ROOT
from hub.topology import load_topology
from operators.settings import OperatorSettings
from processors.settings import ProcessorSettings
from processors.syncs.runner import SyncConfigError, feed_url

# Kafka at port 9 (discard): nothing answers there, whatever else this machine runs.
HUB_ENV = """# written by deploy/local/hub.sh up
KAFKA_PORT=9
CARINHO_KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9
CARINHO_SANDBOX_URL=http://127.0.0.1:28090
CARINHO_PROCESSORS_URL=http://127.0.0.1:28066
CARINHO_INGRESS_PORT=28080
"""


@pytest.fixture
def hub_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "hub.env"
    path.write_text(HUB_ENV)
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "SANDBOX_URL", "SOURCE_URLS", "PROCESSORS_URL", "TOPIC_NAMESPACE"):
        monkeypatch.delenv(f"CARINHO_{name}", raising=False)
    monkeypatch.setenv("CARINHO_HUB_ENV_FILE", str(path))
    return path


def test_the_default_file_is_the_run_dirs_and_the_unit_tests_read_none() -> None:
    assert HUB_ENV_FILE == PROJECT_ROOT / ".run" / "hub.env"
    assert CliSettings().kafka_bootstrap_servers == "127.0.0.1:9092"  # tests/unit/conftest.py: no file


def test_cli_and_operator_settings_read_the_hub_file(hub_env: Path) -> None:
    cli_settings = CliSettings()
    assert cli_settings.kafka_bootstrap_servers == "127.0.0.1:9"
    assert cli_settings.sandbox_url == "http://127.0.0.1:28090"
    assert cli_settings.processors_url == "http://127.0.0.1:28066"
    assert OperatorSettings().kafka_bootstrap_servers == "127.0.0.1:9"


def test_the_environment_wins_over_the_file(hub_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARINHO_KAFKA_BOOTSTRAP_SERVERS", "10.0.0.5:9092")
    assert CliSettings().kafka_bootstrap_servers == "10.0.0.5:9092"
    assert CliSettings().sandbox_url == "http://127.0.0.1:28090"
    assert CliSettings(kafka_bootstrap_servers="x:1").kafka_bootstrap_servers == "x:1"


def test_services_never_read_the_file(hub_env: Path) -> None:
    settings = ProcessorSettings()
    assert settings.kafka_bootstrap_servers == "127.0.0.1:9092" and settings.sandbox_url is None


def test_a_missing_file_is_no_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARINHO_HUB_ENV_FILE", str(tmp_path / "absent.env"))
    monkeypatch.delenv("CARINHO_KAFKA_BOOTSTRAP_SERVERS", raising=False)
    assert CliSettings().kafka_bootstrap_servers == "127.0.0.1:9092"


def test_sync_and_trace_get_the_hubs_addresses(hub_env: Path) -> None:
    import argparse

    settings, cli_settings = cli.processors._tool_settings(argparse.Namespace())
    assert settings.kafka_bootstrap_servers == "127.0.0.1:9"
    assert settings.source_url("crm") == "http://127.0.0.1:28090/sources/crm"
    assert cli_settings.processors_url == "http://127.0.0.1:28066"


def test_trace_asks_the_processors_url_of_the_hub(hub_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    def fake_get(url: str, **_: Any) -> httpx.Response:
        asked.append(url)
        return httpx.Response(200, json={"hops": [{"at": "2026-12-01T00:00:00Z", "service": "ingress", "hop": "a"}]})

    monkeypatch.setattr(httpx, "get", fake_get)
    event_id = str(uuid.uuid4())
    assert main(["trace", event_id]) == 0
    assert asked == [f"http://127.0.0.1:28066/v1/trail/{event_id}"]


def test_unreachable_kafka_is_one_line_and_exit_1(
    hub_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No processors and no broker at the hub's addresses (nothing listens there): librdkafka's own
    failure, reported in one line."""

    def no_http(url: str, **_: Any) -> httpx.Response:
        raise httpx.ConnectError("refused")

    monkeypatch.setattr(httpx, "get", no_http)
    assert main(["trace", str(uuid.uuid4())]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "cannot reach Kafka at 127.0.0.1:9" in err and "CARINHO_KAFKA_BOOTSTRAP_SERVERS" in err


def test_operator_tools_kafka_errors_are_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CARINHO_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")  # nothing listens on port 1
    assert main(["audit"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("carinho: Kafka at 127.0.0.1:1: cannot reach Kafka") and len(err.splitlines()) == 1


def test_sync_without_a_source_url_is_not_run_nor_recorded(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import processors.syncs.runner

    for name in ("SANDBOX_URL", "SOURCE_URLS"):
        monkeypatch.delenv(f"CARINHO_{name}", raising=False)

    class NoRunner:
        def __init__(self, *_: Any, **__: Any) -> None:
            raise AssertionError("a SyncRunner (which records the run) was built")

    monkeypatch.setattr(processors.syncs.runner, "SyncRunner", NoRunner)
    assert main(["sync", "run", "agenda-operacao"]) == 2
    err = capsys.readouterr().err
    assert "no URL for source" in err and "CARINHO_SANDBOX_URL" in err and "nothing was run" in err


def test_feed_url_names_the_configuration_error() -> None:
    topology = load_topology(PROJECT_ROOT / "topics.yaml")
    name = next(iter(topology.syncs))
    with pytest.raises(SyncConfigError, match="no URL for source"):
        feed_url(topology, name, ProcessorSettings(sandbox_url=None).source_url)
    url = feed_url(topology, name, ProcessorSettings(sandbox_url="http://sb").source_url)
    assert url.startswith(f"http://sb/sources/{topology.syncs[name].source}")
