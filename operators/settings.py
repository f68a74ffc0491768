"""Settings of the operator tools (the only place they read the environment, prefix CARINHO_)."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, HttpUrl, field_validator

from hub.settings import PROJECT_ROOT, HubSettings

_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class OperatorSettings(HubSettings):
    service_name: str = "operators"
    topic_namespace: str = Field(default="", description="CARINHO_TOPIC_NAMESPACE (tests, side-by-side hubs)")
    operator: str | None = Field(default=None, description="CARINHO_OPERATOR: who runs operator commands")
    # Replays go through the connectors' own rate limits too; this keeps a replay from flooding them.
    replay_rate: float = Field(default=50.0, gt=0, le=10_000, description="CARINHO_REPLAY_RATE: records/s")
    archive_dir: Path = Field(default=PROJECT_ROOT / ".run" / "dlq-archive", description="CARINHO_ARCHIVE_DIR")
    # Daily report: the processors run it every day at report_daily_at (report_timezone), for the
    # previous day, and POST it to report_webhook_url when set.
    report_daily_at: str = Field(default="06:00", description="CARINHO_REPORT_DAILY_AT, HH:MM")
    report_timezone: str = Field(default="America/Sao_Paulo", description="CARINHO_REPORT_TIMEZONE (IANA)")
    report_webhook_url: HttpUrl | None = Field(default=None, description="CARINHO_REPORT_WEBHOOK_URL")
    report_dir: Path = Field(default=PROJECT_ROOT / ".run" / "reports", description="CARINHO_REPORT_DIR")
    ops_cache_seconds: float = Field(default=2.0, ge=0.1, le=300, description="CARINHO_OPS_CACHE_SECONDS")

    @field_validator("report_daily_at")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        if not _HHMM.match(value):
            raise ValueError(f"{value!r} must be a time of day HH:MM (00:00-23:59)")
        return value

    @field_validator("report_timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone (e.g. America/Sao_Paulo)") from None
        return value
