"""Settings of the ingress service (the only place it reads the environment, prefix CARINHO_)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from hub.settings import PROJECT_ROOT, HubSettings


class IngressSettings(HubSettings):
    service_name: str = "ingress"
    host: str = Field(default="127.0.0.1", description="CARINHO_HOST")
    port: int = Field(
        default=8080, ge=1, le=65535, description="CARINHO_PORT (`make up` sets it from CARINHO_INGRESS_PORT)"
    )
    keys_backend: Literal["file", "kafka"] = Field(
        default="file", description="CARINHO_KEYS_BACKEND: the JSON file (one host) or the api-keys topic (replicas)"
    )
    keys_file: Path = Field(default=PROJECT_ROOT / ".run" / "api-keys.json", description="CARINHO_KEYS_FILE")
    topic_namespace: str = Field(default="", description="CARINHO_TOPIC_NAMESPACE")
    max_body_bytes: int = Field(default=1_048_576, ge=1024, description="request body limit (413 above)")
    max_header_bytes: int = Field(
        default=65_536, ge=4096, description="CARINHO_MAX_HEADER_BYTES: request line + headers (431 above)"
    )
    batch_max_events: int = Field(default=500, ge=1, le=10_000)
    # Past this, the ingress answers 503 + Retry-After instead of holding the client (and librdkafka
    # stops retrying the write at the same bound, so a 503 is never followed by a silent success).
    publish_timeout_s: float = Field(default=5.0, gt=0.1, le=120)
    publish_linger_ms: int = Field(
        default=2, ge=0, le=100, description="CARINHO_PUBLISH_LINGER_MS: librdkafka linger.ms of the events' producer"
    )
    retry_after_s: int = Field(default=5, ge=1, le=3600)
    processors_url: str = Field(default="http://127.0.0.1:6066", description="trail lookups (GET /v1/events/{id})")
    connectors_url: str = Field(default="http://127.0.0.1:9108", description="connector health for /health/detailed")
    audit_to_kafka: bool = Field(default=True, description="also write the request audit to the audit topic (90 d)")
    keys_reload_interval_s: float = Field(default=1.0, ge=0.1)
    ops_cache_seconds: float = Field(
        default=2.0, ge=0.1, le=300, description="CARINHO_OPS_CACHE_SECONDS: how long /ops reuses its summary"
    )
