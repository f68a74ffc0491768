"""Settings of the stream processors (the only place processors/ reads the environment)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, HttpUrl, SecretStr

from hub.clock import TimeOfDay, TimeZoneName
from hub.durations import Duration
from hub.settings import PROJECT_ROOT, HubSettings
from hub.topology import Topology, load_topology


class ProcessorSettings(HubSettings):
    service_name: str = "processors"
    topic_namespace: str = Field(default="", description="CARINHO_TOPIC_NAMESPACE (tests, side-by-side hubs)")
    dedupe_window: Duration = Field(default=timedelta(days=7), description="CARINHO_DEDUPE_WINDOW, e.g. 7d")
    trail_retention: Duration = Field(default=timedelta(days=30), description="CARINHO_TRAIL_RETENTION")
    web_host: str = Field(default="127.0.0.1", description="CARINHO_WEB_HOST: bind address of /v1/trail, /metrics")
    web_port: int = Field(default=6066, ge=1, le=65535, description="CARINHO_WEB_PORT")
    data_dir: Path = Field(
        default=PROJECT_ROOT / ".run" / "processors",
        description="CARINHO_DATA_DIR: Faust state (one sub-directory per web port)",
    )
    source_urls: dict[str, str] = Field(
        default_factory=dict, description='CARINHO_SOURCE_URLS: JSON {"operacao": "http://..."}'
    )
    sandbox_url: str | None = Field(default=None, description="CARINHO_SANDBOX_URL: sources at {url}/sources/<source>")
    source_tokens: dict[str, SecretStr] = Field(  # secrets: never in a repr, a log or an error
        default_factory=dict, description="CARINHO_SOURCE_TOKENS: JSON bearer token per source"
    )
    # Priorities (processors/priority.py): most records the router takes from a lane at once (it never
    # waits to fill a batch), and records per lane before its partitions' fetch pauses.
    batch_size: int = Field(default=1000, ge=1, le=10_000)
    stream_buffer: int = Field(default=2048, ge=16, le=100_000)
    # Records per poll of aiokafka's fetcher. Until the twenty-second session 50: each polled record took
    # Faust's path one at a time before the next poll, so 200 put p1 p99 at ~365 ms under a p5 backlog
    # (docs/benchmarks.md, seventh session). A poll's records of a laned topic now go to their lane in
    # one call (processors/faust_drain.py): 200 is 5-10 % less CPU per event than 50, p1 p99 52-110 ms.
    max_poll_records: int = Field(default=200, ge=1, le=10_000)
    # The broker holds a fetch until this many bytes are there or the wait is over (processors/fetch_tuning.py).
    # Faust's 1 byte made a worker that keeps up with the trail topic fetch a few records at a time;
    # 16 KiB / 10 ms: ~9 % less CPU per event with the trail index on, p1 p50 under a p5 backlog
    # +12 ms; 64 KiB / 20 ms: ~20 % less CPU, p1 p99 ~130 ms (docs/benchmarks.md, ninth session).
    fetch_min_bytes: int = Field(default=16_384, ge=1, le=52_428_800)
    fetch_max_wait_ms: int = Field(default=10, ge=0, le=30_000)
    # ...and while nothing comes (processors/fetch_tuning.py): one fetch parked this long for its first
    # byte instead of one every FETCH_MAX_WAIT_MS (an idle worker spent ~19 % of a core on those).
    fetch_idle_wait_ms: int = Field(default=500, ge=1, le=30_000)
    gil_switch_interval: float = Field(default=0.005, gt=0, le=0.1, description="sys.setswitchinterval")
    # aiokafka on the worker's own loop (processors/faust_inline_consumer.py): ~14 % less CPU per event
    # than in Faust's consumer thread, ~20 % more events/s (docs/benchmarks.md, tenth session).
    consumer_thread: bool = Field(
        default=False, description="CARINHO_CONSUMER_THREAD: aiokafka in a thread of its own, as Faust ships it"
    )
    # Scheduler of delayed messages and sync timer.
    scheduler_tick: float = Field(default=1.0, gt=0, le=60)
    sync_check_interval: float = Field(default=30.0, gt=0, le=3600)
    sync_retry_after: Duration = Field(default=timedelta(minutes=5), description="after a failed run")
    sync_enabled: bool = Field(default=True, description="CARINHO_SYNC_ENABLED: run scheduled syncs on the leader")
    sync_http_timeout: float = Field(default=10.0, gt=0, le=300)
    trail_index_enabled: bool = Field(default=True, description="serve /v1/trail from this worker")
    standby_replicas: int = Field(default=1, ge=0, le=5)
    # How the standby copies are kept: "follower" (processors/table_follower.py: every partition not
    # active here, read in bulk) or "faust" (Faust's standby replicas, read record by record).
    standby_mode: Literal["follower", "faust"] = Field(default="follower", description="CARINHO_STANDBY_MODE")
    # Where the tables (dedupe, delayed messages, trail index) live between changelog replays: on disk
    # (processors/state_store.py, memory bounded) or in a dict (grows with the dedupe window and the
    # trail retention; kept for comparisons).
    table_store: Literal["rocksdb", "memory"] = Field(default="rocksdb", description="CARINHO_TABLE_STORE")
    # Before Faust starts, read the tables' changelogs up to their ends with a plain consumer, in bulk
    # (processors/changelog_catch_up.py); off, Faust's recovery reads them record by record.
    changelog_catch_up: bool = Field(default=True, description="CARINHO_CHANGELOG_CATCH_UP")
    commit_interval: float = Field(default=1.0, gt=0, le=60)
    # The daily report (operators.report), run by the group leader for the previous day.
    report_enabled: bool = Field(default=True, description="CARINHO_REPORT_ENABLED")
    report_check_interval: float = Field(default=60.0, gt=0, le=3600, description="CARINHO_REPORT_CHECK_INTERVAL")
    report_daily_at: TimeOfDay = Field(default="06:00", description="CARINHO_REPORT_DAILY_AT, HH:MM local")
    report_timezone: TimeZoneName = Field(default="America/Sao_Paulo", description="CARINHO_REPORT_TIMEZONE")
    report_webhook_url: HttpUrl | None = Field(default=None, description="CARINHO_REPORT_WEBHOOK_URL: POST it here")
    report_dir: Path = Field(default=PROJECT_ROOT / ".run" / "reports", description="CARINHO_REPORT_DIR")
    # The routers' output producers (confluent-kafka, processors/output.py): records of events at
    # priority <= output_urgent_max_priority wait at most output_urgent_linger_ms to be sent, all the
    # others (bulk events, trail and changelog records, delayed messages) output_linger_ms. 50 ms for
    # the bulk: -25 % CPU per event and +16 % events/s against 5 ms (benchmarks.md, twelfth session).
    output_linger_ms: int = Field(default=50, ge=0, le=1000, description="CARINHO_OUTPUT_LINGER_MS")
    output_urgent_linger_ms: int = Field(default=5, ge=0, le=1000, description="CARINHO_OUTPUT_URGENT_LINGER_MS")
    output_urgent_max_priority: int = Field(default=2, ge=0, le=5, description="CARINHO_OUTPUT_URGENT_MAX_PRIORITY")
    output_compression: Literal["none", "lz4", "zstd", "snappy", "gzip"] = Field(
        default="lz4", description="CARINHO_OUTPUT_COMPRESSION"
    )

    def topology(self) -> Topology:
        topology = load_topology(self.topology_file)
        return topology.with_namespace(self.topic_namespace) if self.topic_namespace else topology

    def source_url(self, source: str) -> str:
        """Base URL of a source system's API (sync feeds): explicit URL, else the sandbox."""
        if source in self.source_urls:
            return self.source_urls[source].rstrip("/")
        if self.sandbox_url:
            return f"{self.sandbox_url.rstrip('/')}/sources/{source}"
        raise LookupError(f"no URL for source {source!r}: set CARINHO_SOURCE_URLS or CARINHO_SANDBOX_URL")

    def source_bearer_tokens(self) -> dict[str, str]:
        """The sync sources' tokens in clear, for their Authorization header only."""
        return {source: token.get_secret_value() for source, token in self.source_tokens.items()}

    @property
    def worker_data_dir(self) -> Path:
        return self.data_dir / f"worker-{self.web_port}"
