"""The daily report (analysis 4.4): events processed per integration, success rate, end-to-end
latency percentiles against each integration's SLA, failures and their top reasons, dead-letter
items and sync job results — computed from the trail, deliveries, dead-letter and health topics.

`build_daily_report` computes the figures; `render_markdown`/`render_html` format them;
`run_scheduled_report` is what the processors call every day at CARINHO_REPORT_DAILY_AT
(CARINHO_REPORT_TIMEZONE) for the previous day. Nothing personal is in a report.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol
from zoneinfo import ZoneInfo

import httpx

from hub.clock import parse_time_of_day
from hub.dead_letter import DeadLetterInfo
from hub.masking import mask_text
from hub.topology import Topology
from hub.trail import TrailHop
from operators.dlq import DlqTool
from operators.dlq_filters import build_filter
from operators.history import (
    FAILED_ATTEMPT_OUTCOMES,
    SUCCESS_OUTCOMES,
    Attempt,
    parse_attempt,
    parse_health,
    parse_time,
)
from operators.integrations import IntegrationIndex
from operators.kafka_io import LATE_RECORDS, scan_topic
from operators.settings import OperatorSettings

ReportFormat = Literal["md", "html"]
# Deliveries finishing on the day may belong to events accepted a little before midnight.
ACCEPTED_LOOKBACK = timedelta(hours=6)


@dataclass
class IntegrationFigures:
    integration: str
    name: str
    sla_seconds: float | None
    events: set[str] = field(default_factory=set)
    deliveries: int = 0  # deliveries whose last outcome of the day is final or still retrying
    delivered: int = 0  # delivered or already delivered (skipped_duplicate)
    dead_lettered: int = 0
    fell_back: int = 0  # handed to the fallback destination (WhatsApp -> SMS)
    retrying: int = 0  # last outcome of the day was a retry
    attempts: int = 0
    failed_attempts: int = 0
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def success_rate(self) -> float | None:
        finished = self.delivered + self.dead_lettered + self.fell_back
        return (self.delivered + self.fell_back) / finished if finished else None

    def percentile(self, q: float) -> float | None:
        return percentile(self.latencies_ms, q)

    @property
    def within_sla(self) -> float | None:
        if not self.latencies_ms or self.sla_seconds is None:
            return None
        limit = self.sla_seconds * 1000
        return sum(1 for v in self.latencies_ms if v <= limit) / len(self.latencies_ms)


@dataclass
class SyncFigures:
    name: str
    runs_seen: int = 0
    failures_seen: int = 0
    last_run_at: str | None = None
    last_success_at: str | None = None
    consecutive_failures: int = 0
    last_error: str | None = None
    alert: bool = False


@dataclass
class DailyReport:
    day: date
    timezone: str
    start: datetime
    end: datetime
    generated_at: datetime
    integrations: list[IntegrationFigures]
    failure_reasons: Counter[tuple[str, str]]  # (destination, reason) of failed attempts
    dead_letter_new: Counter[tuple[str, str]]  # (destination, reason) dead-lettered on the day
    dead_letter_open: int
    dead_letter_open_by_destination: Counter[str]
    dead_letter_alert_over: int
    syncs: list[SyncFigures]

    @property
    def events_total(self) -> int:
        return len(set().union(*(f.events for f in self.integrations))) if self.integrations else 0

    def summary(self) -> dict[str, Any]:
        """Machine-readable figures (the webhook payload's `summary`)."""
        return {
            "date": self.day.isoformat(),
            "timezone": self.timezone,
            "integrations": [
                {
                    "integration": f.integration,
                    "name": f.name,
                    "events": len(f.events),
                    "deliveries": f.deliveries,
                    "delivered": f.delivered,
                    "dead_lettered": f.dead_lettered,
                    "fallback": f.fell_back,
                    "retrying": f.retrying,
                    "attempts": f.attempts,
                    "failed_attempts": f.failed_attempts,
                    "success_rate": f.success_rate,
                    "p50_ms": f.percentile(50),
                    "p95_ms": f.percentile(95),
                    "p99_ms": f.percentile(99),
                    "sla_seconds": f.sla_seconds,
                    "within_sla": f.within_sla,
                }
                for f in self.integrations
            ],
            "failure_reasons": [
                {"destination": d, "reason": r, "count": n} for (d, r), n in self.failure_reasons.most_common()
            ],
            "dead_letter": {
                "new": sum(self.dead_letter_new.values()),
                "open": self.dead_letter_open,
                "new_by_reason": [
                    {"destination": d, "reason": r, "count": n} for (d, r), n in self.dead_letter_new.most_common()
                ],
                "open_by_destination": dict(self.dead_letter_open_by_destination),
            },
            "syncs": [s.__dict__ for s in self.syncs],
        }


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (no interpolation: every figure is a latency that happened)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def resolve_day(text: str | None, timezone: str, now: datetime | None = None) -> date:
    today = (now or datetime.now(ZoneInfo(timezone))).astimezone(ZoneInfo(timezone)).date()
    if text is None or text == "today":
        return today
    if text == "yesterday":
        return today - timedelta(days=1)
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--date {text!r}: use YYYY-MM-DD, today or yesterday") from None


def day_bounds(day: date, timezone: str) -> tuple[datetime, datetime]:
    tz = ZoneInfo(timezone)
    return datetime.combine(day, time.min, tz), datetime.combine(day + timedelta(days=1), time.min, tz)


def build_daily_report(
    topology: Topology, bootstrap: str, day: date, timezone: str = "America/Sao_Paulo", *, now: datetime | None = None
) -> DailyReport:
    start, end = day_bounds(day, timezone)
    index = IntegrationIndex(topology)
    figures: dict[str, IntegrationFigures] = {}

    def fig(integration: str) -> IntegrationFigures:
        if integration not in figures:
            figures[integration] = IntegrationFigures(
                integration, index.name(integration), index.sla_seconds(integration)
            )
        return figures[integration]

    for integration in topology.integrations:  # every integration shows, even with no traffic
        fig(integration)

    # Every scan stops LATE_RECORDS past the day's end, not at the end of the topic (on a report run
    # late, or on a busy hub's first start, that is everything written since).
    # 1. When each event entered the hub (trail "accepted" hops), for end-to-end latency.
    accepted: dict[str, datetime] = {}
    for record in scan_topic(
        bootstrap, topology.system_topic("trail"), since=start - ACCEPTED_LOOKBACK, until=end + LATE_RECORDS
    ):
        if record.value is None or b'"accepted"' not in record.value:
            continue  # cheap pre-filter: most hops are not "accepted"
        try:
            hop = TrailHop.from_json(record.value)
        except ValueError:
            continue
        if hop.hop == "accepted" and hop.at < end:
            accepted.setdefault(str(hop.event_id), hop.at)

    # 2. Delivery attempts of the day; the last one per delivery decides its outcome.
    last: dict[str, Attempt] = {}
    failure_reasons: Counter[tuple[str, str]] = Counter()
    for record in scan_topic(
        bootstrap, topology.system_topic("deliveries"), since=start - timedelta(minutes=5), until=end + LATE_RECORDS
    ):
        attempt = parse_attempt(record.value)
        if attempt is None or not start <= attempt.at < end:
            continue
        f = fig(index.of(attempt.event_type, attempt.destination))
        f.attempts += 1
        if attempt.outcome in FAILED_ATTEMPT_OUTCOMES:
            f.failed_attempts += 1
            failure_reasons[(attempt.destination, attempt.failure_label)] += 1
        previous = last.get(attempt.delivery_id)
        if previous is None or (attempt.at, attempt.attempt) >= (previous.at, previous.attempt):
            last[attempt.delivery_id] = attempt
        if attempt.outcome == "delivered" and attempt.event_id in accepted:
            f.latencies_ms.append((attempt.at - accepted[attempt.event_id]).total_seconds() * 1000)
    for attempt in last.values():
        f = fig(index.of(attempt.event_type, attempt.destination))
        f.deliveries += 1
        if attempt.event_id:
            f.events.add(attempt.event_id)
        if attempt.outcome in SUCCESS_OUTCOMES:
            f.delivered += 1
        elif attempt.outcome == "dead_letter":
            f.dead_lettered += 1
        elif attempt.outcome == "fallback":
            f.fell_back += 1
        else:
            f.retrying += 1

    # 3. Dead letters: new on the day (by reason), and what is still open now.
    dead_new: Counter[tuple[str, str]] = Counter()
    for record in scan_topic(
        bootstrap, topology.dead_letter_topic, since=start - timedelta(minutes=5), until=end + LATE_RECORDS
    ):
        try:
            info = DeadLetterInfo.from_headers(list(record.headers))
        except (TypeError, ValueError):
            continue
        failed_at = info.failed_at if info.failed_at.tzinfo else info.failed_at.replace(tzinfo=start.tzinfo)
        if start <= failed_at < end:
            dead_new[(info.destination or "(none)", info.reason)] += 1
    open_stats = DlqTool(topology, bootstrap, "report").stats(build_filter(topology))

    # 4. Sync jobs, from the health topic (every update during the day is one run).
    syncs: dict[str, SyncFigures] = {name: SyncFigures(name) for name in topology.syncs}
    for record in scan_topic(bootstrap, topology.system_topic("health")):
        parsed = parse_health(record.key, record.value)
        if parsed is None or parsed[0] != "sync":
            continue
        _, name, state = parsed
        sync = syncs.setdefault(name, SyncFigures(name))
        run_at, ok_at = parse_time(state.get("last_run_at")), parse_time(state.get("last_success_at"))
        if run_at is not None and start <= run_at < end:
            sync.runs_seen += 1
            if ok_at is None or ok_at < run_at:
                sync.failures_seen += 1
        if run_at is not None and run_at < end:  # the state as of the end of the day
            sync.last_run_at = run_at.isoformat()
            sync.last_success_at = ok_at.isoformat() if ok_at else None
            failures = state.get("consecutive_failures")
            sync.consecutive_failures = failures if isinstance(failures, int) else 0
            error = state.get("last_error")
            sync.last_error = mask_text(str(error))[:300] if error else None
    for sync in syncs.values():
        sync.alert = sync.consecutive_failures >= topology.alerts.sync_consecutive_failures

    ordered = [figures[k] for k in topology.integrations] + sorted(
        (f for k, f in figures.items() if k not in topology.integrations), key=lambda f: f.integration
    )
    return DailyReport(
        day=day,
        timezone=timezone,
        start=start,
        end=end,
        generated_at=now or datetime.now(start.tzinfo),
        integrations=[f for f in ordered if f.integration in topology.integrations or f.attempts],
        failure_reasons=failure_reasons,
        dead_letter_new=dead_new,
        dead_letter_open=open_stats.total,
        dead_letter_open_by_destination=open_stats.by_destination,
        dead_letter_alert_over=topology.alerts.dead_letter_over,
        syncs=sorted(syncs.values(), key=lambda s: s.name),
    )


# ---- rendering ------------------------------------------------------------------------------------
def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f} ms" if value < 1000 else f"{value / 1000:.1f} s"


