"""The ingress HTTP API: source systems post events here; each is persisted on events.p{priority}
(acks=all) before the 202 goes out."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from hub.gc_tuning import tune_gc
from hub.logging import configure_logging
from hub.metrics import render
from hub.topology import Topology, load_topology
from ingress import audit, openapi_docs
from ingress.accept import (
    authenticate,
    build_envelope,
    check_scope,
    enforce_rate,
    read_json_body,
    validate_event,
)
from ingress.api_keys_kafka import open_key_store
from ingress.errors import ApiError, json_response
from ingress.event_schemas import Accepted, BatchItemResult, BatchResult
from ingress.fast_events_route import IngressApp, accept_single
from ingress.fast_path import FastEnvelope
from ingress.health import HealthReporter
from ingress.http_limits import bounded_http_protocol
from ingress.metrics import EVENTS_REJECTED
from ingress.publisher import Publisher, PublishFailed
from ingress.service import Ingress, accept_event, iso_utc
from ingress.settings import IngressSettings
from ingress.webhooks import native_fields, select_mapping, to_event
from operators.web import ops_router

log = logging.getLogger("ingress")
WARM_UP_S = 10.0


def create_app(
    settings: IngressSettings | None = None, topology: Topology | None = None, publisher: Publisher | None = None
) -> FastAPI:
    settings = settings or IngressSettings()
    if topology is None:
        topology = load_topology(settings.topology_file)
        if settings.topic_namespace:
            topology = topology.with_namespace(settings.topic_namespace)
    state: dict[str, Ingress] = {}
    audit.precreate_request_metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pub = publisher or Publisher(
            settings.kafka_bootstrap_servers,
            client_id="carinho-ingress",
            timeout_s=settings.publish_timeout_s,
            linger_ms=settings.publish_linger_ms,
        )
        pub.start()
        keys = await asyncio.to_thread(
            open_key_store,
            settings.keys_backend,
            keys_file=settings.keys_file,
            reload_interval_s=settings.keys_reload_interval_s,
            bootstrap=settings.kafka_bootstrap_servers,
            topic=topology.system_topic("api_keys"),
            follow=True,
        )
        ingress = Ingress(settings, topology, keys, pub)
        ingress.http = httpx.AsyncClient(timeout=2.0)
        ingress.health = HealthReporter(settings, topology, pub, ingress.http)
        ingress.health.start()
        await _warm_up(ingress)
        state["ingress"] = ingress
        log.info(
            "ingress ready",
            extra={
                "topology_version": topology.version,
                "event_types": len(topology.event_types),
                "port": settings.port,
            },
        )
        try:
            yield
        finally:
            ingress.health.stop()
            ingress.keys.close()
            await ingress.http.aclose()
            if publisher is None:
                left = await pub.aclose()
                if left:
                    log.error("records still unacknowledged at shutdown", extra={"count": left})

    app = IngressApp(
        title="Carinho Integrações — ingress",
        version="1.0.0",
        description=openapi_docs.DESCRIPTION,
        lifespan=lifespan,
        openapi_tags=openapi_docs.TAGS,
        # FastAPI's own OpenTelemetry (on by default in 0.143+) would export spans with request
        # paths and log records with validation messages, unmasked, as soon as an OpenTelemetry
        # provider is set up in the process (FASTAPI_OTEL_AUTO_CONFIGURE, an instrumenting launcher).
        # The hub's telemetry is its masked logs and Prometheus metrics; off, it also stops looking
        # the providers up on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.services = state

    def openapi() -> dict[str, Any]:  # FastAPI's schema, with where the API key goes (/docs "Authorize")
        if app.openapi_schema is None:
            openapi_docs.add_security(FastAPI.openapi(app))
        return app.openapi_schema  # type: ignore[return-value]  # set by FastAPI.openapi

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(audit.AuditMiddleware, state=state)
    # The operators' consolidated page (/ops, /ops/api/summary): no personal data, cached briefly.
    app.include_router(ops_router(topology, settings.kafka_bootstrap_servers, cache_seconds=settings.ops_cache_seconds))

    def hub() -> Ingress:
        return state["ingress"]

    @app.post(
        "/v1/events",
        status_code=202,
        tags=["events"],
        summary="Send one event",
        response_model=Accepted,
        responses=openapi_docs.EVENT_RESPONSES,
        openapi_extra=openapi_docs.event_request_body(),
    )
    async def post_event(request: Request) -> Response:
        # Served by IngressApp below FastAPI once the service is up; this route documents the path.
        return Response(await accept_single(hub(), request.scope, request.receive), 202, media_type="application/json")

    @app.post(
        "/v1/events/batch",
        status_code=202,
        tags=["events"],
        summary="Send up to 500 events; a result per item",
        response_model=BatchResult,
        responses=openapi_docs.BATCH_RESPONSES,
        openapi_extra=openapi_docs.batch_request_body(),
    )
    async def post_batch(request: Request) -> Response:
        ingress = hub()
        verified = authenticate(request, ingress.keys)
        audit.note(request, source=verified.source, key_id=verified.key_id)
        enforce_rate(verified, ingress.topology, ingress.limiter)
        raw = await read_json_body(request, ingress.settings.max_body_bytes)
        items = _batch_items(raw, ingress.settings.batch_max_events)
        now = datetime.now(UTC)
        request_id = audit.request_id(request)
        fast = ingress.fast_path.prepare_batch(items, verified, request_id, now)
        if fast is not None:
            return await _publish_fast(ingress, request, fast, verified.source)
        results: list[BatchItemResult | None] = [None] * len(items)
        pending: list[tuple[int, Any, asyncio.Future[tuple[int, int]]]] = []
        first_with_key: dict[str, int] = {}
        for index, item in enumerate(items):
            prefix = f"events[{index}]"
            try:
                event = validate_event(item, ingress.topology, ingress.models, None, prefix)
                _unique_in_batch(event.idempotency_key, index, first_with_key)
                check_scope(event, verified, ingress.topology, prefix)
                env = build_envelope(event, verified, ingress.topology, None, request_id, now)
            except ApiError as err:
                results[index] = BatchItemResult(index=index, status=err.status, error=err.body(None))
                continue
            envelope = env.envelope
            future = ingress.publisher.send(
                env.topic, envelope.to_json(), envelope.kafka_key(), envelope.kafka_headers()
            )
            pending.append((index, envelope, future))
        outcomes = await asyncio.gather(*(f for _, _, f in pending), return_exceptions=True)
        for (index, envelope, _), outcome in zip(pending, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                results[index] = BatchItemResult(index=index, status=503, error=_not_persisted(index).body(None))
                EVENTS_REJECTED.labels(source=verified.source, reason="kafka_unavailable").inc()
            else:
                results[index] = BatchItemResult(index=index, status=202, event_id=str(envelope.event_id))
                ingress.count_accepted(verified.source, envelope.type, envelope.priority)
                ingress.trail_accepted(
                    str(envelope.event_id), envelope.type, envelope.priority, verified.source, iso_utc(now)
                )
        final = [r for r in results if r is not None]
        accepted = sum(1 for r in final if r.status == 202)
        audit.note(request, events=len(items), accepted=accepted)
        body = BatchResult(accepted=accepted, rejected=len(final) - accepted, results=final)
        if accepted == len(final):
            status = 202
        elif accepted == 0 and all(r.status == 503 for r in final):
            status = 503
        else:
            status = 207
        # Retry-After whenever an item was not persisted (503 or a 207 with 503 items): retry those.
        unpersisted = any(r.status == 503 for r in final)
        headers = {"Retry-After": str(ingress.settings.retry_after_s)} if unpersisted else None
        return json_response(body.model_dump(exclude_none=True), status, headers)

    @app.post(
        "/v1/webhooks/{source}",
        tags=["webhooks"],
        summary="Native webhook payloads (site form, Z-API)",
        responses=openapi_docs.WEBHOOK_RESPONSES,
        openapi_extra=openapi_docs.webhook_request_body(),
    )
    @app.post("/v1/webhooks/{source}/{hook}", tags=["webhooks"], include_in_schema=False)
    async def post_webhook(request: Request, source: str, hook: str | None = None) -> Response:
        ingress = hub()
        verified = authenticate(request, ingress.keys, allow_query_token=True)
        audit.note(request, source=verified.source, key_id=verified.key_id)
        enforce_rate(verified, ingress.topology, ingress.limiter)
        source_cfg = ingress.topology.sources.get(source)
        if source_cfg is None or not source_cfg.webhooks:
            raise ApiError.field(
                404,
                "unknown_webhook",
                "source",
                "known_webhook_source",
                f"no webhook is configured for source {source!r}",
            )
        raw = await read_json_body(request, ingress.settings.max_body_bytes)
        if not isinstance(raw, dict):
            raise ApiError.field(
                422, "validation_failed", "(body)", "object", "the webhook payload must be a JSON object"
            )
        if source != verified.source:  # before "ignored": another source's key gets 403 for any payload
            raise ApiError.field(
                403,
                "forbidden",
                "source",
                "key_source",
                f"this API key belongs to source {verified.source!r}, not {source!r}",
            )
        selected = select_mapping(source_cfg, raw, hook)
        if selected is None:
            # Other callback kinds (delivery receipts, our own messages): acknowledged, not events.
            audit.note(request, ignored=True)
            return json_response({"status": "ignored", "reason": "no webhook mapping matches this payload"}, 200)
        try:
            accepted = await accept_event(ingress, request, to_event(selected[1], raw), verified, None)
        except ApiError as refused:
            raise native_fields(refused, selected[1]) from None
        return json_response(accepted.model_dump(), 202)

    @app.get(
        "/v1/events/{event_id}",
        tags=["events"],
        summary="The event's trail (every hop), personal data masked",
        responses=openapi_docs.TRAIL_RESPONSES,
    )
    async def get_event(request: Request, event_id: str) -> Response:
        ingress = hub()
        verified = authenticate(request, ingress.keys)
        audit.note(request, source=verified.source, key_id=verified.key_id)
        # A trail read is a request like any other: the key's rate limit (each one costs the
        # processors a lookup, and ids are derivable: docs/ingress.md).
        enforce_rate(verified, ingress.topology, ingress.limiter)
        try:  # any spelling uuid.UUID takes (upper case, no dashes, urn:uuid:, braces): the index's form
            event_id = str(uuid.UUID(event_id))
        except ValueError:
            raise ApiError.field(422, "validation_failed", "event_id", "uuid", "event_id must be a UUID") from None
        # Any key reads any trail (docs/ingress.md): who read which is what is worth auditing here.
        # Noted once it is a UUID: `event_id` is an identifier, logged unmasked, and what a caller
        # put in the path may be anything (an e-mail, a phone).
        audit.note(request, event_id=event_id)
        assert ingress.http is not None
        try:
            upstream = await ingress.http.get(f"{ingress.settings.processors_url}/v1/trail/{event_id}")
        except httpx.HTTPError as exc:
            raise ApiError.field(
                503,
                "unavailable",
                "(processors)",
                "reachable",
                f"the trail index (processors) is unreachable: {type(exc).__name__}",
                {"Retry-After": str(ingress.settings.retry_after_s)},
            ) from None
        return Response(upstream.content, status_code=upstream.status_code, media_type="application/json")

    @app.get("/health", tags=["health"], summary="Liveness")
    async def health() -> Response:
        return json_response({"status": "ok"})

    @app.get("/health/detailed", tags=["health"], summary="Kafka, topology and destination checks")
    async def health_detailed() -> Response:
        ingress = hub()
        assert ingress.health is not None
        report = await ingress.health.detailed()
        return json_response(report, 200 if report["status"] == "ok" else 503)

    @app.get("/status", tags=["health"], summary="Pending per priority, dead-letter size, breaker states")
    async def status() -> Response:
        ingress = hub()
        assert ingress.health is not None
        return json_response(await ingress.health.status())

    @app.get("/metrics", tags=["health"], summary="Prometheus metrics")
    async def metrics() -> Response:
        body, content_type = render()
        return Response(body, media_type=content_type)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        return exc.response(audit.request_id(request))

    # Routing's own refusals (404, 405) in the same JSON shape as every other error, instead of
    # Starlette's {"detail": ...}; and no 307 for a trailing slash (many clients do not re-POST).
    app.router.redirect_slashes = False

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return _routing_error(request, exc).response(audit.request_id(request))

    return app


def _unique_in_batch(key: str | None, index: int, first_with_key: dict[str, int]) -> None:
    """422 for a key an earlier item of the same batch has: one key names one event, and the later
    item would otherwise get a 202 with the earlier one's event_id and never be routed."""
    if key is None:
        return
    first = first_with_key.setdefault(key, index)
    if first != index:
        raise ApiError.field(
            422,
            "validation_failed",
            f"events[{index}].idempotency_key",
            "unique_in_batch",
            f"events[{first}] has the same idempotency_key: one key names one event",
        )


