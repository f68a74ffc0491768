"""Secrets in the processors' settings are SecretStr (docs/architecture.md, "Settings and logs"): the
sync sources' bearer tokens never show in a repr, a dump or an error, and reach only the runner."""

from __future__ import annotations

import pytest

from processors.settings import ProcessorSettings

TOKEN = "s3cret-bearer-token"


def test_source_tokens_stay_hidden_but_reach_the_sync_runner(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARINHO_SOURCE_TOKENS", f'{{"operacao": "{TOKEN}"}}')
    settings = ProcessorSettings()
    assert TOKEN not in repr(settings) and TOKEN not in str(settings.model_dump())
    assert settings.source_bearer_tokens() == {"operacao": TOKEN}
