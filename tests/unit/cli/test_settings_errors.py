"""A setting of the wrong shape is one clear line per problem naming the variable, and never prints
its value: pydantic's own message shows every input, and CARINHO_SIGNING_SECRETS, the tokens and the
Z-API credentials are secrets (the services' stderr is their log)."""

from __future__ import annotations

import pytest

from cli.main import main
from processors.settings import ProcessorSettings

SECRET = "FAKE-s3cr3t-do-not-print"


@pytest.mark.parametrize(
    ("variable", "value", "command", "named"),
    [
        ("CARINHO_SIGNING_SECRETS", f'{{"crm": "{SECRET}"}}', ["connectors"], "CARINHO_SIGNING_SECRETS (crm)"),
        ("CARINHO_DESTINATION_TOKENS", f'{{"crm": {{"t": "{SECRET}"}}}}', ["connectors"], "CARINHO_DESTINATION_TOKENS"),
        ("CARINHO_SOURCE_TOKENS", f'{{"crm": ["{SECRET}"]}}', ["sync", "status"], "CARINHO_SOURCE_TOKENS (crm)"),
        ("CARINHO_SOURCE_TOKENS", f"not json {SECRET}", ["processors"], "source_tokens"),
    ],
)
def test_a_bad_secret_setting_is_named_not_printed(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variable: str,
    value: str,
    command: list[str],
    named: str,
) -> None:
    monkeypatch.setenv(variable, value)
    monkeypatch.setenv("CARINHO_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    code = main(command)
    err = capsys.readouterr().err
    assert code == 2 and named in err and "invalid settings" in err, err
    assert SECRET not in err and "Traceback" not in err


def test_source_tokens_are_secret_strings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARINHO_SOURCE_TOKENS", f'{{"operacao": "{SECRET}"}}')
    settings = ProcessorSettings()
    assert SECRET not in repr(settings) and SECRET not in str(settings.model_dump())
    assert settings.source_bearer_tokens() == {"operacao": SECRET}