def _routing_error(request: Request, exc: StarletteHTTPException) -> ApiError:
    path, method = request.url.path, request.method
    if exc.status_code == 404:
        hint = f"; did you mean {path.rstrip('/')}?" if path.endswith("/") and path != "/" else ""
        return ApiError.field(404, "not_found", "(path)", "known_route", f"no route {method} {path}{hint}")
    if exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        return ApiError.field(
            405,
            "method_not_allowed",
            "(method)",
            "allowed_method",
            f"{method} is not allowed on {path}" + (f" (allowed: {allowed})" if allowed else ""),
            dict(exc.headers or {}),
        )
    return ApiError.field(exc.status_code, "http_error", "(request)", "http", str(exc.detail), dict(exc.headers or {}))


def _batch_items(raw: Any, limit: int) -> list[Any]:
    if not isinstance(raw, dict) or not isinstance(raw.get("events"), list):
        raise ApiError.field(
            422, "validation_failed", "events", "required", f'send {{"events": [ ... ]}} with 1 to {limit} events'
        )
    items: list[Any] = raw["events"]
    extra = sorted(set(raw) - {"events"})
    if extra:
        raise ApiError.field(422, "validation_failed", extra[0], "extra_forbidden", f"unknown field {extra[0]!r}")
    if not 1 <= len(items) <= limit:
        raise ApiError.field(
            422, "validation_failed", "events", "batch_size", f"a batch holds 1 to {limit} events, got {len(items)}"
        )
    return items


