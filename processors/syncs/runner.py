"""Run one scheduled sync: pull the source's change feed since the last watermark (paginated), emit
each item as an EventEnvelope on events.p{priority} (the normal routing path: dedupe, routes,
automations), and record the new watermark only after every event is acknowledged by Kafka.

Crash-safety: the watermark moves only after the whole feed is drained and emitted, so a crash
mid-run re-pulls from the old watermark; re-emitted items carry the same idempotency key
(`sync:<name>:<id>:<updated_at>`) and are dropped by the processors' dedupe.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from confluent_kafka import Producer

from hub.clock import parse_time_of_day
from hub.envelope import EventEnvelope, Metadata, new_envelope
from hub.kafka_config import producer_config
from hub.masking import mask_text
from hub.topology import Sync, Topology
from processors import metrics
from processors.syncs.watermarks import SyncState, SyncStateStore

log = logging.getLogger("processors.syncs")

MAX_PAGES = 10_000  # bounded loop: a feed that never ends is an error, not a hang


class SyncError(RuntimeError):
    pass


class SyncConfigError(SyncError):
    """Found before the source is contacted (no URL for it): `carinho sync run` reports it and records
    nothing; a worker's scheduled run records it as a failure (its alert is how a misconfigured worker
    gets noticed)."""


def feed_url(topology: Topology, name: str, base_url: Callable[[str], str]) -> str:
    """The change feed of sync `name`: its source's base URL (ProcessorSettings.source_url) + its path."""
    sync = topology.syncs[name]
    try:
        return base_url(sync.source) + sync.path
    except LookupError as exc:
        raise SyncConfigError(str(exc.args[0]) if exc.args else str(exc)) from exc


@dataclass(frozen=True)
class SyncResult:
    sync: str
    ok: bool
    items: int
    pages: int
    watermark: str | None
    duration_ms: float
    error: str | None = None


def next_due(sync: Sync, state: SyncState, retry_after: timedelta) -> datetime | None:
    """When the sync should run next; None = now (never ran)."""
    if state.last_run_at is None:
        return None
    if state.consecutive_failures > 0:
        return state.last_run_at + min(retry_after, sync.every)
    last_ok = state.last_success_at or state.last_run_at
    if sync.at is not None and sync.every >= timedelta(days=1):
        at = parse_time_of_day(sync.at)
        # `at` is wall-clock time in the sync's zone (topics.yaml defaults.timezone): step in local
        # days, so 02:00 stays 02:00 across a DST change, then compare instants.
        zone = sync.zone()
        local = last_ok.astimezone(zone).replace(hour=at.hour, minute=at.minute, second=0, microsecond=0, tzinfo=None)
        candidate = local.replace(tzinfo=zone)
        while candidate <= last_ok:
            local += sync.every
            candidate = local.replace(tzinfo=zone)
        return candidate.astimezone(UTC)
    return last_ok + sync.every


def is_due(sync: Sync, state: SyncState, now: datetime, retry_after: timedelta) -> bool:
    due = next_due(sync, state, retry_after)
    return due is None or now >= due


