"""Baseline for the ingress benchmark: the same request to a bare FastAPI endpoint that reads the
body and answers 202 — no auth, no validation, no Kafka."""

from __future__ import annotations

import os
import sys

import uvicorn
from fastapi import FastAPI, Request
from starlette.responses import Response

app = FastAPI()


@app.post("/v1/events", status_code=202)
async def accept(request: Request) -> Response:
    await request.body()
    return Response(b'{"status":"accepted"}', status_code=202, media_type="application/json")


@app.post("/v1/events/batch", status_code=202)
async def accept_batch(request: Request) -> Response:
    await request.body()
    return Response(b'{"status":"accepted"}', status_code=202, media_type="application/json")


@app.get("/health")
async def health() -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


if __name__ == "__main__":
    # The port as the first argument, or CARINHO_PORT (as bench.ingress_ab starts its variants).
    port = int(sys.argv[1]) if len(sys.argv) > 1 else int(os.environ["CARINHO_PORT"])
    uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
