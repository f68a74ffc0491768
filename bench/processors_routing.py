"""Processors routing benchmark (not a timed test): `python -m bench.processors_routing`.

Same input, same routing work (validate envelope, dedupe by (source, key) with a state write,
route + transform + automations via processors.routing.Router, and the same output records built by
processors.output.OutputBuilder: deliveries, delayed messages, the `routed` and `scheduled` trail hops):
  faust      - the real worker (`python -m processors`) as a subprocess, trail index off (apples to apples)
  confluent  - a hand-written confluent-kafka consume -> route -> produce loop (dict + changelog topic)
  quix       - the same routing as a quixstreams app (RocksDB state with changelog)
Then: with `--backlog` (default 100,000) p5 events queued, p99 routing latency of p1 events sent at a
steady rate to the faust worker, and the worker's peak RSS. Prints one JSON summary.

Besides events/s (wall clock, noisy on a shared machine) each contender reports `cpu_us_per_event`:
CPU seconds of its whole process (all threads, librdkafka's included) per routed event, which other
load on the machine barely moves, and `probe_ms`: the machine's speed during the round
(bench/machine_speed.py; higher is slower), to compare rounds taken at different speeds. Starts its
own broker (bench.common.bench_broker: port CARINHO_BENCH_KAFKA_PORT, or KAFKA_BOOTSTRAP_SERVERS)
unless --bootstrap is given.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil  # type: ignore[import-untyped]
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from bench.broker_warmup import warm_until_settled
from bench.common import MainThreadTime, bench_broker, drop_hub, metric_sum
from bench.machine_speed import SpeedProbe
from hub.admin import apply_topics
from hub.envelope import EventEnvelope, new_envelope
from hub.kafka_config import admin_config, consumer_config, producer_config
from hub.topology import Topology, load_topology
from processors import dedupe
from processors.output import OutputBuilder
from processors.routing import InvalidRecord, Router, parse_record
from tests.kafka_support import read_topic

ROOT = Path(__file__).resolve().parent.parent
INPUT_LEVEL = 3
METRICS_POLL = 0.25  # seconds between /health reads of the faust worker (its routed count)
DEDUPE_WINDOW = 7 * 86400.0
WARM_UP_EVENTS = 10_000  # the worker's default CARINHO_DEDUPE_WINDOW


def cpu_seconds(process: Any) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def mix(i: int, priority: int) -> EventEnvelope:
    """A rotating mix of the five event types (1-3 deliveries each, some automation messages)."""
    k = f"b{uuid.uuid4().hex[:12]}"
    kind = i % 5
    if kind == 0:
        return new_envelope(
            type="lead.created",
            source="site",
            priority=priority,
            idempotency_key=k,
            data={"name": "Ana Souza", "phone": "+5511999990000", "origin": "site"},
        )
    if kind == 1:
        return new_envelope(
            type="cliente.created",
            source="crm",
            priority=priority,
            idempotency_key=k,
            data={"cliente_id": f"C{i}", "name": "Ana Souza", "plan": "basic"},
        )
    if kind == 2:
        return new_envelope(
            type="agenda.updated",
            source="crm",
            priority=priority,
            idempotency_key=k,
            data={"agenda_id": f"A{i}", "cliente_id": "C1", "status": "ok"},
        )
    if kind == 3:
        return new_envelope(
            type="cuidador.updated",
            source="cuidadores",
            priority=priority,
            idempotency_key=k,
            data={"cuidador_id": f"K{i}", "status": "ativo"},
        )
    return new_envelope(
        type="servico.completed",
        source="operacao",
        priority=priority,
        idempotency_key=k,
        data={"servico_id": f"S{i}", "cliente_id": "C1", "completed_at": "2026-01-01T10:00:00Z"},
    )


def hub(base: Topology, bootstrap: str) -> Topology:
    topology = base.with_namespace(f"bench{uuid.uuid4().hex[:8]}")
    result = apply_topics(topology, "local", bootstrap)
    assert not result.problems, result.problems
    return topology


def fill(bootstrap: str, topology: Topology, n: int, priority: int) -> None:
    producer = Producer(producer_config(bootstrap, client_id="bench-fill", linger_ms=20))
    topic = topology.priority_topic(priority)
    for i in range(n):
        e = mix(i, priority)
        producer.produce(topic, key=e.kafka_key(), value=e.to_json(), headers=e.kafka_headers())
        if i % 10_000 == 0:
            producer.poll(0)
    assert producer.flush(120) == 0


# ---- (a) faust worker ------------------------------------------------------------------------------
class FaustWorker:
    def __init__(
        self,
        bootstrap: str,
        topology: Topology,
        port: int,
        data_dir: str,
        *,
        cwd: Path | str = ROOT,
        python: str = sys.executable,
        **env: str,
    ):
        """`cwd`: the checkout whose `processors` runs, `python` the interpreter that runs it
        (bench/processors_ab.py: another worktree, another virtualenv)."""
        environ = {
            **os.environ,
            "CARINHO_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "CARINHO_TOPIC_NAMESPACE": topology.namespace.rstrip("."),
            "CARINHO_WEB_PORT": str(port),
            "CARINHO_DATA_DIR": data_dir,
            "CARINHO_SYNC_ENABLED": "false",
            "CARINHO_REPORT_ENABLED": "false",
            "CARINHO_LOG_LEVEL": "WARNING",
            **env,
        }
        self.port = port
        # Warnings and errors only (CARINHO_LOG_LEVEL above): e.g. the offset guard's hole reports.
        self.log = ROOT / ".run" / f"bench-processors-worker-{port}.log"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [python, "-m", "processors"], env=environ, cwd=cwd, stdout=log, stderr=subprocess.STDOUT
            )
        self.ps = psutil.Process(self.proc.pid)
        self.peak_rss = 0

    def routed(self) -> int:
        # /health carries the routed count; rendering the whole /metrics registry 4x a second cost
        # the worker ~3.5 % of its CPU (py-spy), a measurement cost the in-process baselines do not pay.
        if self.proc.poll() is not None:
            raise RuntimeError(f"the faust worker exited ({self.proc.returncode}): see {self.log}")
        try:
            total = int(httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=2).json()["routed"])
        except (httpx.HTTPError, ValueError, KeyError):
            return -1
        self.peak_rss = max(self.peak_rss, self.ps.memory_info().rss)
        return total

    def mean_seconds(self, histogram: str, priority: int) -> float | None:
        """Mean of one of the worker's own latency histograms (carinho_processor_<histogram>_seconds)
        for a priority level, from /metrics: where a record's time went inside the worker."""
        url, name, level = (
            f"http://127.0.0.1:{self.port}/metrics",
            f"carinho_processor_{histogram}_seconds",
            str(priority),
        )
        try:
            total = metric_sum(url, f"{name}_sum", priority=level)
            count = metric_sum(url, f"{name}_count", priority=level)
        except httpx.HTTPError:
            return None
        return total / count if total is not None and count else None

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        # Keep the log only when it says something (the worker logs warnings and errors only, as JSON
        # lines): each round has its own port, and .run/ collected hundreds of near-empty files.
        if self.proc.returncode in (0, -15) and b'"level":' not in self.log.read_bytes():
            self.log.unlink(missing_ok=True)


