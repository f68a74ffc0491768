"""Native webhook payloads (the site's lead form, Z-API's inbound message callback) mapped to events
by topics.yaml `sources.<source>.webhooks` — no code per integration."""

from __future__ import annotations

import re
from typing import Any

from hub.data_rules import is_blank
from hub.topology import Source, WebhookMapping
from ingress.errors import ApiError
from ingress.event_schemas import MAX_STRING

_MISSING = object()


def lookup(payload: Any, path: str) -> Any:
    """Value at a dotted path ("text.message"), `=literal` for a constant, _MISSING when absent.
    Alternatives separated by "|" ("text.message|image.caption") give the first present, non-blank
    value: Z-API puts a message's text in a different place for each media type."""
    if "|" in path:
        for alternative in path.split("|"):
            value = lookup(payload, alternative)
            if value is not _MISSING and not is_blank(value):
                return value
        return _MISSING
    if path.startswith("="):
        return path[1:]
    value = payload
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def _matches(mapping: WebhookMapping, payload: dict[str, Any]) -> bool:
    return all(lookup(payload, key) == expected for key, expected in mapping.when.items()) and not any(
        lookup(payload, key) == excluded for key, excluded in mapping.unless.items()
    )


def select_mapping(source: Source, payload: dict[str, Any], hook: str | None) -> tuple[str, WebhookMapping] | None:
    """The named mapping, or the first whose `when` matches; None means "not an event for us"."""
    if hook is not None:
        mapping = source.webhooks.get(hook)
        if mapping is None:
            raise ApiError.field(
                404,
                "unknown_webhook",
                "hook",
                "known_webhook",
                f"no webhook {hook!r}; this source has: {', '.join(sorted(source.webhooks)) or 'none'}",
            )
        return (hook, mapping) if _matches(mapping, payload) else None
    for name, mapping in source.webhooks.items():
        if _matches(mapping, payload):
            return name, mapping
    return None


def to_event(mapping: WebhookMapping, payload: dict[str, Any]) -> dict[str, Any]:
    """Build a POST /v1/events body from the native payload."""
    key = lookup(payload, mapping.idempotency_key)
    if key is _MISSING or key in (None, ""):
        raise ApiError.field(
            422,
            "validation_failed",
            mapping.idempotency_key,
            "required",
            f"the webhook payload needs '{mapping.idempotency_key}' (its idempotency key)",
        )
    # Forms send "" for an input left empty, and autofill leaves spaces: a blank value is an absent
    # one (an optional e-mail left blank must not refuse the lead), text is trimmed.
    data = {
        name: _fit(value.strip()) if isinstance(value, str) else value
        for name, path in mapping.data.items()
        if (value := lookup(payload, path)) is not _MISSING and not is_blank(value)
    }
    metadata = {
        name: str(value)
        for name, path in mapping.metadata.items()
        if (value := lookup(payload, path)) is not _MISSING and value not in (None, "")
    }
    return {"type": mapping.event_type, "data": data, "idempotency_key": str(key), "metadata": metadata}


# A string field of an event holds at most MAX_STRING characters. A sender's text can be longer (a
# WhatsApp message up to ~65,000): cut, marked, rather than refusing the lead, which the gateway
# cannot fix by retrying.
_CUT = " […]"


def _fit(text: str) -> str:
    return text if len(text) <= MAX_STRING else text[: MAX_STRING - len(_CUT)] + _CUT


_DATA_FIELD = re.compile(r"^data\.([^.\[]+)(.*)$")


def native_fields(error: ApiError, mapping: WebhookMapping) -> ApiError:
    """The same refusal with each `data.<name>` field named as the sender's payload names it (the
    site form's `telefone`, Z-API's `text.message`): the sender cannot know the event's names.
    Fields the mapping sets to a constant keep the event's name."""

    def native(field: str) -> str:
        if field == "idempotency_key" and not mapping.idempotency_key.startswith("="):
            return mapping.idempotency_key  # the site form's form_id, Z-API's messageId
        match = _DATA_FIELD.match(field)
        path = mapping.data.get(match.group(1)) if match else None
        if match is None or path is None or path.startswith("="):
            return field
        return path.split("|", 1)[0] + match.group(2)  # of alternatives, the first names the field

    items, message = [], error.message
    for item in error.errors:
        renamed = native(item.field)
        if renamed != item.field:
            message = message.replace(f"{item.field}:", f"{renamed}:")
        items.append(item.model_copy(update={"field": renamed}))
    return ApiError(error.status, error.error, message, items, error.headers)
