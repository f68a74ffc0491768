"""OpenAPI text and examples for /docs. The bodies are read by hand (to keep the documented check
order 401 -> 415/413/400/422 -> 403), so their schemas are declared here from the same models."""

from __future__ import annotations

from typing import Any

from ingress.event_schemas import Accepted, BatchIn, BatchResult, ErrorBody, EventIn

DESCRIPTION = """
Source systems (Site, CRM, Operação, Cuidadores, WhatsApp via Z-API...) send events here.
An event is answered **202** only after Kafka acknowledged it (acks=all) on `events.p{priority}`;
otherwise **503** with `Retry-After` — retry with the same idempotency key and you get the same
`event_id`.

Authentication: `X-API-Key: ck_...` (or `Authorization: Bearer ck_...`). Every error is JSON:
`{"status", "error", "message", "errors": [{"field", "rule", "message"}], "request_id"}`.
Checks run in this order: 401 key, 429 rate limit, 415 content type, 413 size, 400 JSON,
422 schema / event type / idempotency key, 403 key scope, 503 broker.
"""

TAGS = [
    {"name": "events", "description": "Send events; read an event's trail"},
    {"name": "webhooks", "description": "Native payloads mapped to events by topics.yaml"},
    {"name": "health", "description": "Liveness, dependency checks, status and metrics"},
]


def _error(status: int, error: str, field: str, rule: str, message: str) -> dict[str, Any]:
    return {
        "model": ErrorBody,
        "content": {
            "application/json": {
                "example": {
                    "status": status,
                    "error": error,
                    "message": message,
                    "errors": [{"field": field, "rule": rule, "message": message}],
                    "request_id": "4f1c0e9a7b2d4e558a0c3f6d2b1e9a74",
                }
            }
        },
    }


_COMMON_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {
        **_error(400, "malformed_json", "(body)", "json", "the body is not valid JSON"),
        "description": "Malformed JSON",
    },
    401: {
        **_error(401, "unauthorized", "X-API-Key", "required", "send your API key in X-API-Key"),
        "description": "Missing or invalid API key",
    },
    403: {
        **_error(403, "forbidden", "type", "key_event_types", "this API key may not send 'cliente.created'"),
        "description": "Key not allowed for this source or event type",
    },
    413: {
        **_error(413, "payload_too_large", "(body)", "max_bytes", "the body is larger than 1048576 bytes"),
        "description": "Body over the limit",
    },
    415: {
        **_error(415, "unsupported_media_type", "Content-Type", "application/json", "send JSON"),
        "description": "Wrong content type",
    },
    422: {
        **_error(
            422,
            "validation_failed",
            "data.phone",
            "phone",
            "must be a phone number with 10-13 digits (area code included)",
        ),
        "description": "Schema violation, unknown event type or missing idempotency key",
    },
    429: {
        **_error(429, "rate_limited", "X-API-Key", "rate_limit", "more than 50 requests/s for this key"),
        "description": "Rate limit exceeded (see Retry-After)",
    },
    503: {
        **_error(
            503, "unavailable", "(broker)", "persisted", "the event was NOT accepted: Kafka did not acknowledge it"
        ),
        "description": "Not persisted; retry after Retry-After with the same idempotency key",
    },
}

EVENT_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {
        "description": "Persisted on events.p{priority}",
        "content": {
            "application/json": {
                "example": {
                    "event_id": "e0dea4a2-db0e-5f90-bd34-514dc04b8c94",
                    "status": "accepted",
                    "topic": "events.p2",
                    "priority": 2,
                }
            }
        },
    },
    **_COMMON_ERRORS,
}
BATCH_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"model": BatchResult, "description": "Every item persisted"},
    207: {"model": BatchResult, "description": "Some items refused: see each result's status and error"},
    **_COMMON_ERRORS,
}
WEBHOOK_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Payload acknowledged but not an event (e.g. a Z-API status callback)",
        "content": {
            "application/json": {"example": {"status": "ignored", "reason": "no webhook mapping matches this payload"}}
        },
    },
    202: {"model": Accepted, "description": "Mapped and persisted"},
    404: {
        **_error(404, "unknown_webhook", "source", "known_webhook_source", "no webhook for source 'x'"),
        "description": "No webhook configured for this source",
    },
    **_COMMON_ERRORS,
}

_IDEMPOTENCY_HEADER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Required unless idempotency_key is in the body. Same key, same source -> same event_id.",
    "schema": {"type": "string", "maxLength": 200},
    "example": "site-form-7f3a9c",
}
_REQUEST_ID_HEADER = {
    "name": "X-Request-ID",
    "in": "header",
    "required": False,
    "description": "Correlation id, echoed back and logged; generated when absent.",
    "schema": {"type": "string", "maxLength": 128},
}