def _instant(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def item_envelope(name: str, sync: Sync, topology: Topology, item: dict[str, Any]) -> EventEnvelope:
    item_id, updated_at = item.get("id"), item.get("updated_at")
    if not isinstance(item_id, str) or not item_id or not isinstance(updated_at, str) or not updated_at:
        raise SyncError("feed item without string id/updated_at")
    spec = topology.event_types[sync.event_type].data
    data = {k: v for k, v in item.items() if k in spec.fields}
    occurred = _instant(updated_at)
    if occurred.year == 1:
        raise SyncError("feed item updated_at is not ISO-8601")
    return new_envelope(
        type=sync.event_type,
        source=sync.source,
        priority=topology.default_priority(sync.event_type),
        idempotency_key=f"sync:{name}:{item_id}:{updated_at}"[:200].replace(" ", "_"),
        data=data,
        occurred_at=occurred,
        metadata=Metadata(labels={"sync": name}),
    )


class SyncRunner:
    def __init__(
        self,
        topology: Topology,
        bootstrap: str,
        base_url: Callable[[str], str],
        *,
        http_timeout: float = 10.0,
        tokens: dict[str, str] | None = None,
        state_store: SyncStateStore | None = None,
    ):
        self.topology = topology
        self.base_url = base_url
        self.http_timeout = http_timeout
        self.tokens = tokens or {}
        self.states = state_store or SyncStateStore(topology, bootstrap)
        self._producer = Producer(producer_config(bootstrap, client_id="processors-sync-emitter"))
        self._errors: list[str] = []
        self._http: httpx.Client | None = None

    def _client(self) -> httpx.Client:
        """One HTTP client for every run: building one loads the CA bundle into an SSL context, ~57 ms
        of CPU (by hand), which the worker's routing waited for on every run. Runs are sequential
        (the worker awaits each), so it is never shared between threads."""
        if self._http is None:
            self._http = httpx.Client(timeout=self.http_timeout)
        return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def run(self, name: str, now: datetime | None = None) -> SyncResult:
        """Run `name` once, record the outcome (state topic + health topic + metrics)."""
        sync = self.topology.syncs[name]
        started = time.monotonic()
        run_at = now or datetime.now(UTC)
        state = self.states.load(name)
        progress = {"items": 0, "pages": 0}
        try:
            watermark = self._pull_and_emit(name, sync, state.watermark, progress)
        except Exception as exc:
            items, pages = progress["items"], progress["pages"]
            failures = state.consecutive_failures + 1
            error = f"{type(exc).__name__}: {exc}"[:500]
            duration = (time.monotonic() - started) * 1000
            failed = state.model_copy(
                update={
                    "last_run_at": run_at,
                    "consecutive_failures": failures,
                    "last_error": error,
                    "updated_at": datetime.now(UTC),
                    "last_result": {
                        "outcome": "failed",
                        "items": items,
                        "pages": pages,
                        "duration_ms": round(duration),
                    },
                }
            )
            self.states.save(failed)
            metrics.SYNC_RUNS.labels(name, "failed").inc()
            metrics.export_sync_state(failed)
            log.warning("sync failed", extra={"sync": name, "consecutive_failures": failures, "error": error})
            return SyncResult(name, False, items, pages, state.watermark, duration, error)
        items, pages = progress["items"], progress["pages"]
        duration = (time.monotonic() - started) * 1000
        finished = datetime.now(UTC)
        done = state.model_copy(
            update={
                "watermark": watermark,
                "last_run_at": run_at,
                "last_success_at": finished,
                "consecutive_failures": 0,
                "last_error": None,
                "updated_at": finished,
                "last_result": {"outcome": "ok", "items": items, "pages": pages, "duration_ms": round(duration)},
            }
        )
        self.states.save(done)
        metrics.SYNC_RUNS.labels(name, "ok").inc()
        metrics.export_sync_state(done)
        log.info("sync done", extra={"sync": name, "items": items, "pages": pages, "watermark": watermark})
        return SyncResult(name, True, items, pages, watermark, duration)

    def _pull_and_emit(self, name: str, sync: Sync, since: str | None, progress: dict[str, int]) -> str | None:
        url = feed_url(self.topology, name, self.base_url)
        headers = {"Accept": "application/json"}
        if sync.source in self.tokens:
            headers["Authorization"] = f"Bearer {self.tokens[sync.source]}"
        watermark = since
        cursor = ""
        client = self._client()
        for _ in range(MAX_PAGES):
            response = client.get(
                url, headers=headers, params={"since": since or "", "cursor": cursor, "limit": sync.page_size}
            )
            if response.status_code != 200:
                # What the source said, masked and short: "HTTP 400" alone sends the operator to its logs.
                said = mask_text(" ".join(response.text.split())[:200])
                raise SyncError(f"{sync.source} answered HTTP {response.status_code}" + (f": {said}" if said else ""))
            body = response.json()
            page = body.get("items") if isinstance(body, dict) else None
            if not isinstance(page, list):
                raise SyncError("feed page has no items list")
            progress["pages"] += 1
            for item in page:
                if not isinstance(item, dict):
                    raise SyncError("feed item is not an object")
                envelope = item_envelope(name, sync, self.topology, item)
                self._emit(envelope)
                progress["items"] += 1
                updated = str(item["updated_at"])
                if watermark is None or _instant(updated) > _instant(watermark):
                    watermark = updated
            next_cursor = body.get("next_cursor")
            if not next_cursor:
                break
            cursor = str(next_cursor)
            self._flush()  # a page at a time: bounded memory in the producer
        else:
            raise SyncError(f"feed did not end within {MAX_PAGES} pages")
        self._flush()
        metrics.SYNC_ITEMS.labels(name).inc(progress["items"])
        return watermark

    def _emit(self, envelope: EventEnvelope) -> None:
        self._producer.produce(
            self.topology.priority_topic(envelope.priority),
            key=envelope.kafka_key(),
            value=envelope.to_json(),
            headers=envelope.kafka_headers(),
            on_delivery=self._on_delivery,
        )
        self._producer.poll(0)

    def _on_delivery(self, err: Any, _msg: Any) -> None:
        if err is not None:
            self._errors.append(str(err))

    def _flush(self) -> None:
        remaining = self._producer.flush(30)
        errors, self._errors = self._errors, []
        if remaining or errors:
            raise SyncError(f"{remaining} event(s) not acknowledged by Kafka: {errors[:3]}")
