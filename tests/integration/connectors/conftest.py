from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.connectors.support import Sandbox, free_port


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    box = Sandbox(free_port(18290)).start()
    try:
        yield box
    finally:
        box.stop()


@pytest.fixture(autouse=True)
def _clean_sandbox(request: pytest.FixtureRequest) -> None:
    if "sandbox" in request.fixturenames:
        request.getfixturevalue("sandbox").reset()
