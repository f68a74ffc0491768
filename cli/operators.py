"""`carinho dlq|audit|scheduled|report|matrix`: the operator tools (operators/*). Thin layer: parse arguments,
call operators.*, print. Exit codes: 0 ok, 1 failure (Kafka, drift), 2 bad usage (filters, ids)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import orjson

from hub.topology import Topology, TopologyError, load_topology
from operators.audit import AuditEntry, read_audit, resolve_operator
from operators.dlq import DlqError, DlqTool, ReplayResult
from operators.dlq_edit import EditError
from operators.dlq_filters import DlqFilter, FilterError, build_filter, parse_time
from operators.dlq_items import BadDlqId, DlqId
from operators.settings import OperatorSettings

Handler = Callable[[argparse.Namespace], int]


# ---- plumbing -------------------------------------------------------------------------------------
def _settings() -> OperatorSettings:
    return OperatorSettings()


def _topology(settings: OperatorSettings, *, namespaced: bool = True) -> Topology:
    try:
        topology = load_topology(settings.topology_file)
    except TopologyError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(2) from None
    if namespaced and settings.topic_namespace:
        return topology.with_namespace(settings.topic_namespace)
    return topology


def _guarded(func: Handler) -> Handler:
    """Turn the tools' expected errors into one clear line and an exit code."""

    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except (FilterError, BadDlqId, EditError, DlqError) as exc:
            print(f"carinho: {exc}", file=sys.stderr)
            return 2
        # KafkaUnavailable (and confluent_kafka's KafkaException): one line from cli/main.py, exit 1

    return run


def _tool(args: argparse.Namespace) -> tuple[DlqTool, Topology]:
    settings = _settings()
    topology = _topology(settings)
    operator = resolve_operator(args.operator, settings.operator)
    tool = DlqTool(
        topology,
        args.bootstrap or settings.kafka_bootstrap_servers,
        operator,
        replay_rate=settings.replay_rate,
        archive_dir=getattr(args, "dir", None) or settings.archive_dir,
    )
    return tool, topology


def _filter(args: argparse.Namespace, topology: Topology) -> DlqFilter:
    return build_filter(
        topology,
        destination=args.destination,
        event_type=args.event_type,
        reason=args.reason,
        status_code=args.status_code,
        since=args.since,
        until=args.until,
        event_id=args.event_id,
        status=args.status,
        ids=[*(args.id or []), *(getattr(args, "ids", None) or [])] or None,
    )


def _confirm(question: str, args: argparse.Namespace) -> bool:
    """--yes, or an interactive "yes"; without a terminal (cron, CI) only --yes confirms."""
    if args.yes:
        return True
    if not sys.stdin.isatty():
        return False
    answer = input(f"{question} Type 'yes' to confirm: ")
    return answer.strip().lower() == "yes"


def _table(rows: list[dict[str, Any]], columns: list[tuple[str, str]], out: TextIO) -> None:
    if not rows:
        return
    cells = [[("" if r.get(key) is None else str(r.get(key))) for key, _ in columns] for r in rows]
    widths = [max(len(title), *(len(c[i]) for c in cells)) for i, (_, title) in enumerate(columns)]
    out.write("  ".join(title.ljust(w) for (_, title), w in zip(columns, widths, strict=True)).rstrip() + "\n")
    for row in cells:
        out.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n")


LIST_COLUMNS = [
    ("id", "ID"),
    ("failed_at", "FAILED_AT"),
    ("status", "STATUS"),
    ("destination", "DESTINATION"),
    ("event_type", "EVENT_TYPE"),
    ("reason", "REASON"),
    ("status_code", "CODE"),
    ("attempts", "ATTEMPTS"),
    ("event_id", "EVENT_ID"),
]


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()


