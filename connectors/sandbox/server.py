"""Run the sandbox with uvicorn (uvloop + httptools when installed: the benchmarks need the speed)."""

from __future__ import annotations

import importlib.util
import logging
import time

import httpx
import uvicorn

from connectors.sandbox.app import SandboxApp

DEFAULT_PORT = 8090


def server_config(app: SandboxApp, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> uvicorn.Config:
    fast_loop = importlib.util.find_spec("uvloop") is not None
    fast_http = importlib.util.find_spec("httptools") is not None
    return uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="off",
                          loop="uvloop" if fast_loop else "asyncio", http="httptools" if fast_http else "h11",
                          backlog=4096, timeout_keep_alive=60)


def serve(host: str = "127.0.0.1", port: int = DEFAULT_PORT, seed: int | None = None) -> None:
    logging.getLogger("connectors.sandbox").info("sandbox listening", extra={"host": host, "port": port})
    uvicorn.Server(server_config(SandboxApp(seed), host, port)).run()


def wait_ready(base_url: str, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/_control/health", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"sandbox at {base_url} did not become ready in {timeout_s}s")
