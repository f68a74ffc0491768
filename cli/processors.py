"""`carinho processors` (run a worker), `carinho sync run NAME | status`, `carinho trace EVENT_ID`."""

from __future__ import annotations

import argparse
import logging
import sys
import uuid
import zlib
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from cli.settings import CliSettings
from processors.settings import ProcessorSettings


def register(sub: Any) -> None:
    run = sub.add_parser("processors", help="run a stream-processor worker in the foreground")
    run.add_argument("--web-port", type=int, help="web/metrics port (default CARINHO_WEB_PORT or 6066)")
    run.add_argument("--bootstrap", help="override CARINHO_KAFKA_BOOTSTRAP_SERVERS")
    run.add_argument("--no-syncs", action="store_true", help="do not run scheduled syncs on this worker")
    run.set_defaults(func=_run)

    sync = sub.add_parser("sync", help="scheduled syncs: run one now, or show all")
    ssub = sync.add_subparsers(dest="sync_command", metavar="ACTION")
    ssub.required = True
    sync_run = ssub.add_parser("run", help="run one sync now (pull its change feed, emit events)")
    sync_run.add_argument("name")
    sync_run.set_defaults(func=_sync_run)
    sync_status = ssub.add_parser("status", help="watermark, last run and failures of every sync")
    sync_status.add_argument("--json", action="store_true")
    sync_status.set_defaults(func=_sync_status)

    trace = sub.add_parser("trace", help="print the trail of one event (every hop, personal data masked)")
    trace.add_argument("event_id")
    trace.add_argument(
        "--url",
        help="processors web URL (default CARINHO_PROCESSORS_URL, which `make up` writes to .run/hub.env; "
        "else http://CARINHO_WEB_HOST:CARINHO_WEB_PORT, i.e. http://127.0.0.1:6066)",
    )
    trace.add_argument("--json", action="store_true")
    trace.set_defaults(func=_trace)


def _settings(args: argparse.Namespace, **overrides: Any) -> ProcessorSettings:
    """The worker's settings (`carinho processors`: a service, so the environment only)."""
    values = {k: v for k, v in overrides.items() if v is not None}
    if getattr(args, "bootstrap", None):
        values["kafka_bootstrap_servers"] = args.bootstrap
    return ProcessorSettings(**values)


def _tool_settings(args: argparse.Namespace) -> tuple[ProcessorSettings, CliSettings]:
    """`sync` and `trace`: the processors' settings with the CLI's view of the running hub on top
    (the environment, else `.run/hub.env` written by `make up`; cli/settings.py)."""
    cli = CliSettings()
    return _settings(args, **cli.processor_overrides()), cli


def _run(args: argparse.Namespace) -> int:
    from processors.app import run

    settings = _settings(args, web_port=args.web_port, sync_enabled=False if args.no_syncs else None)
    run(settings)
    return 0


def _sync_run(args: argparse.Namespace) -> int:
    from processors.syncs.runner import SyncConfigError, SyncRunner, feed_url

    settings, _ = _tool_settings(args)
    topology = settings.topology()
    if args.name not in topology.syncs:
        print(f"unknown sync {args.name!r}; topics.yaml defines {sorted(topology.syncs)}", file=sys.stderr)
        return 2
    try:  # a configuration error is this shell's, not the sync's: not recorded as a (failed) run
        feed_url(topology, args.name, settings.source_url)
    except SyncConfigError as exc:
        print(
            f"sync {args.name}: {exc} (`make up` writes them for the local hub to .run/hub.env); nothing was run",
            file=sys.stderr,
        )
        return 2
    # The outcome is printed below. With no handler anywhere (a CLI configures no logging), Python
    # would print the runner's warning bare on stderr ("sync failed"); a handler that drops it stops
    # that and leaves any configured handler (a service's, a test's) as it is.
    runner_log = logging.getLogger("processors.syncs")
    if not any(isinstance(h, logging.NullHandler) for h in runner_log.handlers):
        runner_log.addHandler(logging.NullHandler())
    runner = SyncRunner(
        topology,
        settings.kafka_bootstrap_servers,
        settings.source_url,
        http_timeout=settings.sync_http_timeout,
        tokens=settings.source_bearer_tokens(),
    )
    try:
        result = runner.run(args.name)
    finally:
        runner.close()
    if result.ok:
        print(
            f"sync {result.sync}: ok, {result.items} item(s) in {result.pages} page(s), "
            f"watermark {result.watermark or '-'} ({result.duration_ms:.0f} ms)"
        )
        return 0
    print(f"sync {result.sync}: FAILED after {result.items} item(s): {result.error}", file=sys.stderr)
    return 1


