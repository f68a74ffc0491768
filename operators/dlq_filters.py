"""Filters of `carinho dlq list|stats|replay|purge|archive|export`, validated against topics.yaml so a
typo fails loudly ("unknown destination 'crn'; known: crm, ...") instead of matching nothing."""

from __future__ import annotations

import fnmatch
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from hub.durations import parse_duration
from hub.topology import Topology
from operators.dlq_items import BadDlqId, DlqId, DlqItem
from operators.dlq_state import OPEN_STATUSES, STATUSES

_REASON = re.compile(r"^[A-Za-z0-9_.:*?-]{1,100}$")
_STATUS_CLASS = re.compile(r"^([1-5])xx$", re.IGNORECASE)


class FilterError(ValueError):
    """One or more filters are invalid; the message lists each problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid filter(s):\n" + "\n".join(f"  - {p}" for p in problems))


def parse_time(text: str, *, now: datetime, option: str) -> datetime:
    """ISO-8601 date-time (UTC when no offset), a date (00:00 UTC), or a duration back from now ("24h")."""
    value = text.strip()
    try:
        return now - parse_duration(value)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = datetime.combine(date.fromisoformat(value), time.min)
        except ValueError:
            raise ValueError(
                f"{option} {text!r}: use an ISO date-time (2025-01-31T14:00:00Z), "
                f"a date (2025-01-31) or a duration back from now (30m, 24h, 7d)"
            ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class StatusCodeMatch:
    exact: frozenset[int] = frozenset()
    classes: frozenset[int] = frozenset()  # 4 for "4xx"

    def __call__(self, code: int | None) -> bool:
        if code is None:
            return False
        return code in self.exact or code // 100 in self.classes


@dataclass(frozen=True)
class DlqFilter:
    destinations: frozenset[str] = frozenset()
    event_types: frozenset[str] = frozenset()
    reasons: tuple[str, ...] = ()  # glob patterns ("http_4*")
    status_codes: StatusCodeMatch | None = None
    since: datetime | None = None
    until: datetime | None = None
    event_ids: frozenset[str] = frozenset()
    ids: frozenset[str] = frozenset()  # explicit DLQ ids
    statuses: frozenset[str] = OPEN_STATUSES
    described: dict[str, Any] = field(default_factory=dict, compare=False)

    def matches(self, item: DlqItem, status: str) -> bool:
        if status not in self.statuses:
            return False
        if self.ids and str(item.id) not in self.ids:
            return False
        if self.destinations and item.destination not in self.destinations:
            return False
        if self.event_types and item.event_type not in self.event_types:
            return False
        if self.reasons and not any(fnmatch.fnmatchcase(item.reason, p) for p in self.reasons):
            return False
        if self.status_codes is not None and not self.status_codes(item.status_code):
            return False
        if self.event_ids and item.event_id not in self.event_ids:
            return False
        if self.since is not None and item.failed_at < self.since:
            return False
        return not (self.until is not None and item.failed_at >= self.until)


def build_filter(
    topology: Topology,
    *,
    destination: list[str] | None = None,
    event_type: list[str] | None = None,
    reason: list[str] | None = None,
    status_code: list[str] | None = None,
    since: str | None = None,
    until: str | None = None,
    event_id: list[str] | None = None,
    status: list[str] | None = None,
    ids: list[str] | None = None,
    now: datetime | None = None,
) -> DlqFilter:
    """Validate every filter, collecting all problems before failing."""
    now = now or datetime.now(UTC)
    problems: list[str] = []

    def split(values: list[str] | None) -> list[str]:
        return [v.strip() for raw in values or [] for v in raw.split(",") if v.strip()]

    dests = split(destination)
    for d in dests:
        if d not in topology.destinations:
            known = ", ".join(sorted(topology.destinations))
            problems.append(f"--destination {d!r}: unknown destination; known: {known}")
    types = split(event_type)
    for t in types:
        if t not in topology.event_types:
            problems.append(f"--event-type {t!r}: unknown event type; known: {', '.join(sorted(topology.event_types))}")
    reasons = split(reason)
    for r in reasons:
        if not _REASON.match(r):
            problems.append(
                f"--reason {r!r}: reasons are short machine names like http_400 or retries_exhausted "
                "(letters, digits, _ . : -, and * ? as wildcards)"
            )
    exact: set[int] = set()
    classes: set[int] = set()
    for code in split(status_code):
        cls_match = _STATUS_CLASS.match(code)
        if cls_match:
            classes.add(int(cls_match.group(1)))
        elif code.isdigit() and 100 <= int(code) <= 599:
            exact.add(int(code))
        else:
            problems.append(f"--status-code {code!r}: use an HTTP status 100-599 or a class like 4xx")
    event_ids: set[str] = set()
    for e in split(event_id):
        try:
            event_ids.add(str(uuid.UUID(e)))
        except ValueError:
            problems.append(f"--event-id {e!r}: not a UUID")
    statuses: set[str] = set()
    for s in split(status) or ["open"]:
        if s == "open":
            statuses |= OPEN_STATUSES
        elif s == "all":
            statuses |= set(STATUSES)
        elif s in STATUSES:
            statuses.add(s)
        else:
            problems.append(f"--status {s!r}: use open, all, or one of {', '.join(STATUSES)}")
    dlq_ids: set[str] = set()
    for raw_id in split(ids):
        try:
            dlq_ids.add(str(DlqId.parse(raw_id)))
        except BadDlqId as exc:
            problems.append(str(exc))
    since_at = until_at = None
    for option, text in (("--since", since), ("--until", until)):
        if text is None:
            continue
        try:
            parsed = parse_time(text, now=now, option=option)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        if option == "--since":
            since_at = parsed
        else:
            until_at = parsed
    if since_at is not None and until_at is not None and since_at >= until_at:
        problems.append(f"--since ({since_at.isoformat()}) must be before --until ({until_at.isoformat()})")
    if problems:
        raise FilterError(problems)
    described: dict[str, Any] = {
        "destination": sorted(dests),
        "event_type": sorted(types),
        "reason": reasons,
        "status_code": split(status_code),
        "event_id": sorted(event_ids),
        "id": sorted(dlq_ids),
        "status": sorted(statuses),
        "since": since_at.isoformat() if since_at else None,
        "until": until_at.isoformat() if until_at else None,
    }
    return DlqFilter(
        destinations=frozenset(dests),
        event_types=frozenset(types),
        reasons=tuple(reasons),
        status_codes=StatusCodeMatch(frozenset(exact), frozenset(classes)) if exact or classes else None,
        since=since_at,
        until=until_at,
        event_ids=frozenset(event_ids),
        ids=frozenset(dlq_ids),
        statuses=frozenset(statuses),
        described={k: v for k, v in described.items() if v},
    )
