"""The acceptance pipeline shared by POST /v1/events, /v1/events/batch and /v1/webhooks/{source}.

Order (documented, relied on by clients): 401 key -> 429 rate -> 415 content type -> 413 size ->
400 JSON -> 422 schema/type/idempotency -> 403 scope -> publish (503 when Kafka does not ack).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect, Request
from starlette.types import Receive

from hub.data_rules import data_problems
from hub.envelope import IDEMPOTENCY_KEY_PATTERN, EventEnvelope, Metadata, derive_event_id
from hub.topology import Topology
from ingress.api_keys import ApiKeyStore, KeyRejected, Verified
from ingress.errors import ApiError, from_validation, schema_error
from ingress.event_schemas import ErrorItem, EventIn
from ingress.rate_limit import RateLimiter

IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)


def presented_key(request: Request, allow_query_token: bool = False) -> str | None:
    key = key_from_headers(request.headers.get("x-api-key"), request.headers.get("authorization"))
    if key is None and allow_query_token:  # Z-API and similar gateways can only be given a URL
        return request.query_params.get("token") or None
    return key


def key_from_headers(api_key: str | None, authorization: str | None) -> str | None:
    """The key from X-API-Key, else from `Authorization: Bearer`."""
    if api_key:
        return api_key.strip()
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def authenticate(request: Request, store: ApiKeyStore, allow_query_token: bool = False) -> Verified:
    return verify_key(presented_key(request, allow_query_token), store)


def verify_key(key: str | None, store: ApiKeyStore) -> Verified:
    """401 unless `key` (as presented, None when absent) is a known, active key."""
    if key is None:
        raise ApiError.field(
            401,
            "unauthorized",
            "X-API-Key",
            "required",
            "send your API key in X-API-Key (or Authorization: Bearer)",
            {"WWW-Authenticate": 'Bearer realm="carinho"'},
        )
    try:
        return store.verify(key)
    except KeyRejected as exc:
        raise ApiError.field(
            401,
            "unauthorized",
            "X-API-Key",
            "valid_key",
            str(exc),
            {"WWW-Authenticate": 'Bearer realm="carinho", error="invalid_token"'},
        ) from None


def enforce_rate(verified: Verified, topology: Topology, limiter: RateLimiter) -> None:
    source = topology.sources.get(verified.source)
    if verified.rate_limit_per_second:  # the key's own limit, with a burst of two seconds' worth
        per_second = verified.rate_limit_per_second
        burst = max(1, math.ceil(per_second * 2))
    else:
        per_second = source.rate_limit.per_second if source else 10.0
        burst = source.rate_limit.burst if source else 20
    retry_after = limiter.check(verified.key_id, per_second, burst)
    if retry_after:
        raise ApiError.field(
            429,
            "rate_limited",
            "X-API-Key",
            "rate_limit",
            f"more than {per_second:g} requests/s for this key; retry after {retry_after}s",
            {"Retry-After": str(retry_after)},
        )


async def read_json_body(request: Request, max_bytes: int) -> Any:
    headers = request.headers
    check_body_headers(
        headers.get("content-type", ""), headers.get("content-length"), max_bytes, headers.get("content-encoding")
    )
    return parse_json(await receive_body(request.receive, max_bytes))


def check_body_headers(
    content_type: str, content_length: str | None, max_bytes: int, content_encoding: str | None = None
) -> None:
    """415 unless the body is declared JSON, in UTF-8, uncompressed; 413 when its declared length is
    over the limit. (A gzip or Latin-1 body otherwise failed later as "not valid UTF-8 at char 0".)"""
    media, _, params = content_type.partition(";")
    media = media.strip().lower()
    if media != "application/json" and not (media.startswith("application/") and media.endswith("+json")):
        raise ApiError.field(
            415,
            "unsupported_media_type",
            "Content-Type",
            "application/json",
            f"send JSON with Content-Type: application/json (got {media or 'none'})",
        )
    if params and (charset := _charset(params)) is not None and charset not in ("utf-8", "utf8"):
        raise ApiError.field(
            415,
            "unsupported_media_type",
            "Content-Type",
            "charset=utf-8",
            f"JSON must be UTF-8 (got charset={charset})",
        )
    if content_encoding and content_encoding.strip().lower() not in ("identity", ""):
        raise ApiError.field(
            415,
            "unsupported_media_type",
            "Content-Encoding",
            "identity",
            f"send the body uncompressed (got Content-Encoding: {content_encoding.strip()})",
        )
    if content_length is not None and content_length.isdigit() and int(content_length) > max_bytes:
        raise _too_large(max_bytes)


def _charset(params: str) -> str | None:
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"').lower()
    return None


async def receive_body(receive: Receive, max_bytes: int) -> bytes:
    """The whole request body straight from the ASGI channel (what `Request.stream` does, without its
    async generator); 413 past `max_bytes`. Every route's body is read here, once."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > max_bytes:
                raise _too_large(max_bytes)
            if not message.get("more_body", False):
                return chunk if not chunks else b"".join([*chunks, chunk])
            chunks.append(chunk)
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect()


# How deep a body may nest (objects and arrays). orjson reads up to 1,024 levels but writes at most
# 254, so a body between the two was read, then failed writing its envelope: a plain-text 500. No
# event needs more than a few levels; the batch wrapper and the envelope add two.
MAX_JSON_DEPTH = 64