def _sla(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


def _tables(report: DailyReport) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) for both renderers, so Markdown and HTML always show the same figures."""
    integrations = [
        [
            f.name,
            str(len(f.events)),
            str(f.deliveries),
            str(f.delivered),
            str(f.dead_lettered + f.fell_back),
            str(f.retrying),
            _pct(f.success_rate),
            _ms(f.percentile(50)),
            _ms(f.percentile(95)),
            _ms(f.percentile(99)),
            _sla(f.sla_seconds),
            _pct(f.within_sla),
        ]
        for f in report.integrations
    ]
    failures = [[d, r, str(n)] for (d, r), n in report.failure_reasons.most_common(10)]
    dead = [[d, r, str(n)] for (d, r), n in report.dead_letter_new.most_common(10)]
    open_dest = [[d, str(n)] for d, n in report.dead_letter_open_by_destination.most_common()]
    syncs = [
        [
            s.name,
            str(s.runs_seen),
            str(s.failures_seen),
            s.last_run_at or "-",
            s.last_success_at or "-",
            str(s.consecutive_failures),
            ("ALERT: " if s.alert else "") + (s.last_error or "-"),
        ]
        for s in report.syncs
    ]
    return [
        (
            "Integrations",
            [
                "Integration",
                "Events",
                "Deliveries",
                "Delivered",
                "Failed (DLQ/fallback)",
                "Retrying",
                "Success",
                "p50",
                "p95",
                "p99",
                "SLA",
                "Within SLA",
            ],
            integrations,
        ),
        ("Failed attempts: top reasons", ["Destination", "Reason", "Attempts"], failures),
        ("Dead-lettered today: top reasons", ["Destination", "Reason", "Records"], dead),
        ("Dead-letter items still open, by destination", ["Destination", "Open"], open_dest),
        (
            "Sync jobs",
            ["Sync", "Runs", "Failed runs", "Last run", "Last success", "Failing in a row", "Last error"],
            syncs,
        ),
    ]


def _headline(report: DailyReport) -> list[str]:
    new_dead = sum(report.dead_letter_new.values())
    generated = report.generated_at.isoformat(timespec="seconds")
    lines = [
        f"Day {report.day.isoformat()} ({report.timezone}); generated {generated}.",
        f"Events processed: {report.events_total}. Dead-lettered today: {new_dead}. "
        f"Dead-letter items open: {report.dead_letter_open}.",
    ]
    if report.dead_letter_open > report.dead_letter_alert_over:
        lines.append(
            f"ALERT: more than {report.dead_letter_alert_over} open dead-letter items — "
            "run the daily DLQ review (docs/operators.md)."
        )
    return lines


def render_markdown(report: DailyReport) -> str:
    out = [f"# Carinho Integrações — daily report {report.day.isoformat()}", ""]
    out += [line + "  " for line in _headline(report)] + [""]
    for title, header, rows in _tables(report):
        out += [f"## {title}", ""]
        if not rows:
            out += ["None.", ""]
            continue
        out.append("| " + " | ".join(header) + " |")
        out.append("|" + "---|" * len(header))
        out += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
        out.append("")
    return "\n".join(out)


def render_html(report: DailyReport) -> str:
    from html import escape

    parts = [
        '<!doctype html><html lang="pt-BR"><head><meta charset="utf-8">',
        f"<title>Carinho Integrações — daily report {report.day.isoformat()}</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:2rem;color:#222}"
        "table{border-collapse:collapse;margin:.5rem 0 1.5rem}th,td{border:1px solid #ccc;"
        "padding:.3rem .6rem;text-align:left}th{background:#f3f3f3}.alert{color:#b00020;font-weight:bold}"
        "</style></head><body>",
        f"<h1>Carinho Integrações — daily report {report.day.isoformat()}</h1>",
    ]
    for line in _headline(report):
        css = ' class="alert"' if line.startswith("ALERT") else ""
        parts.append(f"<p{css}>{escape(line)}</p>")
    for title, header, rows in _tables(report):
        parts.append(f"<h2>{escape(title)}</h2>")
        if not rows:
            parts.append("<p>None.</p>")
            continue
        parts.append("<table><thead><tr>" + "".join(f"<th>{escape(h)}</th>" for h in header) + "</tr></thead><tbody>")
        parts += ["<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows]
        parts.append("</tbody></table>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def render(report: DailyReport, fmt: ReportFormat) -> str:
    return render_html(report) if fmt == "html" else render_markdown(report)


class ReportPostFailed(RuntimeError):
    """The report webhook did not take the report. Its message never holds the URL: a webhook URL
    usually carries its secret (hooks.slack.com/services/T/B/<secret>), and this message is logged,
    kept as the job's `last_error` and shown on /ops."""


