"""Settings every service shares. Each service has one frozen model that extends `HubSettings`
(ingress/settings.py, processors/settings.py, connectors/settings.py, operators/settings.py,
cli/settings.py); only those
models read the environment (prefix CARINHO_)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, DotEnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

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


# The command line's models (cli/settings.py, operators/settings.py; nothing a service runs with) also
# read the running local hub's settings: `make up` (deploy/local/hub.sh) writes the addresses and ports
# it gave the services to `.run/hub.env` and `make down` removes it, so `carinho trace`, `sync run`,
# `dlq ...` typed in a plain shell talk to that hub. Real environment variables win over the file.
# CARINHO_HUB_ENV_FILE names another file (a hub started with HUB_RUN_DIR) or, set empty, none: the
# test suite does that, so a developer's stale file never leaks into it.
HUB_ENV_FILE = PROJECT_ROOT / ".run" / "hub.env"


class HubEnvFile(BaseSettings):
    """Where the running local hub's settings are (read before the models below, which load it)."""

    model_config = SettingsConfigDict(env_prefix="CARINHO_", frozen=True, extra="ignore")

    hub_env_file: str = Field(default=str(HUB_ENV_FILE), description="CARINHO_HUB_ENV_FILE ('' = read none)")

    def path(self) -> Path | None:
        return Path(self.hub_env_file) if self.hub_env_file else None


class LocalHubSettings(HubSettings):
    """HubSettings, plus the running local hub's `.run/hub.env` under the environment (CLI models only)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        hub_env = DotEnvSettingsSource(settings_cls, env_file=HubEnvFile().path())
        return init_settings, env_settings, hub_env, file_secret_settings