def run_faust(
    bootstrap: str,
    topology: Topology,
    n: int,
    port: int,
    data_dir: str,
    cwd: Path = ROOT,
    env: dict[str, str] | None = None,
    python: str = sys.executable,
) -> dict[str, float]:
    """`env`: worker settings on top of the benchmark's, `python`: the worker's interpreter
    (bench/processors_ab.py's variants)."""
    settings = {"CARINHO_TRAIL_INDEX_ENABLED": "false", **(env or {})}
    worker = FaustWorker(bootstrap, topology, port, data_dir, cwd=cwd, python=python, **settings)
    try:
        first_at: float | None = None
        first_count = 0
        first_cpu = 0.0
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            count = worker.routed()
            now = time.monotonic()
            if count > 0 and first_at is None:
                first_at, first_count, first_cpu = now, count, cpu_seconds(worker.ps)
                main_thread = MainThreadTime(worker.ps.pid)
            if count >= n:
                assert first_at is not None
                cpu = cpu_seconds(worker.ps) - first_cpu
                return {
                    "events_per_s": (count - first_count) / max(now - first_at, 1e-6),
                    "cpu_us_per_event": cpu / max(count - first_count, 1) * 1e6,
                    "peak_rss_mb": worker.peak_rss / 1e6,
                    **main_thread.shares(),
                }
            time.sleep(METRICS_POLL)
        raise TimeoutError("faust worker did not finish")
    finally:
        worker.stop()


