"""Settings every service shares. Each service has one frozen model that extends `HubSettings`
(ingress/settings.py, processors/settings.py, connectors/settings.py, cli/settings.py); only those
models read the environment (prefix CARINHO_)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class HubSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CARINHO_", frozen=True, extra="ignore")

    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092", description="CARINHO_KAFKA_BOOTSTRAP_SERVERS: comma-separated host:port"
    )
    topology_file: Path = Field(default=PROJECT_ROOT / "topics.yaml", description="CARINHO_TOPOLOGY_FILE")
    cluster_profile: str = Field(default="local", description="replication profile from topics.yaml")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    service_name: str = "carinho"
    gc_tuning: bool = Field(
        default=True,
        description="CARINHO_GC_TUNING: freeze the start-up heap, collect young objects less often (hub/gc_tuning)",
    )
