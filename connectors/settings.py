"""Settings of the connectors service (the only place it reads the environment, prefix CARINHO_)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from hub.settings import HubSettings
from hub.topology import Topology, load_topology


class ConnectorSettings(HubSettings):
    service_name: str = "connectors"
    topic_namespace: str = Field(default="", description="CARINHO_TOPIC_NAMESPACE (tests, side-by-side hubs)")

    # Where deliveries go. destination_urls wins; else sandbox_url/<destination>.
    destination_urls: dict[str, str] = Field(
        default_factory=dict, description='CARINHO_DESTINATION_URLS: JSON {"crm": "https://..."}'
    )
    sandbox_url: str | None = Field(default=None, description="CARINHO_SANDBOX_URL, e.g. http://127.0.0.1:8090")

    # Credentials. Auth header per destination (topics.yaml destinations.<d>.auth) gets this token.
    destination_tokens: dict[str, SecretStr] = Field(
        default_factory=dict, description='CARINHO_DESTINATION_TOKENS: JSON {"crm": "token"}'
    )
    # HMAC-SHA256 signing per destination; several secrets = rotation (newest first, all sign).
    signing_secrets: dict[str, list[SecretStr]] = Field(
        default_factory=dict, description='CARINHO_SIGNING_SECRETS: JSON {"crm": ["new", "old"]}'
    )

    # Z-API (WhatsApp). Base URL defaults to the whatsapp destination URL (sandbox: <sandbox>/whatsapp).
    zapi_base_url: str | None = Field(default=None, description="CARINHO_ZAPI_BASE_URL, e.g. https://api.z-api.io")
    zapi_instance: SecretStr | None = None
    zapi_token: SecretStr | None = None
    zapi_client_token: SecretStr | None = None
    sms_path: str = Field(default="/messages", pattern=r"^/", description="path of the SMS provider's send API")

    # HTTP client: the lean asyncio/httptools pool (default, ~8x less CPU per request than aiohttp here),
    # the httpx API over aiohttp's connector, or httpx's own httpcore pool.
    http_transport: Literal["native", "aiohttp", "httpx"] = "native"

    # Local status server (/health, /status, /metrics); 0 disables it.
    status_host: str = "127.0.0.1"
    status_port: int = Field(default=9108, ge=0, le=65535)

    # Tuning.
    max_buffered: int = Field(default=1000, ge=1, description="records held per destination before pausing")
    commit_interval_ms: int = Field(default=200, ge=10)
    health_interval_s: float = Field(default=30.0, gt=0)
    shutdown_grace_s: float = Field(default=10.0, ge=0)
    delivered_cache_size: int = Field(default=50_000, ge=0, description="recent delivery_ids skipped as duplicates")
    # librdkafka fetch of each destination's consumer (deliver.<d> + its retry tiers, ~36 partitions):
    # the broker answers once it has fetch_min_bytes for it, or after fetch_max_wait_ms.
    # (Named apart from the processors' CARINHO_FETCH_*: make up gives every service the same environment.)
    connector_fetch_min_bytes: int = Field(
        default=1, ge=1, le=1_048_576, description="CARINHO_CONNECTOR_FETCH_MIN_BYTES"
    )
    # 500 (librdkafka's default): with min 1 byte the broker answers as soon as a record lands, so the
    # wait only bounds an idle fetch; at 100 ms the nine destinations' idle fetches cost an idle hub's
    # broker ~0.07-0.12 of a core more (docs/benchmarks.md, bench.hub_idle). What waits longer: a
    # partition resumed (a retry tier's record coming due) or newly assigned is fetched when the
    # parked fetch returns, <= 500 ms.
    connector_fetch_max_wait_ms: int = Field(
        default=500, ge=1, le=10_000, description="CARINHO_CONNECTOR_FETCH_MAX_WAIT_MS"
    )

    def topology(self) -> Topology:
        topology = load_topology(self.topology_file)
        return topology.with_namespace(self.topic_namespace) if self.topic_namespace else topology

    def base_url(self, destination: str) -> str:
        if destination in self.destination_urls:
            return self.destination_urls[destination].rstrip("/")
        if self.sandbox_url:
            return f"{self.sandbox_url.rstrip('/')}/{destination}"
        raise ValueError(
            f"no base URL for destination {destination!r}: set CARINHO_DESTINATION_URLS or CARINHO_SANDBOX_URL"
        )

    def zapi_credentials(self) -> tuple[str, str, str]:
        """(instance, token, client token); sandbox placeholders when running against the sandbox."""
        values = (self.zapi_instance, self.zapi_token, self.zapi_client_token)
        if all(v is not None for v in values):
            return tuple(v.get_secret_value() for v in values if v is not None)  # type: ignore[return-value]
        if self.sandbox_url and "whatsapp" not in self.destination_urls and self.zapi_base_url is None:
            return ("sandbox-instance", "sandbox-token", "sandbox-client-token")
        raise ValueError("Z-API needs CARINHO_ZAPI_INSTANCE, CARINHO_ZAPI_TOKEN and CARINHO_ZAPI_CLIENT_TOKEN")
