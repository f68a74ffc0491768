"""Declarative transforms from topics.yaml: `destination_field: envelope.path` or `=literal`.

Paths walk the envelope as JSON (`data.name`, `metadata.utm`, `event_id`, `received_at`). A path that
resolves to nothing leaves the field out of the payload (optional data stays optional downstream).
The routers compile every route's map once (`compile_map`); `apply_map` is the one-off form.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

_MISSING = object()


class MappingError(ValueError):
    """A map in topics.yaml cannot be applied (bad path syntax)."""


def _parts(path: str) -> tuple[str, ...]:
    """A dotted path split into its keys; MappingError when empty or with an empty key."""
    parts = tuple(path.split("."))
    if not path or not all(parts):
        raise MappingError(f"invalid path {path!r}")
    return parts


def _walk(document: Any, parts: tuple[str, ...]) -> Any:
    """Value at the keys, or _MISSING. Only mappings are walked (no list indexing); the JSON
    documents' plain dicts without the Mapping ABC check."""
    current = document
    for part in parts:
        if isinstance(current, dict):
            current = current.get(part, _MISSING)
        elif isinstance(current, Mapping) and part in current:
            current = current[part]
        else:
            return _MISSING
        if current is _MISSING:
            return _MISSING
    return current


def resolve_path(document: Mapping[str, Any], path: str) -> Any:
    """Value at a dotted path, or _MISSING."""
    return _walk(document, _parts(path))


def compile_map(field_map: Mapping[str, str]) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """A map parsed once: a function from the envelope document to the destination payload. `=text`
    is a constant; None values are treated as missing."""
    steps = [
        (target, None, spec[1:]) if spec.startswith("=") else (target, _parts(spec), "")
        for target, spec in field_map.items()
    ]

    def apply(document: Mapping[str, Any]) -> dict[str, Any]:
        payload: dict[str, Any] = {}
        for target, parts, constant in steps:
            if parts is None:
                payload[target] = constant
                continue
            value = _walk(document, parts)
            if value is not _MISSING and value is not None:
                payload[target] = value
        return payload

    return apply


def apply_map(field_map: Mapping[str, str], document: Mapping[str, Any]) -> dict[str, Any]:
    """Build a destination payload once (the routers use `compile_map`)."""
    return compile_map(field_map)(document)


def check_map(field_map: Mapping[str, str]) -> list[str]:
    """Problems with a map's syntax (checked at worker start, so a typo fails fast)."""
    problems = []
    for target, spec in field_map.items():
        if not target:
            problems.append("empty destination field name")
        if not spec.startswith("="):
            try:
                _parts(spec)
            except MappingError:
                problems.append(f"{target}: invalid path {spec!r}")
    return problems