# ---- (b) confluent loop ----------------------------------------------------------------------------
def run_confluent(bootstrap: str, topology: Topology, n: int) -> dict[str, float]:
    router = Router(topology)
    build = OutputBuilder(topology, "bench")
    consumer = Consumer(
        consumer_config(
            bootstrap,
            group_id=topology.consumer_group("bench-confluent"),
            client_id="bench-confluent",
            **{"enable.auto.offset.store": True},
        )
    )
    producer = Producer(producer_config(bootstrap, client_id="bench-confluent", linger_ms=2))
    consumer.subscribe(topology.event_topics)
    seen: dict[str, dict[str, Any]] = {}
    changelog = topology.namespace + "bench-dedupe-changelog"
    admin = AdminClient(admin_config(bootstrap))
    for future in admin.create_topics([NewTopic(changelog, 6, 1, config={"cleanup.policy": "compact"})]).values():
        try:
            future.result(30)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:  # the warm-up's steps share one namespace
                raise
    done = 0
    started: float | None = None
    started_cpu = 0.0
    me = psutil.Process()
    last_commit = time.monotonic()
    while done < n:
        batch = consumer.consume(500, 1.0)
        if started is None and batch:
            started, started_cpu = time.monotonic(), cpu_seconds(me)
            main_thread = MainThreadTime(os.getpid())
        now = datetime.now(UTC)
        for msg in batch:
            if msg.error():
                if msg.error().code() != KafkaError._PARTITION_EOF:
                    raise RuntimeError(msg.error().str())
                continue
            done += 1
            try:
                envelope = parse_record(msg.value(), topology, msg.headers())
            except InvalidRecord:
                continue
            key = dedupe.dedupe_key(envelope.source, envelope.idempotency_key)
            ref = dedupe.RecordRef(msg.topic(), msg.partition(), msg.offset())
            verdict = dedupe.judge(seen.get(key), ref, time.time(), DEDUPE_WINDOW)
            fingerprint = dedupe.fingerprint(envelope.type, envelope.data)
            if verdict is dedupe.Verdict.DUPLICATE:
                continue
            outcome = router.route(envelope, now)
            for topic, k, value, headers, partition in build.routed(
                envelope, outcome, level=INPUT_LEVEL, redelivery=verdict is dedupe.Verdict.REDELIVERY
            ):
                producer.produce(topic, value, k, headers=headers, partition=-1 if partition is None else partition)
            seen[key] = dedupe.entry(ref, time.time(), str(envelope.event_id), fingerprint)
            producer.produce(changelog, orjson.dumps(seen[key]), orjson.dumps(key), partition=msg.partition())
            producer.poll(0)
        if time.monotonic() - last_commit > 1.0:
            producer.flush(30)  # outputs durable before the offsets move (at least once)
            try:
                consumer.commit(asynchronous=False)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError._NO_OFFSET:  # nothing new since the last commit
                    raise
            last_commit = time.monotonic()
    producer.flush(30)
    elapsed = time.monotonic() - (started or time.monotonic())
    cpu = cpu_seconds(me) - started_cpu
    shares = main_thread.shares()
    consumer.close()
    return {"events_per_s": n / max(elapsed, 1e-6), "cpu_us_per_event": cpu / n * 1e6, **shares}


