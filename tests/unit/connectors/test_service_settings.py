"""The connectors' settings reach each destination's consumer."""

from __future__ import annotations

import pytest

from connectors.service import ConnectorService
from connectors.settings import ConnectorSettings


def _service(**settings: object) -> ConnectorService:
    base = {"kafka_bootstrap_servers": "127.0.0.1:9", "sandbox_url": "http://127.0.0.1:9", "status_port": 0}
    return ConnectorService(ConnectorSettings(**{**base, **settings}), destinations=["crm"])  # type: ignore[arg-type]


def test_fetch_settings_reach_the_destination_consumers() -> None:
    service = _service(connector_fetch_min_bytes=16_384, connector_fetch_max_wait_ms=250)
    service._build()
    overrides = service.workers["crm"].consumer_overrides
    assert overrides["fetch.min.bytes"] == 16_384 and overrides["fetch.wait.max.ms"] == 250


def test_fetch_defaults_are_one_byte_and_500_ms() -> None:
    service = _service()
    service._build()
    overrides = service.workers["crm"].consumer_overrides
    assert overrides["fetch.min.bytes"] == 1 and overrides["fetch.wait.max.ms"] == 500


def test_fetch_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="connector_fetch_min_bytes"):
        _service(connector_fetch_min_bytes=0)