# ---- dlq ------------------------------------------------------------------------------------------
@_guarded
def _stats(args: argparse.Namespace) -> int:
    tool, topology = _tool(args)
    flt = _filter(args, topology)
    stats = tool.stats(flt)
    if args.json:
        print(_json(stats.as_dict()))
        return 0
    # The total counts the statuses asked for (open ones unless --status), "by status" every status:
    # say so, or "matching: 0" beside "replayed 3" reads as a contradiction.
    print(
        f"dead-letter records matching: {stats.total} (status {' or '.join(sorted(flt.statuses))})"
        + (f", oldest failed {stats.oldest.isoformat()}" if stats.oldest else "")
    )
    print(
        "by status, whatever --status says: " + (", ".join(f"{k} {v}" for k, v in stats.by_status.most_common()) or "-")
    )
    for title, counter in (
        ("destination", stats.by_destination),
        ("event type", stats.by_event_type),
        ("reason", stats.by_reason),
        ("age", stats.by_age),
    ):
        print(f"by {title}:")
        for name, count in counter.most_common():
            print(f"  {count:>7}  {name}")
    return 0


@_guarded
def _list(args: argparse.Namespace) -> int:
    tool, topology = _tool(args)
    flt = _filter(args, topology)
    shown, more = 0, 0
    rows: list[dict[str, Any]] = []
    for item, status in tool.iter_items(flt):
        if args.limit and shown >= args.limit:
            more += 1
            continue
        row = {**item.summary(), "status": status}
        shown += 1
        if args.json:
            print(orjson.dumps(row).decode())
        else:
            rows.append(row)
    if not args.json:
        _table(rows, LIST_COLUMNS, sys.stdout)
        print(f"{shown} shown" + (f", {more} more (raise --limit, or 0 for all)" if more else ""))
    return 0


@_guarded
def _show(args: argparse.Namespace) -> int:
    tool, _ = _tool(args)
    view = tool.show(DlqId.parse(args.dlq_id), reveal=args.reveal)
    if args.raw:
        value = view.get("edited_value", view["value"]) if not args.original else view["value"]
        print(_json(value))
    else:
        print(_json(view))
    if not args.reveal:
        print("(personal data masked; --reveal shows it and is audited)", file=sys.stderr)
    return 0


def _print_replay(result: ReplayResult, to: str) -> None:
    verb = "would replay" if result.dry_run else "replayed"
    count = result.by_target.total() if result.dry_run else result.replayed
    print(f"{verb} {count} of {result.matched} matching record(s) (--to {to})")
    for topic, n in result.by_target.most_common():
        print(f"  {n:>7} -> {topic}")
    for problem, n in result.not_replayable.most_common():
        print(f"  {n:>7} skipped: {problem}")
    if result.failed:
        print(f"  {result.failed:>7} FAILED to write (still open; run the replay again)")
    if result.dry_run:
        _table(
            result.sample,
            [("id", "ID"), ("status", "STATUS"), ("destination", "DESTINATION"), ("reason", "REASON"), ("to", "TO")],
            sys.stdout,
        )
        if result.matched > len(result.sample):
            print(f"... and {result.matched - len(result.sample)} more")
        if count:
            print("dry run: nothing was sent. Re-run with --yes to replay.")


@_guarded
def _replay(args: argparse.Namespace) -> int:
    tool, topology = _tool(args)
    result = tool.replay(
        _filter(args, topology), to=args.to, execute=args.yes, rate=args.rate, progress=not args.no_progress
    )
    _print_replay(result, args.to)
    if result.matched == 0 and not args.status:
        print(
            "no open record matches: records already replayed, purged or archived are left out "
            "(`--status all` lists them; `--status replayed --yes` replays them again)"
        )
    return 1 if result.failed else 0


@_guarded
def _edit(args: argparse.Namespace) -> int:
    tool, _ = _tool(args)
    replacement = None
    if args.file:
        replacement = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    state = tool.edit(DlqId.parse(args.dlq_id), sets=args.set or [], unsets=args.unset or [], replacement=replacement)
    print(
        f"{state.dlq_id}: corrected ({', '.join(state.edited_paths)}); the original is kept. "
        f"Replay it with: carinho dlq replay --id {state.dlq_id} --yes"
    )
    return 0