# ---- (c) quixstreams -------------------------------------------------------------------------------
def run_quix_retrying(
    bootstrap: str, topology: Topology, n: int, state_dir: str, attempts: int = 3
) -> dict[str, float]:
    """quixstreams creates its changelog topic and reads it back at once; on a fresh broker the
    metadata sometimes lags (TopicNotFoundError). Start it again; nothing was consumed yet."""
    from quixstreams.models.topics.exceptions import TopicNotFoundError

    for attempt in range(attempts):
        try:
            return run_quix(bootstrap, topology, n, f"{state_dir}-{attempt}")
        except TopicNotFoundError as exc:
            print(f"quix: {exc}; starting again", file=sys.stderr)
            time.sleep(2)
    raise RuntimeError(f"quixstreams could not start in {attempts} attempts")


def run_quix(bootstrap: str, topology: Topology, n: int, state_dir: str) -> dict[str, float]:
    from quixstreams import Application, State, message_context

    router = Router(topology)
    app = Application(
        broker_address=bootstrap,
        consumer_group=topology.consumer_group("bench-quix"),
        auto_offset_reset="earliest",
        state_dir=state_dir,
        commit_interval=1.0,
        loglevel="WARNING",
    )
    out = app.get_producer()
    build = OutputBuilder(topology, "bench")
    me = psutil.Process()
    progress: dict[str, Any] = {"done": 0, "started": None, "finished": None, "cpu": 0.0}

    def handle(value: bytes, key: Any, timestamp: int, headers: Any, state: State[Any, Any]) -> None:
        if progress["started"] is None:
            progress["started"], progress["cpu"] = time.monotonic(), cpu_seconds(me)
            progress["main_thread"] = MainThreadTime(os.getpid())
        progress["done"] += 1
        try:
            envelope = parse_record(value, topology, headers)
        except InvalidRecord:
            return
        dkey = dedupe.dedupe_key(envelope.source, envelope.idempotency_key)
        ctx = message_context()
        ref = dedupe.RecordRef(ctx.topic, ctx.partition, ctx.offset)
        verdict = dedupe.judge(state.get(dkey), ref, time.time(), DEDUPE_WINDOW)
        fingerprint = dedupe.fingerprint(envelope.type, envelope.data)
        if verdict is not dedupe.Verdict.DUPLICATE:
            outcome = router.route(envelope, datetime.now(UTC))
            for topic, k, data, hdrs, partition in build.routed(
                envelope, outcome, level=INPUT_LEVEL, redelivery=verdict is dedupe.Verdict.REDELIVERY
            ):
                out.produce(topic, key=k, value=data, headers=hdrs, partition=partition)
            state.set(dkey, dedupe.entry(ref, time.time(), str(envelope.event_id), fingerprint))
        if progress["done"] >= n and progress["finished"] is None:
            progress["finished"] = time.monotonic()
            progress["cpu"] = cpu_seconds(me) - progress["cpu"]
            progress["shares"] = progress["main_thread"].shares()
            app.stop()

    topic = app.topic(topology.priority_topic(INPUT_LEVEL), value_deserializer="bytes", key_deserializer="bytes")
    app.dataframe(topic).update(handle, stateful=True, metadata=True)
    app.run()
    out.flush()
    return {
        "events_per_s": n / max(progress["finished"] - progress["started"], 1e-6),
        "cpu_us_per_event": progress["cpu"] / n * 1e6,
        **progress["shares"],
    }