def _not_persisted(index: int) -> ApiError:
    return ApiError.field(
        503,
        "unavailable",
        f"events[{index}]",
        "persisted",
        "NOT accepted: Kafka did not acknowledge it; retry this item",
    )


async def _publish_fast(ingress: Ingress, request: Request, envelopes: list[FastEnvelope], source: str) -> Response:
    """Publish a batch that passed the fast path: every item valid and in scope."""
    at = iso_utc(datetime.now(UTC))  # the hops' time: the write's start (see Ingress.publish)
    acknowledged = await ingress.publisher.publish_many([(e.topic, e.value, e.key, e.headers) for e in envelopes])
    results: list[dict[str, Any]] = []
    accepted: dict[tuple[str, int], int] = {}
    hops: list[tuple[str, str, int]] = []
    for index, (envelope, ok) in enumerate(zip(envelopes, acknowledged, strict=True)):
        if not ok:
            results.append(
                {"index": index, "status": 503, "error": _not_persisted(index).body(None).model_dump(exclude_none=True)}
            )
            continue
        results.append({"index": index, "status": 202, "event_id": envelope.event_id})
        accepted[(envelope.type, envelope.priority)] = accepted.get((envelope.type, envelope.priority), 0) + 1
        hops.append((envelope.event_id, envelope.type, envelope.priority))
    ingress.trail_accepted_many(hops, source, at)
    for (event_type, priority), count in accepted.items():
        ingress.count_accepted(source, event_type, priority, count)
    total = sum(accepted.values())
    if total < len(envelopes):
        EVENTS_REJECTED.labels(source=source, reason="kafka_unavailable").inc(len(envelopes) - total)
    audit.note(request, events=len(envelopes), accepted=total)
    body = {"accepted": total, "rejected": len(envelopes) - total, "results": results}
    status = 202 if total == len(envelopes) else (503 if total == 0 else 207)
    # Every item not acknowledged is a 503 here: Retry-After whenever the status is not 202.
    headers = {"Retry-After": str(ingress.settings.retry_after_s)} if status != 202 else None
    return json_response(body, status, headers)


