"""The dead-letter reprocessing tool behind `carinho dlq`: stats, list, show, replay, edit, purge,
archive and export. Every pass streams the dead-letter topic (one record in memory at a time); the
status of each record lives in the compacted status topic (operators/dlq_state.py)."""

from __future__ import annotations

import base64
import dataclasses
import gzip
import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import orjson

from hub.delivery import DeliveryRecord
from hub.envelope import EventEnvelope
from hub.topology import Topology
from hub.trail import TrailHop
from operators.audit import AuditLog
from operators.dlq_edit import apply_edit
from operators.dlq_filters import DlqFilter
from operators.dlq_items import DlqId, DlqItem, parse_value, value_view
from operators.dlq_state import STATUSES, DlqState, DlqStateStore, Status, effective_status, next_state
from operators.kafka_io import flush_or_raise, producer, read_one, scan_topic, watermarks
from operators.progress import ProgressBar, RateLimiter

ReplayTarget = Literal["retry", "main"]
BATCH = 200
AGE_BUCKETS: tuple[tuple[str, timedelta], ...] = (
    ("< 1h", timedelta(hours=1)),
    ("1h-24h", timedelta(days=1)),
    ("1d-7d", timedelta(days=7)),
)


class DlqError(RuntimeError):
    """An operator error with a message meant for the terminal (no such record, closed record...)."""


@dataclass
class DlqStats:
    total: int = 0  # records matching the filter
    by_status: Counter[str] = field(default_factory=Counter)  # over the filter without its status part
    by_destination: Counter[str] = field(default_factory=Counter)
    by_event_type: Counter[str] = field(default_factory=Counter)
    by_reason: Counter[str] = field(default_factory=Counter)
    by_age: Counter[str] = field(default_factory=Counter)
    oldest: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "by_status": dict(self.by_status),
            "by_destination": dict(self.by_destination),
            "by_event_type": dict(self.by_event_type),
            "by_reason": dict(self.by_reason),
            "by_age": dict(self.by_age),
            "oldest": self.oldest.isoformat() if self.oldest else None,
        }


@dataclass(frozen=True)
class ReplayPlanItem:
    item: DlqItem
    status: Status
    target_topic: str | None  # None: cannot be replayed as is
    problem: str | None
    key: bytes | None = None
    value: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()
    event_id: str | None = None
    delivery_id: str | None = None
    destination: str | None = None
    edited: bool = False  # the correction (`dlq edit`) is what is sent


@dataclass
class ReplayResult:
    dry_run: bool
    matched: int = 0
    replayed: int = 0
    failed: int = 0
    by_target: Counter[str] = field(default_factory=Counter)
    not_replayable: Counter[str] = field(default_factory=Counter)
    sample: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "matched": self.matched,
            "replayed": self.replayed,
            "failed": self.failed,
            "by_target": dict(self.by_target),
            "not_replayable": dict(self.not_replayable),
        }


def age_bucket(failed_at: datetime, now: datetime) -> str:
    age = now - failed_at
    for label, limit in AGE_BUCKETS:
        if age < limit:
            return label
    return "> 7d"


