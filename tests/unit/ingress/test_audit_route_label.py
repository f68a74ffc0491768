"""The request metrics label FastAPI's own pages (/docs, /openapi.json: plain Starlette routes, no
`route` in the scope) by their path; only requests no route matched are `route="unmatched"`."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from hub.metrics import REGISTRY, flush_notes
from ingress.audit import AuditMiddleware


def _count(route: str, status: int) -> float:
    flush_notes()  # the ingress notes its request counts and adds them in bulk (hub.metrics.BulkNotes)
    value = REGISTRY.get_sample_value("carinho_ingress_requests_total", {"route": route, "status": str(status)})
    return value or 0.0


class _Client:
    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def get(self, path: str) -> httpx.Response:
        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://ingress") as http:
                return await http.get(path)

        return asyncio.run(call())


@pytest.fixture
def client() -> _Client:
    app = FastAPI()

    @app.get("/v1/things/{thing_id}")
    def thing(thing_id: str) -> dict[str, Any]:
        return {"id": thing_id}

    app.add_middleware(AuditMiddleware, state={})
    return _Client(app)


@pytest.mark.parametrize("path", ["/docs", "/openapi.json"])
def test_fastapi_pages_are_labelled_by_their_path(client: _Client, path: str) -> None:
    before, unmatched = _count(path, 200), _count("unmatched", 200)
    assert client.get(path).status_code == 200
    assert _count(path, 200) == before + 1
    assert _count("unmatched", 200) == unmatched


def test_routes_keep_their_template_and_misses_stay_unmatched(client: _Client) -> None:
    template, missing = _count("/v1/things/{thing_id}", 200), _count("unmatched", 404)
    assert client.get("/v1/things/abc").status_code == 200
    assert client.get("/no/such/page").status_code == 404
    assert _count("/v1/things/{thing_id}", 200) == template + 1
    assert _count("unmatched", 404) == missing + 1
    assert _count("/v1/things/abc", 200) == 0 and _count("/no/such/page", 404) == 0