def _close_command(action: str) -> Handler:
    @_guarded
    def run(args: argparse.Namespace) -> int:
        tool, topology = _tool(args)
        flt = _filter(args, topology)
        preview = tool.purge(flt, execute=False) if action == "purge" else tool.archive(flt, execute=False)[0]
        if preview == 0:
            print(f"nothing to {action}: no record matches")
            return 0
        if not _confirm(f"{action.capitalize()} {preview} dead-letter record(s)?", args):
            print(f"would {action} {preview} record(s); nothing changed. Re-run with --yes to confirm.")
            return 0
        if action == "purge":
            count = tool.purge(flt, execute=True)
            print(f"purged {count} record(s) (marked; they leave the topic with its retention)")
        else:
            count, path = tool.archive(flt, execute=True)
            print(f"archived {count} record(s) to {path}")
        return 0

    return run


@_guarded
def _export(args: argparse.Namespace) -> int:
    tool, topology = _tool(args)
    flt = _filter(args, topology)
    if args.out and args.out != "-":
        with open(args.out, "wb") as handle:
            count = tool.export(flt, handle.write, reveal=args.reveal)
        print(f"exported {count} record(s) to {args.out}" + ("" if args.reveal else " (masked)"), file=sys.stderr)
    else:
        count = tool.export(flt, sys.stdout.buffer.write, reveal=args.reveal)
        sys.stdout.flush()
    return 0


# ---- audit ----------------------------------------------------------------------------------------
@_guarded
def _audit(args: argparse.Namespace) -> int:
    settings = _settings()
    topology = _topology(settings)
    now = datetime.now(UTC)
    try:
        since = parse_time(args.since, now=now, option="--since")
        until = parse_time(args.until, now=now, option="--until") if args.until else None
    except ValueError as exc:
        raise FilterError([str(exc)]) from None
    entries: list[AuditEntry] = sorted(
        read_audit(
            topology,
            args.bootstrap or settings.kafka_bootstrap_servers,
            since=since,
            until=until,
            action=args.action,
            operator=args.by,
        ),
        key=lambda e: e.at,
    )
    if args.limit:
        entries = entries[-args.limit :]
    if args.json:
        for entry in entries:
            print(entry.to_json().decode())
        return 0
    rows = [
        {
            "at": e.at.isoformat(timespec="seconds"),
            "operator": e.operator,
            "action": e.action,
            "mode": "dry-run" if e.dry_run else ("REVEAL" if e.reveal else ""),
            "count": e.count,
            "filters": " ".join(f"{k}={v}" for k, v in sorted(e.filters.items())),
        }
        for e in entries
    ]
    _table(
        rows,
        [
            ("at", "AT"),
            ("operator", "OPERATOR"),
            ("action", "ACTION"),
            ("mode", "MODE"),
            ("count", "COUNT"),
            ("filters", "FILTERS"),
        ],
        sys.stdout,
    )
    print(f"{len(rows)} operator action(s) since {since.isoformat(timespec='seconds')}")
    return 0


# ---- scheduled ------------------------------------------------------------------------------------
def _scheduled(args: argparse.Namespace) -> int:
    from operators.scheduled import read_scheduled

    settings = _settings()
    topology = _topology(settings)
    found = read_scheduled(topology, args.bootstrap or settings.kafka_bootstrap_servers)
    pending = [m for m in found if m.state == "pending"]
    shown = found if args.all else pending
    if args.limit:
        shown = shown[: args.limit]
    if args.json:
        for message in shown:
            print(orjson.dumps(message.as_dict()).decode())
        return 0
    rows = [
        {
            **message.as_dict(),
            "due_at": message.due_at.isoformat(timespec="seconds") if message.due_at else "-",
            "fired_at": message.fired_at.isoformat(timespec="seconds") if message.fired_at else "",
        }
        for message in shown
    ]
    columns = [("due_at", "DUE_AT"), ("state", "STATE")]
    columns += [("fired_at", "RELEASED_AT")] if args.all else []
    columns += [
        ("message_type", "MESSAGE"),
        ("destination", "DESTINATION"),
        ("event_type", "EVENT_TYPE"),
        ("event_id", "EVENT_ID"),
        ("delivery_id", "DELIVERY_ID"),
    ]
    _table(rows, columns, sys.stdout)
    due = pending[0].due_at.isoformat(timespec="seconds") if pending and pending[0].due_at else None
    print(
        f"{len(pending)} pending"
        + (f" (next due {due})" if due else "")
        + f", {len(found) - len(pending)} released in the last 8 days; {len(rows)} shown"
    )
    return 0


