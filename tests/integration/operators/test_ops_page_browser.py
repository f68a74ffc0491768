"""End to end in headless Chromium (Debian's package, driven over the DevTools protocol on a pipe):
the /ops page loads against a running hub, shows a dead-lettered event's destination and reason,
refreshes itself, and a screenshot is saved under .run/screenshots/."""

from __future__ import annotations

import pytest

from tests.integration.operators.conftest import OpsServer
from tests.integration.operators.headless_chromium import HeadlessChromium, find_chromium
from tests.integration.operators.seed import EMAIL, NAME, PHONE, Seeder, delivery
from tests.kafka_support import ROOT

pytestmark = pytest.mark.integration

SCREENSHOTS = ROOT / ".run" / "screenshots"

LATEST_TABLE = "document.querySelector('#latest tbody') ? document.querySelector('#latest tbody').innerText : ''"


def test_ops_page_in_headless_chromium(ops_server: OpsServer, seeder: Seeder) -> None:
    chromium = find_chromium()
    if chromium is None:
        pytest.fail("Chromium is not installed: run deploy/ci/install-browser.sh (Debian's chromium package)")
    record = delivery(
        "financeiro", "cliente.created", path="/api/clientes", payload={"nome": NAME, "telefone": PHONE, "email": EMAIL}
    )
    dlq_id = seeder.dead_letter(record, reason="http_422", status=422)

    with HeadlessChromium(chromium) as browser:
        browser.navigate(f"{ops_server.url}/ops")
        latest = browser.wait_for(
            f"document.body && document.body.dataset.loaded === 'true' && ({LATEST_TABLE})", timeout=20
        )
        assert dlq_id in latest and "financeiro" in latest and "http_422" in latest and "422" in latest
        reasons = browser.evaluate("document.querySelector('#reasons tbody').innerText")
        assert "financeiro" in reasons and "http_422" in reasons
        assert browser.evaluate("document.getElementById('dlq-open').textContent") == "1"
        assert browser.evaluate("document.getElementById('error').style.display") in ("", "none")

        # It refreshes itself: a second dead letter shows up without reloading the page.
        seeder.dead_letter(delivery("crm"), reason="retries_exhausted", status=503)
        browser.wait_for("document.getElementById('dlq-open').textContent === '2'", timeout=20)

        page_text = browser.evaluate("document.body.innerText")
        for secret in (PHONE, EMAIL, NAME):
            assert secret not in page_text
        shot = browser.screenshot(SCREENSHOTS / "ops-page.png")

    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 20_000, f"screenshot suspiciously small ({len(data)} bytes)"
