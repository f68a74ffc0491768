"""Human durations used in topics.yaml ("500ms", "10s", "5m", "2h", "30d")."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")


def parse_duration(value: Any) -> timedelta:
    """Parse "10s"/"2h"/"30d" (or a timedelta) into a timedelta; raise ValueError naming the rule."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError("must be a duration string such as 500ms, 10s, 5m, 2h or 30d")
    match = _PATTERN.match(value)
    if not match:
        raise ValueError(f"{value!r} is not a duration: use a number and one of ms, s, m, h, d, w (e.g. 30d)")
    amount, unit = float(match.group(1)), match.group(2)
    if amount <= 0:
        raise ValueError(f"{value!r} must be greater than zero")
    return timedelta(seconds=amount * _UNITS[unit])


def format_duration(value: timedelta) -> str:
    seconds = value.total_seconds()
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{round(seconds * 1000)}ms"


Duration = Annotated[timedelta, BeforeValidator(parse_duration), PlainSerializer(format_duration)]
