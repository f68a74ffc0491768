"""The changelog catch-up without a broker (processors/changelog_catch_up.py): best effort, so a
worker whose broker does not answer still starts, and Faust's recovery reads the changelogs later.
The reading itself is tested against the real broker (tests/integration/processors)."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import faust.stores
import pytest

from processors import changelog_catch_up, state_store


def test_an_unreachable_broker_reads_nothing_and_says_so(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    app = SimpleNamespace(conf=SimpleNamespace(tabledir=tmp_path))
    store = faust.stores.by_url(state_store.URL)(
        state_store.URL, app, SimpleNamespace(name="dedupe"), table_name="dedupe"
    )
    assert isinstance(store, state_store.RocksStore)
    tables = {"dedupe": changelog_catch_up.Changelog(store, "carinho.processors-dedupe-changelog", "json")}
    with caplog.at_level(logging.WARNING, logger="processors.changelog"):
        assert changelog_catch_up.catch_up("127.0.0.1:9", tables, timeout=2) == {"dedupe": 0}
    assert "no changelog catch-up" in caplog.text and "Faust's recovery reads it" in caplog.text
    assert store.data.persisted_offsets() == {} and store.recovered == 0
    store.data.close()
