"""Settings of the `carinho` command line (the only place the CLI reads the environment)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from hub.settings import PROJECT_ROOT, HubSettings


class CliSettings(HubSettings):
    keys_backend: Literal["file", "kafka"] = Field(default="file", description="CARINHO_KEYS_BACKEND (file or kafka)")
    keys_file: Path = Field(default=PROJECT_ROOT / ".run" / "api-keys.json", description="CARINHO_KEYS_FILE")
    topic_namespace: str = Field(default="", description="CARINHO_TOPIC_NAMESPACE (tests, side-by-side hubs)")
    operator: str | None = Field(default=None, description="CARINHO_OPERATOR: who runs operator commands")