# ---- p1 latency under a p5 backlog -------------------------------------------------------------------
def p5_progress_by_partition(bootstrap: str, topology: Topology, window_s: float = 10.0) -> list[int]:
    """p5 records routed per source partition in the first `window_s` seconds of routing, from the
    dedupe changelog (one entry per routed record: source topic, partition and routing time). A
    backlog served one partition after the other shows up as one non-zero count."""
    p5 = topology.priority_topic(5)
    changelog = read_topic(bootstrap, f"{topology.router_group}-dedupe-changelog", timeout=60)
    entries = [orjson.loads(record.value or b"null") for record in changelog]
    routed = sorted((e["at"], e["partition"]) for e in entries if isinstance(e, dict) and e.get("topic") == p5)
    counts = [0] * next(p.partitions for p in topology.priorities if p.level == 5)
    for at, partition in routed:
        if at - routed[0][0] <= window_s:
            counts[partition] += 1
    return counts


def run_latency(
    bootstrap: str, topology: Topology, backlog: int, probes: int, port: int, data_dir: str
) -> dict[str, float]:
    fill(bootstrap, topology, backlog, 5)
    worker = FaustWorker(bootstrap, topology, port, data_dir)
    try:
        deadline = time.monotonic() + 300
        while worker.routed() < 2000 and time.monotonic() < deadline:
            time.sleep(0.2)
        producer = Producer(producer_config(bootstrap, client_id="bench-p1", linger_ms=0))
        sent: dict[str, float] = {}
        for i in range(probes):
            e = new_envelope(
                type="cliente.created",
                source="crm",
                priority=1,
                idempotency_key=f"p1-{uuid.uuid4().hex}",
                data={"cliente_id": f"P{i}", "name": "Ana"},
            )
            producer.produce(
                topology.priority_topic(1), key=e.kafka_key(), value=e.to_json(), headers=e.kafka_headers()
            )
            producer.flush(10)
            sent[str(e.event_id)] = time.time()
            time.sleep(0.05)
            worker.routed()
        routed_p5 = worker.routed()
        progress = p5_progress_by_partition(bootstrap, topology)
        consumer = Consumer(
            consumer_config(bootstrap, group_id=f"bench-read-{uuid.uuid4().hex[:6]}", client_id="bench-read")
        )
        consumer.subscribe([topology.delivery_topic("financeiro")])
        latencies: list[float] = []
        seen: set[str] = set()
        read_deadline = time.monotonic() + 120
        while len(seen) < probes and time.monotonic() < read_deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            record = orjson.loads(msg.value())
            if record["event_id"] in sent and record["event_id"] not in seen:
                seen.add(record["event_id"])
                routed_at = datetime.fromisoformat(record["created_at"]).timestamp()
                latencies.append((routed_at - sent[record["event_id"]]) * 1000)
        consumer.close()
        latencies.sort()
        # The worker's view: from the record's timestamp to the router taking it (dispatch) and to its
        # deliveries being built (routing); their difference is the routing itself.
        dispatch, routing = worker.mean_seconds("dispatch", 1), worker.mean_seconds("routing", 1)
        return {
            "p1_probes": probes,
            "p1_routed": len(latencies),
            "p1_p50_ms": statistics.median(latencies) if latencies else float("nan"),
            "p1_p99_ms": (
                latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else float("nan")
            ),
            "p1_dispatch_mean_ms": round(dispatch * 1000, 1) if dispatch is not None else float("nan"),
            "p1_routing_mean_ms": round(routing * 1000, 1) if routing is not None else float("nan"),
            "p5_backlog": backlog,
            "p5_routed_while_probing": routed_p5,
            "p5_partitions_served_first_10s": sum(1 for n in progress if n),
            "p5_least_served_partition_share_first_10s": round(min(progress) / max(1, sum(progress)), 3),
            "worker_peak_rss_mb": worker.peak_rss / 1e6,
        }
    finally:
        worker.stop()


def _digits(key: str) -> int:
    """Decimals a figure is reported with: shares and probe milliseconds need three."""
    return 3 if key.startswith(("main_thread", "probe", "steal")) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--bootstrap", default=None, help="an existing broker; default: start one (bench.common.bench_broker)"
    )
    # 60,000 events, 3 rounds (make bench): rounds of 20,000 last a few seconds each and varied by up
    # to 1.5x (docs/benchmarks.md, twelfth session).
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--backlog", type=int, default=100_000)
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--port", type=int, default=16090)
    parser.add_argument("--only", choices=["faust", "confluent", "quix", "latency"], action="append")
    args = parser.parse_args(argv)
    if args.bootstrap:
        return measure(args)
    with bench_broker() as bootstrap:
        args.bootstrap = bootstrap
        return measure(args)