# ---- report / matrix ------------------------------------------------------------------------------
@_guarded
def _report_daily(args: argparse.Namespace) -> int:
    from operators.report import publish_report, resolve_day

    settings = _settings()
    topology = _topology(settings)
    bootstrap = args.bootstrap or settings.kafka_bootstrap_servers
    try:
        day = resolve_day(args.date, settings.report_timezone)
    except ValueError as exc:
        raise FilterError([str(exc)]) from None
    operator = resolve_operator(args.operator, settings.operator)
    text = publish_report(
        topology,
        bootstrap,
        day,
        settings,
        fmt=args.format,
        out=Path(args.out) if args.out else None,
        post_url=args.post,
        operator=operator,
    )
    if not args.out:
        sys.stdout.write(text)
    else:
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


def _matrix(args: argparse.Namespace) -> int:
    from operators.matrix import render_matrix

    settings = _settings()
    topology = _topology(settings, namespaced=False)
    expected = render_matrix(topology)
    path = Path(args.out)
    if args.check:
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == expected:
            print(f"{path} is up to date")
            return 0
        import difflib

        diff = difflib.unified_diff(
            (current or "").splitlines(),
            expected.splitlines(),
            f"{path} (committed)",
            f"{path} (from topics.yaml)",
            lineterm="",
            n=1,
        )
        print(f"{path} differs from topics.yaml; run `carinho matrix` and commit it", file=sys.stderr)
        for line in list(diff)[:60]:
            print(line, file=sys.stderr)
        return 1
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(expected, encoding="utf-8")
    print(f"wrote {path}")
    return 0


# ---- registration ---------------------------------------------------------------------------------
def _connection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bootstrap", help="override CARINHO_KAFKA_BOOTSTRAP_SERVERS")
    parser.add_argument("--operator", help="who is acting (default CARINHO_OPERATOR, else the OS user)")


def _filters(parser: argparse.ArgumentParser) -> None:
    # IDs also as positional arguments, as `dlq show ID` and `dlq edit ID` take them.
    parser.add_argument("ids", nargs="*", metavar="ID", help="DLQ ids <partition>:<offset> (same as --id)")
    group = parser.add_argument_group("filters (repeat or comma-separate values)")
    group.add_argument("--destination", action="append", help="e.g. crm")
    group.add_argument("--event-type", action="append", help="e.g. lead.created")
    group.add_argument("--reason", action="append", help="e.g. http_400, retries_exhausted, http_4* (glob)")
    group.add_argument("--status-code", action="append", help="last HTTP status: 422, or a class: 5xx")
    group.add_argument("--since", help="failed at/after: ISO date-time, date, or a duration back (24h, 7d)")
    group.add_argument("--until", help="failed before: same forms as --since")
    group.add_argument("--event-id", action="append", help="event UUID")
    group.add_argument("--id", action="append", help="DLQ id <partition>:<offset>")
    group.add_argument(
        "--status",
        action="append",
        help="open (default: pending+edited), all, pending, edited, replayed, purged, archived",
    )


