"""Settings of the `carinho` command line (the only place the CLI reads the environment). Like the
operator tools' (operators/settings.py), they also read the running local hub's `.run/hub.env`
(hub/settings.py `LocalHubSettings` explains)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from hub.settings import PROJECT_ROOT, LocalHubSettings


class CliSettings(LocalHubSettings):
    keys_backend: Literal["file", "kafka"] = Field(default="file", description="CARINHO_KEYS_BACKEND (file or kafka)")
    keys_file: Path = Field(default=PROJECT_ROOT / ".run" / "api-keys.json", description="CARINHO_KEYS_FILE")
    topic_namespace: str = Field(default="", description="CARINHO_TOPIC_NAMESPACE (tests, side-by-side hubs)")
    operator: str | None = Field(default=None, description="CARINHO_OPERATOR: who runs operator commands")
    # What `sync run`, `sync status` and `trace` need of the processors' settings (same variable names as
    # processors/settings.py and the ingress's CARINHO_PROCESSORS_URL), so they reach the running hub.
    sandbox_url: str | None = Field(default=None, description="CARINHO_SANDBOX_URL: sources at {url}/sources/<source>")
    source_urls: dict[str, str] = Field(
        default_factory=dict, description='CARINHO_SOURCE_URLS: JSON {"operacao": "http://..."}'
    )
    processors_url: str | None = Field(
        default=None, description="CARINHO_PROCESSORS_URL: the processors' web URL (`carinho trace`)"
    )

    def processor_overrides(self) -> dict[str, Any]:
        """The settings a CLI command passes on to ProcessorSettings: those set in the environment or in
        the hub's file (ProcessorSettings itself never reads the file: the service must not)."""
        shared = {"kafka_bootstrap_servers", "topic_namespace", "sandbox_url", "source_urls", "topology_file"}
        return {name: getattr(self, name) for name in shared & self.model_fields_set}
