"""Declarative transforms from topics.yaml: `destination_field: envelope.path` or `=literal`.

Paths walk the envelope as JSON (`data.name`, `metadata.utm`, `event_id`, `received_at`). A path that
resolves to nothing leaves the field out of the payload (optional data stays optional downstream).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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
    return compile_map(field_map)(document)


def compile_map(field_map: Mapping[str, str]) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """`apply_map` with the map parsed once (the routers compile every route's maps at start): paths
    split in advance, and the JSON documents' plain dicts walked without the Mapping ABC check."""
    steps: list[tuple[str, tuple[str, ...] | None, str]] = []
    for target, spec in field_map.items():
        if spec.startswith("="):
            steps.append((target, None, spec[1:]))
            continue
        if not spec or any(not part for part in spec.split(".")):
            raise MappingError(f"invalid path {spec!r}")
        steps.append((target, tuple(spec.split(".")), ""))

    def apply(document: Mapping[str, Any]) -> dict[str, Any]:
        payload: dict[str, Any] = {}
        for target, parts, constant in steps:
            if parts is None:
                payload[target] = constant
                continue
            current: Any = document
            for part in parts:
                if isinstance(current, dict):
                    current = current.get(part, _MISSING)
                elif isinstance(current, Mapping) and part in current:
                    current = current[part]
                else:
                    current = _MISSING
                if current is _MISSING:
                    break
            if current is not _MISSING and current is not None:
                payload[target] = current
        return payload

    return apply


def check_map(field_map: Mapping[str, str]) -> list[str]:
    """Problems with a map's syntax (checked at worker start, so a typo fails fast)."""
    problems = []
    for target, spec in field_map.items():
        if not target:
            problems.append("empty destination field name")
        if not spec.startswith("=") and (not spec or any(not p for p in spec.split("."))):
            problems.append(f"{target}: invalid path {spec!r}")
    return problems
