"""The operations page's consolidated view (analysis 4.2): pending events per priority, failure rate
per integration, dead-letter size and top reasons, breaker states, sync status and alerts.

Kept current by tailing the topics (operators/ops_tail.py) instead of re-reading them, and cached
for `cache_seconds` so a room full of open browsers costs Kafka one refresh every few seconds.
No personal data: only counts, names, reasons, ids and masked error text.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from confluent_kafka import KafkaException

from hub.backlog import router_backlog
from hub.dead_letter import DeadLetterInfo
from hub.masking import mask_text
from hub.topology import Topology
from operators.dlq_state import OPEN_STATUSES, DlqState
from operators.history import FAILED_ATTEMPT_OUTCOMES, parse_attempt, parse_health
from operators.integrations import IntegrationIndex
from operators.kafka_io import KafkaUnavailable
from operators.ops_tail import TopicTail

# An error rate computed from a handful of attempts is noise; below this many attempts in the
# window the rate is shown but does not raise the alert.
MIN_ATTEMPTS_FOR_ERROR_ALERT = 10
REBUILD_EVERY = timedelta(minutes=10)  # re-read from scratch: forget records retention removed


@dataclass(frozen=True, slots=True)
class _DeadLetter:
    destination: str
    event_type: str
    reason: str
    status_code: int | None
    failed_at: datetime
    timestamp_ms: int


@dataclass
class _Alert:
    key: str
    message: str
    raised_at: datetime
    cleared_at: datetime | None = None


class OpsSummary:
    def __init__(
        self,
        topology: Topology,
        bootstrap: str,
        *,
        cache_seconds: float = 2.0,
        window: timedelta = timedelta(hours=1),
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.topology = topology
        self.bootstrap = bootstrap
        self.cache_seconds = cache_seconds
        self.window = window
        self.clock = clock or (lambda: datetime.now(UTC))
        self.index = IntegrationIndex(topology)
        self._lock = threading.Lock()
        self._cached: dict[str, Any] | None = None
        self._cached_at: datetime | None = None
        self._built_at: datetime | None = None
        self._tails: dict[str, TopicTail] = {}
        self._alerts: dict[str, _Alert] = {}
        self._alert_log: deque[_Alert] = deque(maxlen=20)
        self.computations = 0  # for tests: proves the cache works
        self._attempts: deque[tuple[datetime, str, bool]] = deque()
        self._dead: dict[str, _DeadLetter] = {}
        self._dlq_states: dict[str, tuple[str, int]] = {}
        self._health: dict[tuple[str, str], dict[str, Any]] = {}

    # ---- public ---------------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        with self._lock:
            now = self.clock()
            if (
                self._cached is not None
                and self._cached_at is not None
                and (now - self._cached_at).total_seconds() < self.cache_seconds
            ):
                return self._cached
            try:
                self._cached = self._compute(now)
            except (KafkaException, KafkaUnavailable, RuntimeError) as exc:
                self._close_tails()  # start clean on the next refresh
                self._cached = {"generated_at": now.isoformat(), "error": f"Kafka unavailable: {exc}"}
            self._cached_at = now
            self.computations += 1
            return self._cached

    def close(self) -> None:
        with self._lock:
            self._close_tails()

    # ---- state ----------------------------------------------------------------------------------
    def _close_tails(self) -> None:
        for tail in self._tails.values():
            tail.close()
        self._tails.clear()
        self._built_at = None

    def _start(self, now: datetime) -> None:
        self._close_tails()
        t = self.topology
        self._tails = {
            "deliveries": TopicTail(self.bootstrap, t.system_topic("deliveries"), since=now - self.window),
            "dead_letter": TopicTail(self.bootstrap, t.dead_letter_topic),
            "dlq_state": TopicTail(self.bootstrap, t.system_topic("dead_letter_state")),
            "health": TopicTail(self.bootstrap, t.system_topic("health")),
        }
        self._attempts = deque()
        self._dead = {}
        self._dlq_states = {}
        self._health = {}
        self._built_at = now

    def _refresh(self, now: datetime) -> None:
        if self._built_at is None or now - self._built_at > REBUILD_EVERY:
            self._start(now)
        for record in self._tails["deliveries"].drain():
            attempt = parse_attempt(record.value)
            if attempt is not None and attempt.at >= now - self.window:
                integration = self.index.of(attempt.event_type, attempt.destination)
                self._attempts.append((attempt.at, integration, attempt.outcome in FAILED_ATTEMPT_OUTCOMES))
        while self._attempts and self._attempts[0][0] < now - self.window:
            self._attempts.popleft()
        for record in self._tails["dead_letter"].drain():
            try:
                info = DeadLetterInfo.from_headers(list(record.headers))
            except (TypeError, ValueError):
                info = None
            failed_at = info.failed_at if info else datetime.fromtimestamp(record.timestamp_ms / 1000, UTC)
            self._dead[f"{record.partition}:{record.offset}"] = _DeadLetter(
                destination=(info.destination if info and info.destination else "(none)"),
                event_type=(info.event_type if info and info.event_type else "(unknown)"),
                reason=info.reason if info else "unknown",
                status_code=info.last_status_code if info else None,
                failed_at=failed_at if failed_at.tzinfo else failed_at.replace(tzinfo=UTC),
                timestamp_ms=record.timestamp_ms,
            )
        for record in self._tails["dlq_state"].drain():
            if record.key is None:
                continue
            key = record.key.decode()
            if record.value is None:
                self._dlq_states.pop(key, None)
                continue
            try:
                state = DlqState.model_validate_json(record.value)
            except ValueError:
                continue
            self._dlq_states[key] = (state.status, state.record_timestamp_ms)
        for record in self._tails["health"].drain():
            parsed = parse_health(record.key, record.value)
            if parsed is not None:
                kind, name, value = parsed
                self._health[(kind, name)] = value

    # ---- figures --------------------------------------------------------------------------------
    def _pending(self) -> list[dict[str, Any]]:
        """Consumer lag of the processors' router group on events.p1..p5 (= events not yet routed)."""
        backlog = router_backlog(self.bootstrap, self.topology)
        labels = {p.level: p.label for p in self.topology.priorities}
        return [
            {
                "priority": level,
                "label": labels[level],
                "topic": self.topology.priority_topic(level),
                "pending": backlog[level],
                "consumer_group": self.topology.router_group,
            }
            for level in range(1, 6)
        ]

    def _compute(self, now: datetime) -> dict[str, Any]:
        self._refresh(now)
        alerts_cfg = self.topology.alerts
        attempts: Counter[str] = Counter()
        failures: Counter[str] = Counter()
        cutoff = now - self.window
        for at, integration, failed in self._attempts:
            if at < cutoff:  # records arrive roughly, not strictly, in time order
                continue
            attempts[integration] += 1
            failures[integration] += failed
        integrations: list[dict[str, Any]] = []
        for key in [*self.topology.integrations, *sorted(set(attempts) - set(self.topology.integrations))]:
            rate = failures[key] / attempts[key] if attempts[key] else None
            alert = (
                rate is not None and rate > alerts_cfg.error_rate_over and attempts[key] >= MIN_ATTEMPTS_FOR_ERROR_ALERT
            )
            integrations.append(
                {
                    "integration": key,
                    "name": self.index.name(key),
                    "attempts": attempts[key],
                    "failures": failures[key],
                    "failure_rate": rate,
                    "alert": alert,
                }
            )

        open_items = [(dlq_id, d) for dlq_id, d in self._dead.items() if self._is_open(dlq_id, d)]
        reasons: Counter[tuple[str, str]] = Counter((d.destination, d.reason) for _, d in open_items)
        by_destination: Counter[str] = Counter(d.destination for _, d in open_items)
        latest = sorted(open_items, key=lambda item: item[1].failed_at, reverse=True)[:10]

        breakers = []
        for name in self.topology.destinations:
            state = self._health.get(("destination", name), {})
            breakers.append(
                {
                    "destination": name,
                    "breaker_state": state.get("breaker_state", "unknown"),
                    "last_check_at": state.get("last_check_at"),
                    "last_check_ok": state.get("last_check_ok"),
                    "last_status": state.get("last_status"),
                    "updated_at": state.get("updated_at"),
                }
            )
        syncs = []
        for name in sorted(set(self.topology.syncs) | {n for k, n in self._health if k == "sync"}):
            state = self._health.get(("sync", name), {})
            failures_in_row = state.get("consecutive_failures")
            failures_in_row = failures_in_row if isinstance(failures_in_row, int) else 0
            error = state.get("last_error")
            syncs.append(
                {
                    "sync": name,
                    "last_run_at": state.get("last_run_at"),
                    "last_success_at": state.get("last_success_at"),
                    "consecutive_failures": failures_in_row,
                    "last_error": mask_text(str(error))[:200] if error else None,
                    "alert": failures_in_row >= alerts_cfg.sync_consecutive_failures,
                }
            )

        active: dict[str, str] = {}
        if len(open_items) > alerts_cfg.dead_letter_over:
            active["dead_letter"] = (
                f"Dead-letter topic holds {len(open_items)} open records (alert above {alerts_cfg.dead_letter_over})"
            )
        for row in integrations:
            if row["alert"]:
                rate_pct = float(row["failure_rate"] or 0) * 100
                active[f"error_rate:{row['integration']}"] = (
                    f"{row['name']}: error rate {rate_pct:.1f}% over the last "
                    f"{self.window.total_seconds() / 60:g} min (alert above {alerts_cfg.error_rate_over * 100:g}%)"
                )
        for row in syncs:
            if row["alert"]:
                active[f"sync:{row['sync']}"] = (
                    f"Sync {row['sync']} failed {row['consecutive_failures']} times in a "
                    f"row (alert at {alerts_cfg.sync_consecutive_failures})"
                )
        for row in breakers:
            if row["breaker_state"] == "open":
                active[f"breaker:{row['destination']}"] = f"Circuit breaker open for {row['destination']}"
        self._track_alerts(active, now)

        return {
            "generated_at": now.isoformat(),
            "cache_seconds": self.cache_seconds,
            "window_minutes": self.window.total_seconds() / 60,
            "pending": self._pending(),
            "integrations": integrations,
            "dead_letter": {
                "open": len(open_items),
                "alert_over": alerts_cfg.dead_letter_over,
                "by_destination": dict(by_destination.most_common()),
                "top_reasons": [{"destination": d, "reason": r, "count": n} for (d, r), n in reasons.most_common(10)],
                "latest": [
                    {
                        "id": dlq_id,
                        "destination": d.destination,
                        "event_type": d.event_type,
                        "reason": d.reason,
                        "status_code": d.status_code,
                        "failed_at": d.failed_at.isoformat(),
                    }
                    for dlq_id, d in latest
                ],
            },
            "breakers": breakers,
            "syncs": syncs,
            "alerts": {
                "active": [
                    {"key": a.key, "message": a.message, "since": a.raised_at.isoformat()}
                    for a in self._alerts.values()
                ],
                "recent": [
                    {
                        "key": a.key,
                        "message": a.message,
                        "raised_at": a.raised_at.isoformat(),
                        "cleared_at": a.cleared_at.isoformat() if a.cleared_at else None,
                    }
                    for a in reversed(self._alert_log)
                ],
            },
        }

    def _is_open(self, dlq_id: str, dead: _DeadLetter) -> bool:
        state = self._dlq_states.get(dlq_id)
        return state is None or state[1] != dead.timestamp_ms or state[0] in OPEN_STATUSES

    def _track_alerts(self, active: dict[str, str], now: datetime) -> None:
        for key, message in active.items():
            if key not in self._alerts:
                alert = _Alert(key, message, now)
                self._alerts[key] = alert
                self._alert_log.append(alert)
            else:
                self._alerts[key].message = message
        for key in list(self._alerts):
            if key not in active:
                self._alerts.pop(key).cleared_at = now
