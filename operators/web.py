"""The operations web page as a FastAPI router: `/ops` (HTML that refreshes itself) and
`/ops/api/summary` (JSON). The ingress mounts it with `app.include_router(ops_router(...))`; the
router's lifespan closes its Kafka clients when the app stops."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from hub.topology import Topology
from operators.ops_page import OPS_PAGE
from operators.ops_summary import OpsSummary


class OpsRouter(APIRouter):
    """An APIRouter that also exposes its `summary` (tests, health checks)."""

    summary: OpsSummary


def ops_router(
    topology: Topology,
    bootstrap: str,
    *,
    cache_seconds: float = 2.0,
    window: timedelta = timedelta(hours=1),
    prefix: str = "/ops",
) -> OpsRouter:
    """`topology` as the hub uses it (namespaced when the hub is); `bootstrap` = Kafka servers.
    The summary is recomputed at most once per `cache_seconds`, whatever the number of viewers."""
    summary = OpsSummary(topology, bootstrap, cache_seconds=cache_seconds, window=window)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await run_in_threadpool(summary.close)

    router = OpsRouter(prefix=prefix, tags=["operations"], lifespan=lifespan)
    router.summary = summary

    @router.get("", response_class=HTMLResponse, include_in_schema=False)
    def ops_page() -> HTMLResponse:
        return HTMLResponse(OPS_PAGE, headers={"Cache-Control": "no-store"})

    @router.get("/api/summary")
    def ops_summary() -> JSONResponse:
        # Sync endpoint: FastAPI runs it in a worker thread, so Kafka calls never block the loop.
        data: dict[str, Any] = summary.summary()
        return JSONResponse(data, status_code=503 if "error" in data else 200, headers={"Cache-Control": "no-store"})

    return router
