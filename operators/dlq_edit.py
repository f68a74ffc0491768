"""Corrections of a dead-letter record before replay: `--set path=value`, `--unset path` or a whole
new JSON document. The record's identity (delivery_id, event_id, destination) never changes, so the
destination still deduplicates the replay by its Idempotency-Key."""

from __future__ import annotations

import copy
from typing import Any

import orjson
from pydantic import ValidationError

from hub.delivery import DeliveryRecord
from hub.envelope import EventEnvelope
from operators.dlq_items import ValueKind

IDENTITY_FIELDS: dict[str, tuple[str, ...]] = {
    "delivery": ("delivery_id", "event_id", "destination"),
    "envelope": ("event_id", "source", "idempotency_key"),
}


class EditError(ValueError):
    pass


def _parse_path(path: str) -> list[str]:
    parts = [p for p in path.strip().split(".")]
    if not path.strip() or any(not p for p in parts):
        raise EditError(f"{path!r} is not a field path: use dotted names, e.g. payload.telefone or data.items.0.id")
    return parts


def _step(node: Any, part: str, path: str, create: bool) -> Any:
    if isinstance(node, dict):
        if part not in node:
            if not create:
                raise EditError(f"{path!r}: no field {part!r}")
            node[part] = {}
        return node[part]
    if isinstance(node, list):
        if not part.isdigit() or int(part) >= len(node):
            raise EditError(f"{path!r}: {part!r} is not an index of a list of {len(node)}")
        return node[int(part)]
    raise EditError(f"{path!r}: cannot go into a {type(node).__name__} at {part!r}")


def set_path(document: Any, path: str, value: Any) -> None:
    parts = _parse_path(path)
    node = document
    for part in parts[:-1]:
        node = _step(node, part, path, create=True)
    last = parts[-1]
    if isinstance(node, dict):
        node[last] = value
    elif isinstance(node, list) and last.isdigit() and int(last) < len(node):
        node[int(last)] = value
    else:
        raise EditError(f"{path!r}: cannot set {last!r} on a {type(node).__name__}")


def unset_path(document: Any, path: str) -> None:
    parts = _parse_path(path)
    node = document
    for part in parts[:-1]:
        node = _step(node, part, path, create=False)
    last = parts[-1]
    if isinstance(node, dict) and last in node:
        del node[last]
    elif isinstance(node, list) and last.isdigit() and int(last) < len(node):
        del node[int(last)]
    else:
        raise EditError(f"{path!r}: no field {last!r} to remove")


def parse_assignment(text: str) -> tuple[str, Any]:
    """`path=value`: the value is JSON when it parses as JSON (numbers, true, null, {...}), else a string."""
    path, sep, raw = text.partition("=")
    if not sep:
        raise EditError(f'--set {text!r}: use path=value, e.g. payload.telefone="+55 11 99999-0000"')
    try:
        value: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        value = raw
    return path.strip(), value


def changed_paths(before: Any, after: Any, prefix: str = "") -> list[str]:
    """Leaf paths that differ (names only: the audit never carries values)."""
    if isinstance(before, dict) and isinstance(after, dict):
        out: list[str] = []
        for key in sorted(set(before) | set(after), key=str):
            path = f"{prefix}.{key}" if prefix else str(key)
            if key not in before or key not in after:
                out.append(path)
            else:
                out.extend(changed_paths(before[key], after[key], path))
        return out
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [
            p
            for i, (a, b) in enumerate(zip(before, after, strict=True))
            for p in changed_paths(a, b, f"{prefix}.{i}" if prefix else str(i))
        ]
    return [] if before == after else [prefix or "(document)"]


def apply_edit(
    current: bytes | None, kind: ValueKind, *, sets: list[str], unsets: list[str], replacement: bytes | None
) -> tuple[bytes, list[str]]:
    """The corrected value and the changed field paths; validated so that replay can send it."""
    try:
        before: Any = orjson.loads(current) if current is not None else None
    except orjson.JSONDecodeError:
        before = None
    if replacement is not None:
        if sets or unsets:
            raise EditError("use either --file or --set/--unset, not both")
        try:
            after: Any = orjson.loads(replacement)
        except orjson.JSONDecodeError as exc:
            raise EditError(f"the replacement is not valid JSON: {exc}") from None
    else:
        if not sets and not unsets:
            raise EditError("nothing to change: give --set path=value, --unset path or --file FILE")
        if not isinstance(before, dict | list):
            raise EditError("the record is not a JSON document: replace it whole with --file")
        after = copy.deepcopy(before)
        for assignment in sets:
            path, value = parse_assignment(assignment)
            set_path(after, path, value)
        for path in unsets:
            unset_path(after, path)
    paths = changed_paths(before, after)
    if not paths:
        raise EditError("the correction changes nothing")
    _validate(kind, before, after)
    return orjson.dumps(after), paths


def _validate(kind: ValueKind, before: Any, after: Any) -> None:
    if kind not in IDENTITY_FIELDS:
        return  # unrecognised records may become anything; replay tells whether it can send them
    model: type[DeliveryRecord] | type[EventEnvelope] = DeliveryRecord if kind == "delivery" else EventEnvelope
    try:
        model.model_validate(after)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
        raise EditError(f"the corrected record is not a valid {model.__name__}: {problems}") from None
    for name in IDENTITY_FIELDS[kind]:
        if isinstance(before, dict) and isinstance(after, dict) and before.get(name) != after.get(name):
            raise EditError(f"{name} cannot change: it identifies the record (the destination dedupes on it)")