class DlqTool:
    def __init__(
        self,
        topology: Topology,
        bootstrap: str,
        operator: str,
        *,
        replay_rate: float = 50.0,
        archive_dir: Path | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.topology = topology
        self.bootstrap = bootstrap
        self.operator = operator
        self.topic = topology.dead_letter_topic
        self.replay_rate = replay_rate
        self.archive_dir = archive_dir or Path(".run") / "dlq-archive"
        self.clock = clock or (lambda: datetime.now(UTC))
        self.states = DlqStateStore(topology, bootstrap)
        self.audit = AuditLog(topology, bootstrap, operator)

    # ---- reading ----------------------------------------------------------------------------------
    def iter_items(
        self, flt: DlqFilter, states: dict[str, DlqState] | None = None, end_offsets: dict[int, int] | None = None
    ) -> Iterator[tuple[DlqItem, Status]]:
        """Matching records in topic order, streamed (up to `end_offsets` when given, so a second pass
        sees exactly what the first pass counted even while new records arrive)."""
        current = self.states.load() if states is None else states
        for record in scan_topic(self.bootstrap, self.topic, end_offsets=end_offsets):
            item = DlqItem(record)
            status = effective_status(item, current.get(str(item.id)))
            if flt.matches(item, status):
                yield item, status

    def stats(self, flt: DlqFilter) -> DlqStats:
        out = DlqStats()
        now = self.clock()
        every_status = dataclasses.replace(flt, statuses=frozenset(STATUSES))
        for item, status in self.iter_items(every_status):
            out.by_status[status] += 1
            if status not in flt.statuses:
                continue
            out.total += 1
            out.by_destination[item.destination or "(none)"] += 1
            out.by_event_type[item.event_type or "(unknown)"] += 1
            out.by_reason[item.reason] += 1
            out.by_age[age_bucket(item.failed_at, now)] += 1
            if out.oldest is None or item.failed_at < out.oldest:
                out.oldest = item.failed_at
        return out

    def get(self, dlq_id: DlqId) -> tuple[DlqItem, DlqState | None]:
        record = read_one(self.bootstrap, self.topic, dlq_id.partition, dlq_id.offset)
        if record is None:
            marks = watermarks(self.bootstrap, self.topic)
            where = ", ".join(
                f"partition {p}: offsets {lo}..{hi - 1}" if hi > lo else f"partition {p}: empty"
                for p, (lo, hi) in sorted(marks.items())
            )
            raise DlqError(f"no dead-letter record {dlq_id} ({where})")
        item = DlqItem(record)
        state = self.states.load().get(str(dlq_id))
        if state is not None and state.record_timestamp_ms != record.timestamp_ms:
            state = None
        return item, state

    def show(self, dlq_id: DlqId, *, reveal: bool) -> dict[str, Any]:
        item, state = self.get(dlq_id)
        view = item.detail(reveal=reveal)
        view["status"] = effective_status(item, state)
        if state is not None:
            view["replay_count"] = state.replay_count
            view["last_replay_to"] = state.last_replay_to
            view["archive_file"] = state.archive_file
            view["edited_paths"] = state.edited_paths
            if state.edited_value is not None:
                view["edited_value"] = value_view(state.edited_value, reveal=reveal)
            view["history"] = [h.model_dump(mode="json") for h in state.history]
        if reveal:
            self.audit.record("dlq.show", count=1, reveal=True, filters={"id": str(dlq_id)})
        return view

    # ---- replay -----------------------------------------------------------------------------------
    def plan(
        self, item: DlqItem, status: Status, state: DlqState | None, to: ReplayTarget, now: datetime
    ) -> ReplayPlanItem:
        """Where a record would go and what would be sent: the correction whenever there is one, also
        when the record is replayed again (`--status replayed`), never the original it corrected."""
        planned = self._plan(item, status, state, to, now)
        edited = state is not None and state.edited_value is not None
        return dataclasses.replace(planned, edited=edited) if edited else planned

    def _plan(
        self, item: DlqItem, status: Status, state: DlqState | None, to: ReplayTarget, now: datetime
    ) -> ReplayPlanItem:
        value = state.edited_value if state is not None else None
        value = value if value is not None else item.record.value
        kind, parsed = parse_value(value)
        replay_headers: list[tuple[str, bytes]] = [
            ("replayed_from", f"{self.topic}:{item.id}".encode()),
            ("replayed_at", now.isoformat().encode()),
            ("replayed_by", self.operator.encode()),
        ]
        if kind == "delivery" and isinstance(parsed, DeliveryRecord):
            record = parsed
            if record.destination not in self.topology.destinations:
                return ReplayPlanItem(item, status, None, f"unknown destination {record.destination!r}")
            tiers = self.topology.retry_topics(record.destination)
            target = tiers[0] if to == "retry" and tiers else self.topology.delivery_topic(record.destination)
            return ReplayPlanItem(
                item,
                status,
                target,
                None,
                record.entity_key.encode(),
                value,
                tuple(record.kafka_headers() + replay_headers),
                str(record.event_id),
                str(record.delivery_id),
                record.destination,
            )
        if kind == "envelope" and isinstance(parsed, EventEnvelope):
            envelope = parsed
            # Events have no retry tier: they go back to their priority topic and through routing.
            target = self.topology.priority_topic(envelope.priority)
            return ReplayPlanItem(
                item,
                status,
                target,
                None,
                envelope.kafka_key(),
                value,
                tuple(envelope.kafka_headers() + replay_headers),
                str(envelope.event_id),
            )
        return ReplayPlanItem(
            item, status, None, "not a delivery record nor an event envelope: fix it with `carinho dlq edit` first"
        )

    def replay(
        self,
        flt: DlqFilter,
        *,
        to: ReplayTarget = "retry",
        execute: bool = False,
        rate: float | None = None,
        progress: bool = True,
        sample_size: int = 20,
    ) -> ReplayResult:
        """Dry run (default): what would go where. Execute: send, rate-limited, then mark replayed."""
        result = ReplayResult(dry_run=not execute)
        states = self.states.load()
        now = self.clock()
        ends = {p: high for p, (_, high) in watermarks(self.bootstrap, self.topic).items()}
        for item, status in self.iter_items(flt, states, ends):
            plan = self.plan(item, status, states.get(str(item.id)), to, now)
            result.matched += 1
            if plan.target_topic is None:
                result.not_replayable[plan.problem or "?"] += 1
            else:
                result.by_target[plan.target_topic] += 1
            if len(result.sample) < sample_size:
                result.sample.append(
                    {
                        **item.summary(),
                        "status": status,
                        "to": plan.target_topic,
                        "problem": plan.problem,
                        "edited": plan.edited,
                    }
                )
        if execute and result.by_target.total():
            self._send(flt, to, states, ends, rate or self.replay_rate, result, progress)
        self.audit.record(
            "dlq.replay",
            count=result.replayed if execute else result.by_target.total(),
            filters=flt.described,
            dry_run=not execute,
            detail={
                "to": to,
                "matched": result.matched,
                "failed": result.failed,
                "by_target": dict(result.by_target),
                "not_replayable": dict(result.not_replayable),
            },
        )
        return result

    def _send(
        self,
        flt: DlqFilter,
        to: ReplayTarget,
        states: dict[str, DlqState],
        ends: dict[int, int],
        rate: float,
        result: ReplayResult,
        progress: bool,
    ) -> None:
        total = result.by_target.total()
        bar = ProgressBar(total, "replay") if progress else None
        limiter = RateLimiter(rate)
        prod = producer(self.bootstrap)
        trail_topic = self.topology.system_topic("trail")
        batch: list[ReplayPlanItem] = []
        failed: set[str] = set()
        now = self.clock()

        def on_delivery_for(dlq_id: str) -> Callable[[Any, Any], None]:
            def callback(err: Any, _msg: Any) -> None:
                if err is not None:
                    failed.add(dlq_id)

            return callback

        def finish_batch() -> None:
            # Mark replayed only what the broker acknowledged; a failed send stays open.
            flush_or_raise(prod, "replay")
            done = [p for p in batch if str(p.item.id) not in failed]
            self.states.put(
                next_state(
                    p.item,
                    states.get(str(p.item.id)),
                    status="replayed",
                    at=now,
                    operator=self.operator,
                    action="replay",
                    detail={"to": p.target_topic, "edited": p.edited},
                    replay_count=(states[str(p.item.id)].replay_count if str(p.item.id) in states else 0) + 1,
                    last_replay_to=p.target_topic,
                )
                for p in done
            )
            result.replayed += len(done)
            result.failed += len(batch) - len(done)
            batch.clear()

        try:
            for item, status in self.iter_items(flt, states, ends):
                plan = self.plan(item, status, states.get(str(item.id)), to, now)
                if plan.target_topic is None:
                    continue
                limiter.acquire()
                prod.produce(
                    plan.target_topic,
                    key=plan.key,
                    value=plan.value,
                    headers=list(plan.headers),
                    on_delivery=on_delivery_for(str(item.id)),
                )
                if plan.event_id is not None:
                    hop = TrailHop(
                        event_id=plan.event_id,
                        hop="replayed",
                        at=self.clock(),
                        service="operators",
                        destination=plan.destination,
                        delivery_id=plan.delivery_id,
                        detail={
                            "dlq_id": str(item.id),
                            "to": plan.target_topic,
                            "edited": plan.edited,
                            "operator": self.operator,
                        },
                    )
                    prod.produce(
                        trail_topic, key=hop.kafka_key(), value=hop.to_json(), on_delivery=on_delivery_for(str(item.id))
                    )
                prod.poll(0)
                batch.append(plan)
                if bar:
                    bar.advance()
                if len(batch) >= BATCH:
                    finish_batch()
            if batch:
                finish_batch()
        finally:
            if bar:
                bar.close()

    # ---- edit, purge, archive, export -------------------------------------------------------------
    def edit(self, dlq_id: DlqId, *, sets: list[str], unsets: list[str], replacement: bytes | None) -> DlqState:
        item, state = self.get(dlq_id)
        status = effective_status(item, state)
        if status in {"purged", "archived"}:
            raise DlqError(f"{dlq_id} is {status}: it is closed and cannot be edited")
        current = state.edited_value if state is not None and state.edited_value is not None else item.record.value
        corrected, paths = apply_edit(current, item.kind, sets=sets, unsets=unsets, replacement=replacement)
        new = next_state(
            item,
            state,
            status="edited",
            at=self.clock(),
            operator=self.operator,
            action="edit",
            detail={"paths": paths},
            edited_value_b64=base64.b64encode(corrected).decode(),
            edited_paths=sorted(set((state.edited_paths if state else []) + paths)),
        )
        self.states.put([new])
        self.audit.record(
            "dlq.edit",
            count=1,
            filters={"id": str(dlq_id)},
            detail={"changed_paths": paths, "kind": item.kind, "previous_status": status},
        )
        return new

    def purge(self, flt: DlqFilter, *, execute: bool) -> int:
        return self._close(flt, "purged", "purge", execute=execute)

    def archive(self, flt: DlqFilter, *, execute: bool) -> tuple[int, Path | None]:
        path = self.archive_dir / f"dlq-archive-{self.clock():%Y%m%dT%H%M%SZ}-{os.getpid()}.jsonl.gz"
        count = self._close(flt, "archived", "archive", execute=execute, archive_path=path)
        return count, (path if execute and count else None)

    def _close(
        self, flt: DlqFilter, status: Status, action: str, *, execute: bool, archive_path: Path | None = None
    ) -> int:
        states = self.states.load()
        if not execute:
            count = sum(1 for _ in self.iter_items(flt, states))
            self.audit.record(f"dlq.{action}", count=count, filters=flt.described, dry_run=True)
            return count
        now = self.clock()
        pending: list[DlqState] = []
        count = 0
        archive = _ArchiveWriter(archive_path) if archive_path is not None else None
        try:
            for item, _ in self.iter_items(flt, states):
                if archive is not None:
                    archive.write(item)
                pending.append(
                    next_state(
                        item,
                        states.get(str(item.id)),
                        status=status,
                        at=now,
                        operator=self.operator,
                        action=action,
                        archive_file=str(archive_path) if archive_path else None,
                    )
                )
                count += 1
                if len(pending) >= BATCH:
                    if archive is not None:
                        archive.flush()  # the copy is on disk before the record is marked archived
                    self.states.put(pending)
                    pending.clear()
        finally:
            if archive is not None:
                archive.close()
        if pending:
            self.states.put(pending)
        self.audit.record(
            f"dlq.{action}",
            count=count,
            filters=flt.described,
            detail={"archive_file": str(archive_path)} if archive_path and count else {},
        )
        return count

    def export(self, flt: DlqFilter, write: Callable[[bytes], Any], *, reveal: bool) -> int:
        count = 0
        for item, status in self.iter_items(flt):
            view = item.detail(reveal=reveal)
            view["status"] = status
            write(orjson.dumps(view) + b"\n")
            count += 1
        self.audit.record("dlq.export", count=count, filters=flt.described, reveal=reveal)
        return count


class _ArchiveWriter:
    """gzip JSONL with the complete record (key, value, headers as base64/UTF-8): it holds personal
    data, so the file is created 0600 and lives outside the repository (CARINHO_ARCHIVE_DIR)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)  # when created here: only its owner
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self._raw = os.fdopen(fd, "wb")
        self._gz = gzip.GzipFile(fileobj=self._raw, mode="wb")

    def write(self, item: DlqItem) -> None:
        record = item.record
        line = {
            "dlq_id": str(item.id),
            "topic": record.topic,
            "timestamp_ms": record.timestamp_ms,
            "key_b64": base64.b64encode(record.key).decode() if record.key is not None else None,
            "value_b64": base64.b64encode(record.value).decode() if record.value is not None else None,
            "headers": {k: v.decode("utf-8", "replace") for k, v in record.headers},
        }
        self._gz.write(orjson.dumps(line) + b"\n")

    def flush(self) -> None:
        self._gz.flush()
        self._raw.flush()
        os.fsync(self._raw.fileno())

    def close(self) -> None:
        self.flush()
        self._gz.close()
        self._raw.close()
