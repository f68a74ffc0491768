"""Settings of the operator tools (the only place they read the environment, prefix CARINHO_). Like the
CLI's, they also read the running local hub's `.run/hub.env` (hub/settings.py `LocalHubSettings`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, HttpUrl

from hub.clock import TimeOfDay, TimeZoneName
from hub.settings import PROJECT_ROOT, LocalHubSettings


class OperatorSettings(LocalHubSettings):
    service_name: str = "operators"
    topic_namespace: str = Field(default="", description="CARINHO_TOPIC_NAMESPACE (tests, side-by-side hubs)")
    operator: str | None = Field(default=None, description="CARINHO_OPERATOR: who runs operator commands")
    # Replays go through the connectors' own rate limits too; this keeps a replay from flooding them.
    replay_rate: float = Field(default=50.0, gt=0, le=10_000, description="CARINHO_REPLAY_RATE: records/s")
    archive_dir: Path = Field(default=PROJECT_ROOT / ".run" / "dlq-archive", description="CARINHO_ARCHIVE_DIR")
    # Daily report: the processors run it every day at report_daily_at (report_timezone), for the
    # previous day, and POST it to report_webhook_url when set.
    report_daily_at: TimeOfDay = Field(default="06:00", description="CARINHO_REPORT_DAILY_AT, HH:MM")
    report_timezone: TimeZoneName = Field(default="America/Sao_Paulo", description="CARINHO_REPORT_TIMEZONE (IANA)")
    report_webhook_url: HttpUrl | None = Field(default=None, description="CARINHO_REPORT_WEBHOOK_URL")
    report_dir: Path = Field(default=PROJECT_ROOT / ".run" / "reports", description="CARINHO_REPORT_DIR")