def post_report(url: str, report: DailyReport, timeout: float = 10.0) -> int:
    """POST {date, markdown, html, summary} as JSON; ReportPostFailed on a non-2xx answer or no answer."""
    try:
        response = httpx.post(
            url,
            json={
                "date": report.day.isoformat(),
                "markdown": render_markdown(report),
                "html": render_html(report),
                "summary": report.summary(),
            },
            timeout=timeout,
        )
    except httpx.HTTPError as exc:  # its message may name the URL
        raise ReportPostFailed(f"the report webhook could not be reached ({type(exc).__name__})") from None
    if not response.is_success:
        raise ReportPostFailed(f"the report webhook answered HTTP {response.status_code}")
    return response.status_code


def publish_report(
    topology: Topology,
    bootstrap: str,
    day: date,
    settings: OperatorSettings,
    *,
    fmt: ReportFormat = "md",
    out: Path | None = None,
    post_url: str | None = None,
    operator: str = "scheduler",
) -> str:
    """Build, render, optionally write and POST; audited (who produced which day's report, and where)."""
    from operators.audit import AuditLog

    report = build_daily_report(topology, bootstrap, day, settings.report_timezone)
    text = render(report, fmt)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    status = post_report(post_url, report) if post_url else None
    AuditLog(topology, bootstrap, operator).record(
        "report.daily",
        count=report.events_total,
        filters={"date": day.isoformat(), "timezone": settings.report_timezone},
        detail={"format": fmt, "out": str(out) if out else None, "posted": bool(post_url), "post_status": status},
    )
    return text