def measure(args: argparse.Namespace) -> int:
    base = load_topology(ROOT / "topics.yaml")
    only = set(args.only or ["faust", "confluent", "quix", "latency"])
    results: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-processors-") as tmp, SpeedProbe() as probe:
        runners: dict[str, Callable[[Topology], dict[str, float]]] = {
            "confluent": lambda t: run_confluent(args.bootstrap, t, args.events),
            "quix": lambda t: run_quix_retrying(args.bootstrap, t, args.events, f"{tmp}/quix-{t.namespace}"),
            "faust": lambda t: run_faust(args.bootstrap, t, args.events, args.port, f"{tmp}/faust"),
        }
        if only & set(runners):
            # Not measured: the broker's JIT compiles this load's paths first (bench/broker_warmup.py),
            # else the first round's contender pays for it. One namespace for every step: a new set of
            # topics per step kept the JIT compiling the topic creation (22-26 steps; sixteenth session).
            warm = hub(base, args.bootstrap)

            def warm_step() -> None:
                fill(args.bootstrap, warm, WARM_UP_EVENTS, INPUT_LEVEL)
                run_confluent(args.bootstrap, warm, WARM_UP_EVENTS)  # its group goes on from its last commit

            try:
                warm_until_settled(args.bootstrap, warm_step)
            finally:
                drop_hub(warm.namespace, args.bootstrap)
        for _ in range(args.repeat):
            for name, runner in runners.items():
                if name in only:
                    topology = hub(base, args.bootstrap)
                    fill(args.bootstrap, topology, args.events, INPUT_LEVEL)
                    started = time.monotonic()
                    try:
                        result = runner(topology)
                    finally:
                        drop_hub(topology.namespace, args.bootstrap)
                    # The machine's speed during the round (bench/machine_speed.py): compare rounds by it.
                    result.update(probe.figures(started))
                    results.setdefault(name, []).append(result)
                    print(f"{name}: {results[name][-1]}", file=sys.stderr)
        if "latency" in only:
            topology = hub(base, args.bootstrap)
            try:
                results["latency"] = [
                    run_latency(
                        args.bootstrap, topology, args.backlog, args.probes, args.port + 1, f"{tmp}/faust-latency"
                    )
                ]
            finally:
                drop_hub(topology.namespace, args.bootstrap)
    summary: dict[str, Any] = {
        "events": args.events,
        "repeat": args.repeat,
        "cpu_count": os.cpu_count(),
        "load_avg_1m": os.getloadavg()[0],
        "bootstrap": args.bootstrap,
    }
    for name, runs in results.items():
        summary[name] = {key: round(statistics.median(r[key] for r in runs), _digits(key)) for key in runs[0]}
        if name != "latency":
            summary[name]["rounds"] = [{key: round(r[key], _digits(key)) for key in r} for r in runs]
    if "faust" in summary and "quix" in summary:
        summary["faust_vs_quix"] = round(summary["faust"]["events_per_s"] / summary["quix"]["events_per_s"], 2)
        # Round by round (quix then faust ran back to back): the machine's load moves both.
        pairs = zip(results["faust"], results["quix"], strict=False)
        summary["faust_vs_quix_rounds"] = [round(f["events_per_s"] / q["events_per_s"], 2) for f, q in pairs]
    if "faust" in summary and "confluent" in summary:
        summary["faust_vs_confluent"] = round(
            summary["faust"]["events_per_s"] / summary["confluent"]["events_per_s"], 2
        )
    summary["targets"] = {"events_per_s": 10_000, "faust_vs_quix": 1.0, "p1_p99_ms": 200, "worker_rss_mb": 200}
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