async def _warm_up(ingress: Ingress) -> None:
    """Write a start record to the audit topic and wait for its ack before serving: the idempotent
    producer gets its producer id and the topic metadata now, so the first requests after a (re)start
    are not answered 503 while that happens. Bounded: with Kafka down the ingress still starts and
    answers 503 + Retry-After until Kafka is back."""
    record = {"kind": "service", "event": "started", "service": "ingress", "at": datetime.now(UTC).isoformat()}
    try:
        await asyncio.wait_for(
            ingress.publisher.publish(ingress.audit_topic, orjson.dumps(record), b"ingress"), WARM_UP_S
        )
    except (PublishFailed, TimeoutError) as exc:
        log.warning(
            "Kafka did not acknowledge the start record; serving anyway (503 until it does)",
            extra={"error": str(exc) or type(exc).__name__},
        )


def main() -> None:
    """`carinho ingress`: serve on CARINHO_HOST:CARINHO_PORT."""
    settings = IngressSettings()
    configure_logging("ingress", settings.log_level)
    serve(create_app(settings), settings)


def serve(app: FastAPI, settings: IngressSettings) -> None:
    """Run `app` in the foreground the way the ingress is served (also bench.ingress_no_kafka)."""
    import uvicorn

    tune_gc(settings.gc_tuning)  # after the app and its schemas are built: see hub/gc_tuning.py
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        http=bounded_http_protocol(settings.max_header_bytes),  # 431 past it, before any buffering
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=10,
    )
