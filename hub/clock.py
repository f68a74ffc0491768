"""Wall-clock settings shared by topics.yaml and the services: a time of day ("06:00") and an IANA
time zone ("America/Sao_Paulo"), each refused with a message naming the rule."""

from __future__ import annotations

import re
from datetime import time
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator

_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def check_time_of_day(value: str) -> str:
    if not _HHMM.match(value):
        raise ValueError(f"{value!r} must be a time of day HH:MM (00:00-23:59)")
    return value


def check_time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not an IANA time zone (e.g. America/Sao_Paulo, UTC)") from None
    return value


def parse_time_of_day(value: str) -> time:
    hour, minute = check_time_of_day(value).split(":")
    return time(int(hour), int(minute))


TimeOfDay = Annotated[str, AfterValidator(check_time_of_day)]
TimeZoneName = Annotated[str, AfterValidator(check_time_zone)]
