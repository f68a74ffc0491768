"""Restarts, scale-out, priorities and syncs: each test runs its own workers (real broker)."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Producer

from hub.kafka_config import producer_config
from operators.scheduled import read_scheduled
from processors.syncs.runner import SyncRunner
from processors.syncs.watermarks import SyncStateStore
from tests.integration.processors.conftest import FakeSources, WorkerFactory, make_hub
from tests.integration.processors.helpers import by_event, deliveries, duplicates_dropped, event, lead, send
from tests.kafka_support import read_topic, topic_size, unique, wait_until

pytestmark = pytest.mark.integration


def test_dedupe_and_delayed_feedback_survive_a_restart(
    kafka_bootstrap: str, workers: WorkerFactory, short_topology_file: Path
) -> None:
    topology = make_hub(short_topology_file, kafka_bootstrap)
    first = workers.start(topology, CARINHO_SYNC_ENABLED="false")
    e = lead("site")
    servico = event(
        "servico.completed",
        "operacao",
        3,
        {
            "servico_id": unique("S"),
            "cliente_id": "C1",
            "phone": "+5511977776666",
            "completed_at": datetime.now(UTC).isoformat(),
        },
    )
    send(kafka_bootstrap, topology, e, servico)
    wait_until(
        lambda: "scheduled" in [h["hop"] for h in first.trail(str(servico.event_id))],
        timeout=60,
        message="feedback scheduled",
    )
    wait_until(
        lambda: len(by_event(deliveries(kafka_bootstrap, topology, "crm", timeout=3), e.event_id)) == 1,
        timeout=20,
        message="lead routed",
    )
    first.stop()  # the delayed message is waiting only in Kafka now
    assert not by_event(deliveries(kafka_bootstrap, topology, "whatsapp", timeout=2), servico.event_id)
    # What `carinho scheduled` shows operators: the waiting message, from the table's changelog.
    [waiting] = [m for m in read_scheduled(topology, kafka_bootstrap) if m.event_id == str(servico.event_id)]
    assert (waiting.state, waiting.message_type, waiting.destination) == ("pending", "feedback_request", "whatsapp")
    assert waiting.due_at is not None and waiting.fired_at is None

    second = workers.start(topology, CARINHO_SYNC_ENABLED="false")
    send(kafka_bootstrap, topology, e)  # duplicate after the restart: dedupe state came back from the changelog
    wait_until(
        lambda: "duplicate_dropped" in [h["hop"] for h in second.trail(str(e.event_id))],
        timeout=30,
        message="duplicate dropped after restart",
    )
    wait_until(
        lambda: len(by_event(deliveries(kafka_bootstrap, topology, "whatsapp", timeout=3), servico.event_id)) == 1,
        timeout=30,
        message="feedback after restart",
    )
    time.sleep(2)  # nothing fires twice
    assert len(by_event(deliveries(kafka_bootstrap, topology, "whatsapp", timeout=3), servico.event_id)) == 1
    assert len(by_event(deliveries(kafka_bootstrap, topology, "crm", timeout=3), e.event_id)) == 1
    second.stop()
    [released] = [m for m in read_scheduled(topology, kafka_bootstrap) if m.event_id == str(servico.event_id)]
    assert released.state == "fired" and released.fired_at is not None
    assert released.delivery_id == waiting.delivery_id


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["stopped", "killed"])
def test_a_restart_on_its_data_directory_reads_only_the_changelog_written_since(
    kafka_bootstrap: str, workers: WorkerFactory, short_topology_file: Path, stop: signal.Signals
) -> None:
    """The tables on disk keep the changelog offsets they hold: a worker restarted on the same data
    directory reads only what was written after them, while a new machine (another directory) reads
    everything. Either way every event is routed once, and its duplicates are dropped."""
    topology = make_hub(short_topology_file, kafka_bootstrap)
    first = workers.start(topology, CARINHO_SYNC_ENABLED="false")
    events = [lead("site") for _ in range(300)]
    send(kafka_bootstrap, topology, *events)
    read_topic(kafka_bootstrap, topology.delivery_topic("crm"), expect=len(events), timeout=60)
    wait_until(
        lambda: (first.health() or {}).get("trail_indexed", 0) >= len(events), timeout=30, message="trail indexed"
    )
    time.sleep(2.5)  # a commit (every 0.5 s in the tests) and a write of the held table writes (1 s)
    first.stop(stop)

    again = workers.start(topology, port=first.port, CARINHO_SYNC_ENABLED="false")
    recovered = (again.health() or {})["recovered"]
    # A full read is at least one changelog record per event for each of these two tables; after a
    # stop or a kill (the write-ahead log keeps what was written) nothing is left to read.
    assert recovered == {"dedupe": 0, "scheduled": 0, "trail-index": 0}, recovered
    wait_until(  # the trail of an event routed before the restart, from the local table
        lambda: [h["hop"] for h in again.trail(str(events[0].event_id))] == ["routed"],
        timeout=15,
        message="trail kept",
    )
    send(kafka_bootstrap, topology, *events)  # every one a duplicate now
    ids = {str(e.event_id) for e in events}
    wait_until(
        lambda: duplicates_dropped(kafka_bootstrap, topology, ids) >= len(events),
        timeout=60,
        message="duplicates dropped after the restart",
    )
    again.stop()

    # A new data directory, its tables read by Faust's recovery alone (the bulk catch-up off): the
    # other new-directory starts in these tests take the default path (processors/changelog_catch_up.py).
    elsewhere = workers.start(topology, CARINHO_SYNC_ENABLED="false", CARINHO_CHANGELOG_CATCH_UP="false")
    assert (elsewhere.health() or {})["recovered"]["dedupe"] >= len(events)  # the whole changelog
    wait_until(  # the trail, read from the changelog into an empty table
        lambda: [h["hop"] for h in elsewhere.trail(str(events[-1].event_id))] == ["routed", "duplicate_dropped"],
        timeout=15,
        message="trail recovered",
    )
    send(kafka_bootstrap, topology, *events)  # duplicates again, judged by the recovered dedupe table
    wait_until(
        lambda: duplicates_dropped(kafka_bootstrap, topology, ids) >= 2 * len(events),
        timeout=60,
        message="duplicates dropped on a new machine",
    )
    elsewhere.stop()
    records = read_topic(kafka_bootstrap, topology.delivery_topic("crm"), timeout=10)
    counts = Counter(orjson.loads(r.value)["event_id"] for r in records if r.value)
    assert set(counts) == ids and set(counts.values()) == {1}  # routed once, duplicates never
    assert duplicates_dropped(kafka_bootstrap, topology, ids) == 2 * len(events)


def test_two_workers_route_every_event_once(
    kafka_bootstrap: str, workers: WorkerFactory, short_topology_file: Path
) -> None:
    topology = make_hub(short_topology_file, kafka_bootstrap)
    a = workers.start(topology, CARINHO_SYNC_ENABLED="false", CARINHO_STANDBY_REPLICAS="0")
    b = workers.start(topology, CARINHO_SYNC_ENABLED="false", CARINHO_STANDBY_REPLICAS="0")
    wait_until(
        lambda: (
            all((w.health() or {}).get("status") == "ok" for w in (a, b))
            and sum((w.health() or {}).get("assigned_partitions", 0) for w in (a, b)) > 0
        ),
        timeout=60,
        message="both workers balanced",
    )
    time.sleep(3)
    events = [lead("site") for _ in range(300)]
    send(kafka_bootstrap, topology, *events)
    records = read_topic(kafka_bootstrap, topology.delivery_topic("crm"), expect=300, timeout=60)
    time.sleep(1)
    records = read_topic(kafka_bootstrap, topology.delivery_topic("crm"), timeout=10)
    counts = Counter(orjson.loads(r.value)["event_id"] for r in records if r.value)
    assert set(counts) == {str(e.event_id) for e in events}
    assert set(counts.values()) == {1}, [k for k, v in counts.items() if v > 1][:5]
    shares = [(w.health() or {}).get("assigned_partitions", 0) for w in (a, b)]
    assert all(s > 0 for s in shares), shares  # both took partitions
    # the trail of an event is served by either worker (proxied to the owner when not local)
    for w in (a, b):
        wait_until(
            lambda w=w: [h["hop"] for h in w.trail(str(events[0].event_id))] == ["routed"],
            timeout=15,
            message=f"trail served by {w.url}",
        )
    a.stop()
    b.stop()


def test_p1_goes_first_under_a_p5_backlog(
    kafka_bootstrap: str, workers: WorkerFactory, short_topology_file: Path
) -> None:
    topology = make_hub(short_topology_file, kafka_bootstrap)
    producer = Producer(producer_config(kafka_bootstrap, client_id="tests", linger_ms=20))
    backlog = [
        event("cuidador.updated", "cuidadores", 5, {"cuidador_id": f"K{i}", "status": "ativo"}) for i in range(16_000)
    ]
    # A small lane: the p5 lane fills on every poll, so its partitions pause and resume all along.
    worker = workers.start(topology, CARINHO_SYNC_ENABLED="false", CARINHO_STREAM_BUFFER="16", wait=False)
    workers.wait_ready(worker)
    # The worker is stopped (SIGSTOP) while the backlog is written, then run in 20 ms slices until it
    # has routed some of it, and p1 is sent while it is stopped again: the backlog is still there when
    # p1 arrives however fast the worker or slow the machine (watching a running worker let it drain
    # the whole backlog between two looks when the machine was busy).
    pid = worker.proc.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        send(kafka_bootstrap, topology, *backlog, producer=producer)
        deadline = time.monotonic() + 90
        while topic_size(kafka_bootstrap, topology.delivery_topic("crm")) < 300:
            assert time.monotonic() < deadline, "the worker routed fewer than 300 of the backlog in 90 s"
            os.kill(pid, signal.SIGCONT)
            time.sleep(0.02)
            os.kill(pid, signal.SIGSTOP)
        urgent = [event("cliente.created", "crm", 1, {"cliente_id": f"U{i}", "name": "Ana"}) for i in range(20)]
        sent_at = time.time()
        # The backlog's producer, already connected: a new one spends a few hundred ms connecting and
        # getting its idempotent producer id, counted here as p1 latency while the backlog drains.
        send(kafka_bootstrap, topology, *urgent, producer=producer)
    finally:
        os.kill(pid, signal.SIGCONT)
    fin = read_topic(kafka_bootstrap, topology.delivery_topic("financeiro"), expect=20, timeout=30)
    assert len(fin) == 20
    routed_at = max(datetime.fromisoformat(orjson.loads(r.value)["created_at"]).timestamp() for r in fin)
    latency = routed_at - sent_at
    crm = read_topic(kafka_bootstrap, topology.delivery_topic("crm"), expect=len(backlog), timeout=120)
    counts = Counter(orjson.loads(r.value)["event_id"] for r in crm if r.value)
    assert set(counts) == {str(e.event_id) for e in backlog}, f"{len(set(counts))} of {len(backlog)} routed"
    assert set(counts.values()) == {1}
    assert (worker.health() or {}).get("status") == "ok"  # paused and resumed, never crashed
    backlog_routed = [datetime.fromisoformat(orjson.loads(r.value)["created_at"]).timestamp() for r in crm]
    # What p1 could have waited for: the backlog still unrouted when p1 was sent (the worker stamps
    # created_at on this machine's clock). Too little left means the test measured nothing.
    waiting_at_send = sum(1 for at in backlog_routed if at > sent_at)
    assert waiting_at_send >= len(backlog) // 4, f"only {waiting_at_send} backlog events left when p1 was sent"
    # p1 was routed while most of that backlog was still waiting — counted in events, not seconds, so
    # a faster or slower worker does not change the verdict — and quickly.
    after_p1 = sum(1 for at in backlog_routed if at > routed_at)
    assert after_p1 >= waiting_at_send // 2, (
        f"{after_p1} of the {waiting_at_send} backlog events waiting at send routed after p1: p1 waited for them"
    )
    assert latency < 2.0, f"p1 waited {latency:.2f}s behind the p5 backlog"
    print(
        f"p1 latency under backlog: {latency * 1000:.0f} ms; backlog finished {max(backlog_routed) - sent_at:.1f} s "
        f"after the p1 events were sent; {after_p1} of the {waiting_at_send} events waiting at send routed after p1"
    )
    worker.stop()


def test_sync_resumes_from_its_watermark_after_a_failure_and_runs_on_the_worker(
    kafka_bootstrap: str, workers: WorkerFactory, short_topology_file: Path, fake_sources: FakeSources
) -> None:
    topology = make_hub(short_topology_file, kafka_bootstrap)
    path = topology.syncs["agenda-operacao"].path
    base = datetime(2026, 1, 1, tzinfo=UTC)
    fake_sources.items[path] = [
        {
            "id": f"A{i}",
            "updated_at": (base + timedelta(minutes=i)).isoformat(),
            "agenda_id": f"A{i}",
            "cliente_id": "C1",
            "status": "confirmada",
        }
        for i in range(450)
    ]  # 3 pages of 200
    source = topology.syncs["agenda-operacao"].source
    runner = SyncRunner(
        topology, kafka_bootstrap, lambda source: f"{fake_sources.url}/sources/{source}", tokens={source: "s3cret"}
    )
    fake_sources.fail_pages = {2}
    failed = runner.run("agenda-operacao")  # crashes on page 2: page 1 already emitted, watermark not moved
    assert not failed.ok and failed.items == 200
    state = SyncStateStore(topology, kafka_bootstrap).load("agenda-operacao")
    assert state.watermark is None and state.consecutive_failures == 1 and "500" in (state.last_error or "")
    fake_sources.fail_pages = set()
    fake_sources.requests.clear()
    ok = runner.run("agenda-operacao")
    assert ok.ok and ok.items == 450 and ok.watermark == fake_sources.items[path][-1]["updated_at"]
    # the runner's one HTTP client, reused across runs, sent the source's token on every page
    assert [r["authorization"] for r in fake_sources.requests] == ["Bearer s3cret"] * 3
    runner.close()
    health = read_topic(kafka_bootstrap, topology.system_topic("health"), timeout=5)
    last = orjson.loads([r for r in health if r.key == b"sync:agenda-operacao"][-1].value)
    assert last["consecutive_failures"] == 0 and last["watermark"] == ok.watermark

    # new changes; the worker's leader timer runs the sync and asks only for changes since the watermark
    fake_sources.items[path].append(
        {
            "id": "A999",
            "updated_at": (base + timedelta(days=1)).isoformat(),
            "agenda_id": "A999",
            "cliente_id": "C1",
            "status": "nova",
        }
    )
    fake_sources.requests.clear()
    worker = workers.start(topology, CARINHO_SYNC_RETRY_AFTER="1s")
    # re-emitted page 1 items were deduplicated: every agenda routed exactly once
    wait_until(
        lambda: len(deliveries(kafka_bootstrap, topology, "operacao", timeout=3)) >= 451,
        timeout=60,
        message="agenda items routed",
    )
    time.sleep(2)
    ops = deliveries(kafka_bootstrap, topology, "operacao", timeout=3)
    counts = Counter(d.payload["agenda_id"] for d in ops)
    assert len(counts) == 451 and set(counts.values()) == {1}
    agenda_requests = [r for r in fake_sources.requests if r["path"] == path]
    assert agenda_requests and agenda_requests[0]["since"] == ok.watermark
    worker.stop()


def test_daily_report_runs_once_per_day_on_the_leader(
    kafka_bootstrap: str, workers: WorkerFactory, short_topology_file: Path, tmp_path: Path
) -> None:
    topology = make_hub(short_topology_file, kafka_bootstrap)
    send(kafka_bootstrap, topology, lead("site"))
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date()
    env = {
        "CARINHO_SYNC_ENABLED": "false",
        "CARINHO_REPORT_ENABLED": "true",
        "CARINHO_REPORT_DAILY_AT": "00:00",
        "CARINHO_REPORT_TIMEZONE": "UTC",
        "CARINHO_REPORT_CHECK_INTERVAL": "1",
        "CARINHO_REPORT_DIR": str(tmp_path / "reports"),
    }
    report = tmp_path / "reports" / f"daily-{yesterday.isoformat()}.md"
    first = workers.start(topology, **env)
    states = SyncStateStore(topology, kafka_bootstrap)
    wait_until(
        lambda: states.load("report.daily").watermark == yesterday.isoformat(),
        timeout=60,
        message="yesterday's report done by the leader and recorded on sync.state",
    )
    assert report.exists() and report.with_suffix(".html").exists() and "| Lead -> CRM |" in report.read_text()
    assert states.load("report.daily").consecutive_failures == 0
    first.stop()

    written = report.stat().st_mtime_ns
    second = workers.start(topology, **env)  # a new leader: the day is on sync.state, not repeated
    time.sleep(4)
    second.stop()
    assert report.stat().st_mtime_ns == written
    audit = [
        orjson.loads(r.value) for r in read_topic(kafka_bootstrap, topology.system_topic("audit"), timeout=5) if r.value
    ]
    assert [a["filters"]["date"] for a in audit if a.get("action") == "report.daily"] == [yesterday.isoformat()]