class ReportSchedule(Protocol):
    """The report settings the processors (ProcessorSettings) and the CLI (OperatorSettings) share."""

    @property
    def report_daily_at(self) -> str: ...
    @property
    def report_timezone(self) -> str: ...
    @property
    def report_webhook_url(self) -> Any: ...
    @property
    def report_dir(self) -> Path: ...


def next_run_at(settings: ReportSchedule, now: datetime) -> datetime:
    """The next CARINHO_REPORT_DAILY_AT in CARINHO_REPORT_TIMEZONE after `now`."""
    tz = ZoneInfo(settings.report_timezone)
    at = parse_time_of_day(settings.report_daily_at)
    local = now.astimezone(tz)
    candidate = datetime.combine(local.date(), at, tz)
    if candidate > local:
        return candidate
    return datetime.combine(local.date() + timedelta(days=1), at, tz)


def day_to_report(settings: ReportSchedule, now: datetime, last_reported: date | None) -> date | None:
    """The day the scheduled job should report now, or None: the previous day once its local
    CARINHO_REPORT_DAILY_AT has passed, each day once; a day missed while no worker ran is caught up."""
    tz = ZoneInfo(settings.report_timezone)
    local = now.astimezone(tz)
    at = parse_time_of_day(settings.report_daily_at)
    latest = local.date() - timedelta(days=1 if local.time() >= at else 2)
    if last_reported is not None and last_reported >= latest:
        return None
    return latest