def register(sub: Any) -> None:
    dlq = sub.add_parser("dlq", help="dead-letter records: stats, list, show, replay, edit, purge, archive, export")
    dsub = dlq.add_subparsers(dest="dlq_command", metavar="ACTION")
    dsub.required = True

    p = dsub.add_parser("stats", help="counts by status, destination, event type, reason and age")
    _connection(p)
    _filters(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_stats)

    p = dsub.add_parser("list", help="list dead-letter records (no payloads)")
    _connection(p)
    _filters(p)
    p.add_argument("--limit", type=int, default=50, help="rows to show (0 = all; default 50)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=_list)

    p = dsub.add_parser("show", help="one record: envelope, attempts, last error (masked unless --reveal)")
    _connection(p)
    p.add_argument("dlq_id", metavar="ID", help="<partition>:<offset> from `carinho dlq list`")
    p.add_argument("--reveal", action="store_true", help="show personal data (audited)")
    p.add_argument("--raw", action="store_true", help="print only the record's value (the correction if edited)")
    p.add_argument("--original", action="store_true", help="with --raw: the original value even if edited")
    p.set_defaults(func=_show)

    p = dsub.add_parser("replay", help="send records back for delivery (dry run unless --yes)")
    _connection(p)
    _filters(p)
    p.add_argument(
        "--to",
        choices=("retry", "main"),
        default="retry",
        help="the destination's first retry tier (default) or its main deliver topic",
    )
    p.add_argument("--yes", action="store_true", help="really replay (default: dry run)")
    p.add_argument("--rate", type=float, help="records per second (default CARINHO_REPLAY_RATE, 50)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.set_defaults(func=_replay)

    p = dsub.add_parser("edit", help="correct a record before replay (the original is kept; audited)")
    _connection(p)
    p.add_argument("dlq_id", metavar="ID")
    p.add_argument(
        "--set",
        action="append",
        metavar="PATH=VALUE",
        help="e.g. payload.telefone='\"+55 11 99999-0000\"' (JSON or plain text)",
    )
    p.add_argument("--unset", action="append", metavar="PATH")
    p.add_argument("--file", help="the whole corrected record as JSON ('-' for stdin)")
    p.set_defaults(func=_edit)

    for name, text in (
        ("purge", "mark records as discarded (they age out with the topic)"),
        ("archive", "copy records to a gzip JSONL archive, then close them"),
    ):
        p = dsub.add_parser(name, help=f"{text}; asks for confirmation")
        _connection(p)
        _filters(p)
        p.add_argument("--yes", action="store_true", help="confirm without asking")
        if name == "archive":
            p.add_argument("--dir", type=Path, help="archive directory (default CARINHO_ARCHIVE_DIR)")
        p.set_defaults(func=_close_command(name))

    p = dsub.add_parser("export", help="write matching records as JSON lines (masked unless --reveal)")
    _connection(p)
    _filters(p)
    p.add_argument("--out", help="file (default stdout)")
    p.add_argument("--reveal", action="store_true", help="unmasked personal data (audited)")
    p.set_defaults(func=_export)

    p = sub.add_parser("audit", help="operator actions from the audit topic (90 days)")
    _connection(p)
    p.add_argument("--since", default="7d", help="ISO date-time, date, or a duration back (default 7d)")
    p.add_argument("--until")
    p.add_argument("--action", help="e.g. dlq.replay, or dlq for every dlq action")
    p.add_argument("--by", help="only this operator")
    p.add_argument("--limit", type=int, default=200, help="latest N (0 = all)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_audit)

    p = sub.add_parser("scheduled", help="delayed messages waiting in the processors (feedback requests), no payloads")
    _connection(p)
    p.add_argument("--all", action="store_true", help="also those already released (kept 8 days)")
    p.add_argument("--limit", type=int, default=0, help="first N by due time (0 = all)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=_scheduled)

    report = sub.add_parser("report", help="operational reports")
    rsub = report.add_subparsers(dest="report_command", metavar="REPORT")
    rsub.required = True
    p = rsub.add_parser("daily", help="the day's report: volumes, success, latency vs SLA, failures, DLQ, syncs")
    _connection(p)
    p.add_argument("--date", help="YYYY-MM-DD in CARINHO_REPORT_TIMEZONE (default today; 'yesterday' works)")
    p.add_argument("--format", choices=("md", "html"), default="md")
    p.add_argument("--out", help="write to a file instead of stdout")
    p.add_argument("--post", help="also POST the report (JSON with markdown and html) to this webhook URL")
    p.set_defaults(func=_report_daily)

    p = sub.add_parser("matrix", help="generate docs/integration-matrix.md from topics.yaml")
    p.add_argument("--check", action="store_true", help="exit 1 when the file differs from topics.yaml")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "docs" / "integration-matrix.md"))
    p.set_defaults(func=_matrix)