def event_request_body() -> dict[str, Any]:
    return {
        "parameters": [_IDEMPOTENCY_HEADER, _REQUEST_ID_HEADER],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": EventIn.model_json_schema(ref_template="#/components/schemas/{model}"),
                    "examples": {
                        "lead": {
                            "summary": "A lead from the site form",
                            "value": EventIn.model_json_schema()["examples"][0],
                        },
                        "servico": {
                            "summary": "A completed service (Operação)",
                            "value": {
                                "type": "servico.completed",
                                "idempotency_key": "servico-99812-done",
                                "data": {
                                    "servico_id": "99812",
                                    "cliente_id": "C-120",
                                    "cuidador_id": "881",
                                    "completed_at": "2026-11-29T14:00:00-03:00",
                                    "hours": 6,
                                },
                            },
                        },
                    },
                }
            },
        },
    }


def batch_request_body() -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": BatchIn.model_json_schema(),
                    "example": BatchIn.model_json_schema()["examples"][0],
                }
            },
        }
    }


def webhook_request_body() -> dict[str, Any]:
    return {
        "parameters": [
            {
                "name": "token",
                "in": "query",
                "required": False,
                "schema": {"type": "string"},
                "description": "API key for gateways that cannot send headers (Z-API)",
            }
        ],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"type": "object"},
                    "examples": {
                        "site": {
                            "summary": "Site lead form (POST /v1/webhooks/site)",
                            "value": {
                                "form_id": "f-20261129-0042",
                                "nome": "Maria Souza",
                                "telefone": "11987654321",
                                "email": "maria@example.com",
                                "mensagem": "Preciso de cuidadora para minha mãe",
                                "utm_source": "instagram",
                                "utm_campaign": "dia-das-maes",
                            },
                        },
                        "zapi": {
                            "summary": "Z-API inbound message (POST /v1/webhooks/whatsapp?token=...)",
                            "value": {
                                "type": "ReceivedCallback",
                                "fromMe": False,
                                "messageId": "3EB0C767D097B7C7C030",
                                "phone": "5511987654321",
                                "senderName": "João",
                                "momment": 1764420000000,
                                "text": {"message": "Oi, quero saber sobre cuidadores"},
                            },
                        },
                    },
                }
            },
        },
    }


TRAIL_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The event's hops in time order (personal data masked)",
        "content": {
            "application/json": {
                "example": {
                    "event_id": "e0dea4a2-db0e-5f90-bd34-514dc04b8c94",
                    "found": True,
                    "hops": [
                        {"hop": "accepted", "at": "2026-11-29T17:00:00.120000Z", "service": "ingress", "detail": {}},
                        {"hop": "routed", "at": "2026-11-29T17:00:00.131000Z", "service": "processors", "detail": {}},
                    ],
                }
            }
        },
    },
    401: _COMMON_ERRORS[401],
    404: {
        "description": "No trail for this id (unknown, or older than the trail's retention)",
        "content": {"application/json": {"example": {"event_id": "…", "hops": [], "found": False}}},
    },
    422: {
        **_error(422, "validation_failed", "event_id", "uuid", "event_id must be a UUID"),
        "description": "Not a UUID",
    },
    503: {
        **_error(503, "unavailable", "(processors)", "reachable", "the trail index (processors) is unreachable"),
        "description": "The processors (trail index) do not answer; retry after Retry-After",
    },
}

# Where the API key goes. /docs shows an "Authorize" button for these, so "Try it out" sends the key.
SECURITY_SCHEMES: dict[str, Any] = {
    "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "ck_... (one per source)"},
    "Bearer": {"type": "http", "scheme": "bearer", "description": "the same key as `Authorization: Bearer ck_...`"},
    "WebhookToken": {
        "type": "apiKey",
        "in": "query",
        "name": "token",
        "description": "webhooks only: for gateways that cannot set a header (Z-API)",
    },
}


def add_security(schema: dict[str, Any]) -> dict[str, Any]:
    """Declare the API key schemes and require one on every /v1 operation (webhooks also take the
    query token); /health, /status, /metrics and /ops stay open, as they are."""
    schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
    for path, operations in schema.get("paths", {}).items():
        if not path.startswith("/v1/"):
            continue
        schemes: list[dict[str, list[str]]] = [{"ApiKey": []}, {"Bearer": []}]
        if path.startswith("/v1/webhooks/"):
            schemes.append({"WebhookToken": []})
        for operation in operations.values():
            operation["security"] = schemes
    return schema