def _sync_status(args: argparse.Namespace) -> int:
    from hub.durations import format_duration
    from processors.syncs.runner import next_due
    from processors.syncs.watermarks import SyncState, SyncStateStore

    settings, _ = _tool_settings(args)
    topology = settings.topology()
    # a person waits: two tries (~20 s when no broker answers), not the worker's five
    states = SyncStateStore(topology, settings.kafka_bootstrap_servers).load_all(timeout=10, attempts=2)
    rows = []
    for name, sync in topology.syncs.items():
        state = states.get(name) or SyncState(sync=name)
        due = next_due(sync, state, settings.sync_retry_after)
        rows.append(
            {
                **state.health(),
                "every": format_duration(sync.every),  # as topics.yaml writes it ("1d", "4h")
                "every_seconds": int(sync.every.total_seconds()),
                "next_due": due.isoformat() if due else "now",
                "last_result": state.last_result,
            }
        )
    threshold = topology.alerts.sync_consecutive_failures
    failing = any(r["consecutive_failures"] >= threshold for r in rows)  # the exit code, in both forms
    if args.json:
        print(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
        return 1 if failing else 0
    print(f"{'SYNC':22} {'WATERMARK':27} {'LAST SUCCESS':27} {'FAILS':>5}  NEXT DUE / LAST ERROR")
    for row in rows:
        flag = " !" if row["consecutive_failures"] >= threshold else ""
        print(
            f"{row['sync']:22} {row['watermark'] or '-':27} {row['last_success_at'] or 'never':27} "
            f"{row['consecutive_failures']:>5}{flag}  {row['next_due']}  {row['last_error'] or ''}"
        )
    return 1 if failing else 0


def _trace(args: argparse.Namespace) -> int:
    try:
        event_id = str(uuid.UUID(args.event_id))
    except ValueError:
        print("event_id must be a UUID", file=sys.stderr)
        return 2
    settings, cli = _tool_settings(args)
    url = (args.url or cli.processors_url or f"http://{settings.web_host}:{settings.web_port}").rstrip("/")
    try:
        response = httpx.get(f"{url}/v1/trail/{event_id}", timeout=5.0)
        hops = response.json().get("hops", []) if response.status_code in (200, 404) else None
    except httpx.HTTPError:
        hops = None
    if not hops:  # processors not reachable (or another hub on that port): read the trail partition
        hops = _trail_from_topic(settings, event_id)
    if args.json:
        print(orjson.dumps(hops, option=orjson.OPT_INDENT_2).decode())
        return 0 if hops else 1
    if not hops:
        print(f"no trail for {event_id}", file=sys.stderr)
        return 1
    print(f"trail of {event_id}:")
    for hop in hops:
        where = f" -> {hop['destination']}" if hop.get("destination") else ""
        extra = " ".join(f"{k}={hop[k]}" for k in ("attempt", "status", "latency_ms") if hop.get(k) is not None)
        detail = orjson.dumps(hop.get("detail") or {}).decode()
        print(f"  {hop['at']}  {hop['service']:<10} {hop['hop']:<18}{where} {extra} {detail}")
    return 0


def _trail_from_topic(settings: ProcessorSettings, event_id: str) -> list[dict[str, Any]]:
    """Fallback: scan the one trail partition that holds this event (key = event_id)."""
    from confluent_kafka import Consumer, TopicPartition

    from hub.kafka_config import consumer_config
    from hub.masking import mask_data

    topology = settings.topology()
    topic = topology.system_topic("trail")
    consumer = Consumer(
        consumer_config(
            settings.kafka_bootstrap_servers, group_id=f"trace-{uuid.uuid4().hex[:8]}", client_id="carinho-trace"
        )
    )
    hops: list[dict[str, Any]] = []
    try:
        partitions = len(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        partition = zlib.crc32(event_id.encode()) % partitions
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        consumer.assign([TopicPartition(topic, partition, low)])
        position = low
        while position < high:
            msg = consumer.poll(2.0)
            if msg is None:
                break
            if msg.error():
                continue
            position = msg.offset() + 1
            if msg.key() == event_id.encode() and msg.value():
                hops.append(mask_data(orjson.loads(msg.value())))
    finally:
        consumer.close()
    hops.sort(key=lambda h: str(h.get("at") or datetime.min.replace(tzinfo=UTC).isoformat()))
    return hops
