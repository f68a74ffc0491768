"""Declarative transforms from topics.yaml: `destination_field: envelope.path` or `=literal`.

Paths walk the envelope as JSON (`data.name`, `metadata.utm`, `event_id`, `received_at`). A path that
resolves to nothing leaves the field out of the payload (optional data stays optional downstream).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_MISSING = object()


class MappingError(ValueError):
    """A map in topics.yaml cannot be applied (bad path syntax)."""


def resolve_path(document: Mapping[str, Any], path: str) -> Any:
    """Value at a dotted path, or _MISSING. Only mappings are walked (no list indexing)."""
    if not path or any(not part for part in path.split(".")):
        raise MappingError(f"invalid path {path!r}")
    current: Any = document
    for part in path.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return _MISSING
        current = current[part]
    return current


def apply_map(field_map: Mapping[str, str], document: Mapping[str, Any]) -> dict[str, Any]:
    """Build a destination payload. `=text` is a constant; None values are treated as missing."""
    payload: dict[str, Any] = {}
    for target, spec in field_map.items():
        if spec.startswith("="):
            payload[target] = spec[1:]
            continue
        value = resolve_path(document, spec)
        if value is _MISSING or value is None:
            continue
        payload[target] = value
    return payload


def check_map(field_map: Mapping[str, str]) -> list[str]:
    """Problems with a map's syntax (checked at worker start, so a typo fails fast)."""
    problems = []
    for target, spec in field_map.items():
        if not target:
            problems.append("empty destination field name")
        if not spec.startswith("=") and (not spec or any(not p for p in spec.split("."))):
            problems.append(f"{target}: invalid path {spec!r}")
    return problems