def run_scheduled_report(
    topology: Topology, bootstrap: str, settings: ReportSchedule, now: datetime | None = None, day: date | None = None
) -> Path:
    """The processors' daily job: report `day` (default: the previous day in the report timezone),
    write Markdown and HTML to CARINHO_REPORT_DIR, POST to CARINHO_REPORT_WEBHOOK_URL when set.
    Blocking: call it in a thread."""
    tz = ZoneInfo(settings.report_timezone)
    day = day or (now or datetime.now(tz)).astimezone(tz).date() - timedelta(days=1)
    report = build_daily_report(topology, bootstrap, day, settings.report_timezone)
    settings.report_dir.mkdir(parents=True, exist_ok=True)
    path = settings.report_dir / f"daily-{day.isoformat()}.md"
    path.write_text(render_markdown(report), encoding="utf-8")
    path.with_suffix(".html").write_text(render_html(report), encoding="utf-8")
    url = str(settings.report_webhook_url) if settings.report_webhook_url else None
    status = post_report(url, report) if url else None
    from operators.audit import AuditLog

    AuditLog(topology, bootstrap, "scheduler").record(
        "report.daily",
        count=report.events_total,
        filters={"date": day.isoformat()},
        detail={"out": str(path), "posted": bool(url), "post_status": status},
    )
    return path
