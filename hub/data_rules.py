"""The data rules an event must meet to be routed, in one place for the ingress (which refuses with 422)
and the processors (which dead-letter a record written straight to Kafka): required fields present and
not blank, declared fields of the right JSON kind (extra fields pass).

The ingress's pydantic models alone were laxer (they coerce "6.5" to a number, an epoch to a datetime,
accept "" for a required field) while the envelope carries the value as sent: such an event was
answered 202 and then dead-lettered by the processors. Both now apply these rules to the raw data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hub.topology import DataSpec

_KIND_CHECKS: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "datetime": (str,),
    "date": (str,),
    "email": (str,),
    "phone": (str,),
    "cpf": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}
# What each kind is in JSON, for the error message ("must be a JSON number").
_JSON_NAMES = {
    "integer": "a JSON integer",
    "number": "a JSON number",
    "boolean": "true or false",
    "object": "an object",
}


@dataclass(frozen=True)
class DataProblem:
    field: str  # the field's name inside `data`
    rule: str  # "required", or the declared kind ("number", "datetime"...)
    message: str


def data_problems(data: Mapping[str, Any], spec: DataSpec) -> list[DataProblem]:
    """Every rule `data` breaks; empty when it may be routed."""
    problems = [
        DataProblem(name, "required", f"missing required field {name!r} (absent, null or blank)")
        for name in spec.required
        if is_blank(data.get(name))
    ]
    for name, kind in spec.fields.items():
        value = data.get(name)
        if value is None:
            continue
        allowed = _KIND_CHECKS[kind]
        if type(value) in allowed:  # JSON values are exact str/int/float/bool/dict/list: the usual case
            continue
        if (isinstance(value, bool) and bool not in allowed) or not isinstance(value, allowed):
            expected = _JSON_NAMES.get(kind, "a JSON string")
            problems.append(DataProblem(name, kind, f"field {name!r} must be {kind} ({expected}, as sent)"))
    return problems


def is_blank(value: Any) -> bool:
    """Absent for the rules: null, or a string of nothing but whitespace (forms send "" for an empty input)."""
    return value is None or (isinstance(value, str) and not value.strip())