def parse_json(body: bytes) -> Any:
    """400 for an empty or malformed body, or one nested deeper than MAX_JSON_DEPTH."""
    if not body.strip():
        raise ApiError.field(400, "malformed_json", "(body)", "json", "the request body is empty; send a JSON object")
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ApiError.field(400, "malformed_json", "(body)", "json", f"the body is not valid JSON: {exc}") from None
    # Fewer opening brackets than the limit cannot nest past it (the usual body: no walk at all).
    if body.count(b"{") + body.count(b"[") > MAX_JSON_DEPTH and json_depth(value) > MAX_JSON_DEPTH:
        raise ApiError.field(
            400,
            "malformed_json",
            "(body)",
            "max_depth",
            f"the body nests objects and arrays deeper than {MAX_JSON_DEPTH} levels",
        )
    return value


def json_depth(value: Any) -> int:
    """Levels of objects and arrays in a parsed JSON value (a scalar is 0), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


def _too_large(max_bytes: int) -> ApiError:
    return ApiError.field(413, "payload_too_large", "(body)", "max_bytes", f"the body is larger than {max_bytes} bytes")


class Prepared(BaseModel):
    envelope: EventEnvelope
    topic: str


def validate_event(
    raw: Any, topology: Topology, data_models: dict[str, type[BaseModel]], header_key: str | None, prefix: str = ""
) -> EventIn:
    """422 checks: body shape, known type, `data` against the type's schema, idempotency key."""
    if not isinstance(raw, dict):
        raise ApiError.field(422, "validation_failed", prefix or "(body)", "object", "each event must be a JSON object")
    try:
        event = EventIn.model_validate(raw)
    except ValidationError as exc:
        raise from_validation(exc, prefix) from None
    path = f"{prefix}." if prefix else ""
    model = data_models.get(event.type)
    if model is None:
        raise ApiError.field(
            422,
            "unknown_event_type",
            f"{path}type",
            "known_event_type",
            f"unknown event type {event.type!r}; known: {', '.join(sorted(data_models))}",
        )
    try:
        model.model_validate(event.data)
    except ValidationError as exc:
        raise from_validation(exc, f"{path}data") from None
    # The processors' rules on the data as sent (the models above coerce): hub/data_rules.py.
    problems = data_problems(event.data, topology.event_types[event.type].data)
    if problems:
        raise schema_error([ErrorItem(field=f"{path}data.{p.field}", rule=p.rule, message=p.message) for p in problems])
    if header_key is not None and not IDEMPOTENCY_KEY.match(header_key):
        # Checked here, not only in the body's model: an unchecked header became an envelope the
        # processors refuse (202, then the dead-letter topic), and an empty one gave one id to all.
        raise ApiError.field(
            422,
            "validation_failed",
            "Idempotency-Key",
            "pattern",
            "the Idempotency-Key header must be 1-200 printable ASCII characters without spaces",
        )
    if header_key is not None and event.idempotency_key is not None and header_key != event.idempotency_key:
        raise ApiError.field(
            422,
            "validation_failed",
            f"{path}idempotency_key",
            "matches_header",
            "idempotency_key in the body differs from the Idempotency-Key header",
        )
    if header_key is None and event.idempotency_key is None:
        raise ApiError.field(
            422,
            "validation_failed",
            f"{path}idempotency_key",
            "required",
            "every batch item needs its idempotency_key (the Idempotency-Key header names one event)"
            if prefix
            else "send the Idempotency-Key header or idempotency_key in the body",
        )
    return event


def check_scope(event: EventIn, verified: Verified, topology: Topology, prefix: str = "") -> None:
    """403 checks: the key may speak for this source and send this event type."""
    path = f"{prefix}." if prefix else ""
    if event.source is not None and event.source != verified.source:
        raise ApiError.field(
            403,
            "forbidden",
            f"{path}source",
            "key_source",
            f"this API key belongs to source {verified.source!r}, not {event.source!r}",
        )
    if verified.event_types is not None and event.type not in verified.event_types:
        raise ApiError.field(
            403, "forbidden", f"{path}type", "key_event_types", f"this API key may not send {event.type!r}"
        )
    allowed = topology.event_types[event.type].sources
    if verified.source not in allowed:
        raise ApiError.field(
            403,
            "forbidden",
            f"{path}type",
            "source_event_types",
            f"source {verified.source!r} may not send {event.type!r} (allowed: {', '.join(allowed)})",
        )


def build_envelope(
    event: EventIn,
    verified: Verified,
    topology: Topology,
    header_key: str | None,
    request_id: str | None,
    received_at: datetime | None = None,
) -> Prepared:
    key = event.idempotency_key or header_key
    assert key is not None  # validate_event guarantees it
    priority = event.priority or topology.default_priority(event.type)
    now = received_at or datetime.now(UTC)
    envelope = EventEnvelope.model_construct(  # fields were validated above; skip a second validation
        schema_version=1,
        event_id=derive_event_id(verified.source, key),
        type=event.type,
        source=verified.source,
        priority=priority,
        idempotency_key=key,
        occurred_at=event.occurred_at or now,
        received_at=now,
        data=event.data,
        metadata=Metadata(request_id=request_id, utm=event.metadata.utm_merged(), labels=event.metadata.labels),
    )
    return Prepared(envelope=envelope, topic=topology.priority_topic(priority))
