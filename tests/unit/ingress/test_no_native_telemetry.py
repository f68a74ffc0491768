"""FastAPI's native OpenTelemetry stays off in the ingress: with a provider set up in the process it
would export spans with request paths and log records with validation messages, unmasked (LGPD);
the hub's telemetry is its masked logs and Prometheus metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry import _logs, metrics, trace

from ingress.app import create_app
from ingress.settings import IngressSettings


def _providers_looked_up(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Which OpenTelemetry providers FastAPI asks for while serving one request."""
    asked: list[str] = []
    for module, name in (
        (trace, "get_tracer_provider"),
        (metrics, "get_meter_provider"),
        (_logs, "get_logger_provider"),
    ):
        original = getattr(module, name)

        def spy(*args: object, _original: Callable[..., object] = original, _name: str = name) -> object:
            asked.append(_name)
            return _original(*args)

        monkeypatch.setattr(module, name, spy)

    async def one_request() -> int:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ingress") as client:
            return (await client.get("/no-such-path")).status_code

    assert asyncio.run(one_request()) == 404
    return asked


def test_the_ingress_never_asks_for_opentelemetry_providers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = create_app(IngressSettings(keys_file=tmp_path / "keys.json", kafka_bootstrap_servers="127.0.0.1:9"))
    assert _providers_looked_up(app, monkeypatch) == []


def test_a_default_fastapi_app_does_ask(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check above can fail: FastAPI's default looks the providers up on every request."""
    assert _providers_looked_up(FastAPI(), monkeypatch)
