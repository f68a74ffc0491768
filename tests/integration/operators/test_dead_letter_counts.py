"""Open and total dead-letter records on the real broker: `dead_letter_counts` (both its paths) and
the ingress's /status agree with `carinho dlq stats`, and the DLQ alert's gauge is the open count."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

import ingress.metrics  # noqa: F401  (registers the gauge)
from hub.metrics import REGISTRY
from hub.topology import Topology
from ingress.health import HealthReporter
from ingress.settings import IngressSettings
from operators.dlq_state import DeadLetterCounts, dead_letter_counts
from tests.conftest import make_test_topology
from tests.integration.operators.conftest import RunCli
from tests.integration.operators.seed import Seeder, delivery
from tests.kafka_support import unique


def _stats_open(carinho: RunCli) -> int:
    return len(carinho("dlq", "list", "--json").json_lines())  # the tools' default filter: open items


def test_counts_follow_the_dlq_tools(seeder: Seeder, carinho: RunCli, hub: Topology, kafka_bootstrap: str) -> None:
    for _ in range(3):
        seeder.dead_letter(delivery("crm"), reason="http_400")
    seeder.dead_letter(delivery("marketing", path="/api/attributions"), reason="http_410", status=410)
    assert "purged 1 record(s)" in carinho("dlq", "purge", "--destination", "marketing", "--yes").out
    assert _stats_open(carinho) == 3

    exact = dead_letter_counts(hub, kafka_bootstrap, timeout=15)
    # Past the limit it counts from the offsets and the states instead of reading every record.
    from_offsets = dead_letter_counts(hub, kafka_bootstrap, timeout=15, exact_limit=2)
    assert exact == from_offsets == DeadLetterCounts(open=3, total=4)

    settings = IngressSettings(kafka_bootstrap_servers=kafka_bootstrap, processors_url="http://127.0.0.1:9")
    reporter = HealthReporter(settings, hub, None, httpx.AsyncClient())  # type: ignore[arg-type]
    status: dict[str, Any] = asyncio.run(reporter.status())
    assert (status["dead_letter_size"], status["dead_letter_records"]) == (3, 4)
    assert REGISTRY.get_sample_value("carinho_dead_letter_records") == 3


def test_no_topics_no_dead_letters(base_topology: Topology, kafka_bootstrap: str) -> None:
    never_created = make_test_topology(base_topology, unique("absent"))
    assert dead_letter_counts(never_created, kafka_bootstrap, timeout=10) == DeadLetterCounts(open=0, total=0)
