"""The connectors export each destination's counter children at 0 as soon as its worker is built: a
child created at its first increment is first scraped at 1, and rate()/increase() miss that first
dead letter, retry or breaker opening."""

from __future__ import annotations

from connectors import metrics
from connectors.service import ConnectorService
from connectors.settings import ConnectorSettings
from hub.metrics import REGISTRY


def _sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def test_every_destination_exports_its_dead_letter_retry_and_breaker_counters_once_built() -> None:
    settings = ConnectorSettings(
        kafka_bootstrap_servers="127.0.0.1:9",
        sandbox_url="http://127.0.0.1:9",  # type: ignore[arg-type]
        status_port=0,
    )
    service = ConnectorService(settings)
    service._build()
    topology = service.topology
    assert service.destinations == list(topology.destinations)
    for name in service.destinations:
        tiers = len(topology.destinations[name].retry.tiers)
        assert tiers >= 1
        for tier in range(1, tiers + 1):
            assert _sample("carinho_connector_retries_scheduled_total", destination=name, tier=str(tier)) is not None
        for reason in metrics.DEAD_LETTER_REASONS:
            assert _sample("carinho_connector_dead_letters_total", destination=name, reason=reason) is not None
        assert _sample("carinho_connector_breaker_opened_total", destination=name) is not None
