"""Pure routing rules: maps, hooks, templates, entity keys, validation, dedupe verdicts, schedules."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

import orjson
import pytest
from aiokafka.structs import TopicPartition

from hub.delivery import DeliveryRecord
from hub.envelope import EventEnvelope, Metadata, Utm, new_envelope
from hub.topology import QuietHours, Topology, load_topology
from processors import dedupe, state_store
from processors.app import crc32_partitioner
from processors.automations.feedback import feedback_request, outside_quiet_hours, quiet_until
from processors.automations.lead_auto_reply import first_name, render, template_key
from processors.priority import PriorityLanes, order_for_drain, topic_rank
from processors.routing import InvalidRecord, Router, TransformFailed, check_data, entity_field, parse_record
from processors.syncs.runner import item_envelope, next_due
from processors.syncs.watermarks import SyncState
from processors.transforms.hooks import TransformError, cliente_to_financeiro
from processors.transforms.mapping import MappingError, apply_map, check_map, compile_map, resolve_path
from tests.kafka_support import ROOT

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def topology() -> Topology:
    return load_topology(ROOT / "topics.yaml")


def lead(source: str = "site", campaign: str | None = None, **data: object):  # type: ignore[no-untyped-def]
    return new_envelope(
        type="lead.created",
        source=source,
        priority=2,
        idempotency_key="form-1",
        data={"name": "ana maria", "phone": "+5511999990000", "origin": source, **data},
        metadata=Metadata(utm=Utm(campaign=campaign, source="ig") if campaign else None),
        received_at=NOW,
    )


def servico(key: str = "k", **data: object) -> EventEnvelope:
    """A servico.completed from Operação with this data."""
    return new_envelope(type="servico.completed", source="operacao", priority=3, idempotency_key=key, data=data)


def test_apply_map_paths_literals_and_missing() -> None:
    doc = {"data": {"name": "Ana", "nested": {"x": 1}, "none": None}, "event_id": "e1"}
    assert apply_map(
        {
            "n": "data.name",
            "x": "data.nested.x",
            "k": "=const",
            "id": "event_id",
            "gone": "data.missing",
            "null": "data.none",
        },
        doc,
    ) == {"n": "Ana", "x": 1, "k": "const", "id": "e1"}
    assert resolve_path(doc, "data.name.deeper") is not None  # missing sentinel, not an error
    with pytest.raises(MappingError):
        resolve_path(doc, "data..name")
    assert check_map({"a": "data..b", "b": "=ok"}) == ["a: invalid path 'data..b'"]


def test_compiled_map_walks_only_mappings_and_refuses_bad_paths_when_compiled() -> None:
    apply = compile_map({"x": "data.nested.x", "s": "data.name.deeper", "l": "data.items.0", "n": "data.n"})
    doc = {"data": {"nested": MappingProxyType({"x": 2}), "name": "Ana", "items": [5], "n": 0}}
    assert apply(doc) == {"x": 2, "n": 0}  # a str or list is not walked; 0 is a value, not missing
    assert apply({}) == {}
    with pytest.raises(MappingError):
        compile_map({"a": "data.b."})


def test_cliente_hook_normalises_and_fails_on_bad_data() -> None:
    env = {
        "event_id": "e1",
        "data": {
            "cliente_id": "C1",
            "name": "Ana  Maria Souza",
            "cpf": "123.456.789-09",
            "email": "ANA@X.COM",
            "phone": "11 98888-7777",
            "plan": "basic",
        },
    }
    assert cliente_to_financeiro(env) == {
        "cliente_id": "C1",
        "nome": "Ana",
        "sobrenome": "Maria Souza",
        "origem_evento": "e1",
        "documento": {"tipo": "CPF", "numero": "12345678909"},
        "email": "ana@x.com",
        "telefone": "+5511988887777",
        "plano": "BASIC",
    }
    with pytest.raises(TransformError):
        cliente_to_financeiro({"event_id": "e", "data": {"cliente_id": "C", "name": "A", "cpf": "12"}})
    with pytest.raises(KeyError):
        cliente_to_financeiro({"event_id": "e", "data": {"name": "A"}})


def test_templates_by_origin_and_campaign(topology: Topology) -> None:
    config = topology.automations.lead_auto_reply
    templates, campaigns = config.templates, config.campaigns
    assert template_key(lead("site"), templates, campaigns) == "site"
    assert template_key(lead("whatsapp"), templates, campaigns) == "whatsapp"
    assert template_key(lead("site", origin="Site"), templates, campaigns) == "site"  # origins in any case
    assert template_key(lead("site", campaign="cuidado-idosos"), templates, campaigns) == "campaign"
    assert template_key(lead("site", campaign=" Cuidado-Idosos "), templates, campaigns) == "campaign"
    # A campaign topics.yaml does not list keeps the origin's template: its text is the visitor's.
    assert template_key(lead("site", campaign="verao"), templates, campaigns) == "site"
    assert template_key(lead("marketing"), templates, campaigns) == "default"
    assert first_name("  joão da silva ") == "João" and first_name(None) == ""
    assert render("Olá, {first_name}! {nope}", {"first_name": ""}) == "Olá! "


@pytest.mark.parametrize(
    ("name", "greeted"),
    [
        ("MARIA SOUZA", "Maria"),
        ("Sra. Ana Lima", "Ana"),
        ("Seu Zé", "Zé"),
        ("Dr. Paulo", "Paulo"),
        ("🌸", ""),
        ("McKenzie", "McKenzie"),
        ("dona", "Dona"),
    ],
)
def test_the_greeting_takes_the_first_name(name: str, greeted: str) -> None:
    assert first_name(name) == greeted


def test_an_unknown_campaign_never_reaches_the_message(topology: Topology) -> None:
    """UTM values come from the visitor's URL: with the site form's phone, they were a way to make the
    company's WhatsApp send any text to any number."""
    scam = "de boas-vindas. URGENTE: pague a taxa de R$ 49,90 via PIX para a chave golpe@exemplo.com"
    [*_, reply] = Router(topology).route(lead("site", campaign=scam), NOW).deliveries
    assert reply.message_type == "lead_auto_reply" and "PIX" not in reply.payload["message"]
    assert reply.payload["message"].startswith("Olá, Ana! Recebemos seu contato pelo nosso site.")


def test_router_fans_out_with_auto_reply_and_utm(topology: Topology) -> None:
    router = Router(topology)
    out = router.route(lead("site", campaign="cuidado-idosos"), NOW)
    assert out.destinations == ["crm", "marketing", "whatsapp"]
    crm, marketing, reply = out.deliveries
    assert crm.payload["utm"] == {"campaign": "cuidado-idosos", "source": "ig"} == marketing.payload["utm"]
    assert reply.payload["message"].startswith("Olá, Ana! Que bom ter você aqui pela campanha Cuidado de Idosos.")
    assert len({d.delivery_id for d in out.deliveries}) == 3
    assert {d.entity_key for d in out.deliveries[:2]} == {"site:form-1"}
    assert reply.entity_key == "phone:5511999990000"  # the auto-reply is keyed by the phone (once a day)


def test_one_auto_reply_per_phone_and_day(topology: Topology) -> None:
    """Five WhatsApp messages from one contact are five leads, greeted once a day: the replies share a
    delivery id (the connectors send one; the others are skipped as already delivered)."""
    router = Router(topology)

    def reply_to(key: str, phone: str, received_at: datetime) -> DeliveryRecord:
        envelope = new_envelope(
            type="lead.created",
            source="whatsapp",
            priority=2,
            idempotency_key=key,
            data={"phone": phone, "origin": "whatsapp"},
            received_at=received_at,
        )
        return router.route(envelope, NOW).deliveries[-1]

    morning = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # 09:00 in São Paulo
    first, second = reply_to("m1", "+55 11 99999-0000", morning), reply_to("m2", "11999990000", morning)
    assert first.message_type == second.message_type == "lead_auto_reply"
    assert first.delivery_id == second.delivery_id and first.entity_key == second.entity_key
    assert first.event_id != second.event_id
    # Another number, or the next day in São Paulo (02:59 UTC on the 3rd is still the 2nd there).
    assert reply_to("m3", "+55 21 99999-0000", morning).delivery_id != first.delivery_id
    assert reply_to("m4", "11999990000", datetime(2026, 3, 3, 2, 59, tzinfo=UTC)).delivery_id == first.delivery_id
    assert reply_to("m5", "11999990000", datetime(2026, 3, 3, 3, 0, tzinfo=UTC)).delivery_id != first.delivery_id


def test_entity_keys(topology: Topology) -> None:
    router = Router(topology)
    assert entity_field("cliente.created", topology.event_types["cliente.created"].data) == "cliente_id"
    assert entity_field("lead.created", topology.event_types["lead.created"].data) is None
    completed = servico(servico_id="S1", cliente_id="C1", completed_at="2026-01-01T00:00:00Z")
    assert router.entity_key(completed) == "servico:S1"
    assert router.entity_key(lead()) == "site:form-1"


def test_transform_failure_names_the_destination(topology: Topology) -> None:
    router = Router(topology)
    bad = new_envelope(
        type="cliente.created",
        source="crm",
        priority=2,
        idempotency_key="k",
        data={"cliente_id": "C1", "name": "Ana", "cpf": "1"},
    )
    with pytest.raises(TransformFailed) as info:
        router.route(bad, NOW)
    assert info.value.destination == "financeiro"
    with pytest.raises(ValueError, match="no hook named"):
        Router(topology, hooks={})


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "empty_record"),
        (b"\xff\x00garbage", "not_json"),
        (b'{"hello": 1}', "invalid_envelope"),
    ],
)
def test_parse_record_rejects(topology: Topology, raw: bytes | None, reason: str) -> None:
    with pytest.raises(InvalidRecord) as info:
        parse_record(raw, topology)
    assert info.value.reason == reason


def test_refused_record_is_filed_under_its_event_id_header(topology: Topology) -> None:
    """The header is read only for a refused record, in either shape the Kafka clients give."""
    eid = "6f1c2b7e-4a55-5b8e-9d8e-63617269686f"
    for headers in (
        [("source", b"site"), ("event_id", eid.encode())],  # aiokafka: (str, bytes) pairs
        [(b"event_id", eid.encode())],
        {"event_id": eid.encode()},
    ):
        with pytest.raises(InvalidRecord) as info:
            parse_record(b"\xff garbage", topology, headers)
        assert info.value.event_id == eid
    for headers in (None, [], [("source", b"site")], [("event_id", None)]):
        with pytest.raises(InvalidRecord) as info:
            parse_record(None, topology, headers)
        assert info.value.event_id is None
    with pytest.raises(InvalidRecord) as info:
        parse_record(b" " * (topology.defaults.max_event_bytes + 1), topology, [("event_id", b"x" * 100)])
    assert info.value.event_id == "x" * 64


def test_parse_record_checks_type_source_data_and_size(topology: Topology) -> None:
    ok = lead()
    assert parse_record(ok.to_json(), topology) == ok
    raw = orjson.loads(ok.to_json())
    for patch, reason in (
        ({"type": "x.y"}, "unknown_event_type"),
        ({"source": "crm"}, "source_not_allowed"),
        ({"data": {"name": "a"}}, "invalid_data"),
        ({"data": {"name": "a", "phone": 5}}, "invalid_data"),
    ):
        with pytest.raises(InvalidRecord) as info:
            parse_record(orjson.dumps({**raw, **patch}), topology)
        assert info.value.reason == reason and info.value.event_id == str(ok.event_id)
    with pytest.raises(InvalidRecord, match="max_event_bytes"):
        parse_record(b" " * (topology.defaults.max_event_bytes + 1), topology)
    assert (
        check_data({"hours": True}, topology.event_types["servico.completed"].data)[-1]
        == "field 'hours' must be number (a JSON number, as sent)"
    )


def test_dedupe_verdicts() -> None:
    ref = dedupe.RecordRef("events.p2", 3, 10)
    seen = dedupe.entry(ref, 1000.0, "e1", 7)
    assert dedupe.judge(None, ref, 1000.0, 60) is dedupe.Verdict.NEW
    assert dedupe.judge(seen, ref, 1001.0, 60) is dedupe.Verdict.REDELIVERY
    assert dedupe.judge(seen, dedupe.RecordRef("events.p2", 3, 11), 1001.0, 60) is dedupe.Verdict.DUPLICATE
    assert dedupe.judge(seen, dedupe.RecordRef("events.p2", 3, 11), 1060.0, 60) is dedupe.Verdict.NEW
    store = {"a": seen, "b": dedupe.entry(ref, 2000.0, "e2", 7)}
    removed = asyncio.run(state_store.sweep(store, lambda v: dedupe.expired(v, 1070.0, 60)))
    assert removed == 1 and list(store) == ["b"]


def test_a_reused_key_is_told_from_a_retry() -> None:
    """The fingerprint is the type and data (key order aside), not times or metadata a retry changes."""
    first = dedupe.fingerprint("lead.created", {"name": "Ana", "phone": "11987654321"})
    assert dedupe.fingerprint("lead.created", {"phone": "11987654321", "name": "Ana"}) == first
    assert dedupe.fingerprint("lead.created", {"name": "Bia", "phone": "11987654321"}) != first
    assert dedupe.fingerprint("cliente.created", {"name": "Ana", "phone": "11987654321"}) != first
    seen = dedupe.entry(dedupe.RecordRef("events.p2", 3, 10), 1000.0, "e1", first)
    assert not dedupe.conflicts(seen, first)
    assert dedupe.conflicts(seen, dedupe.fingerprint("lead.created", {"name": "Bia"}))
    legacy = {k: v for k, v in seen.items() if k != "fp"}  # an entry written before fingerprints
    assert not dedupe.conflicts(legacy, dedupe.fingerprint("lead.created", {"name": "Bia"}))


def test_feedback_due_after_the_delay(topology: Topology) -> None:
    config = topology.automations.feedback_request
    env = servico(
        servico_id="S1",
        cliente_id="C1",
        completed_at="2026-03-01T10:00:00Z",
        phone="+5511977776666",
        client_name="lurdes",
    )
    scheduled = feedback_request(env, config, entity_key="servico:S1", now=NOW)
    assert scheduled is not None and scheduled.due_at == datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert scheduled.delivery.not_before == scheduled.due_at
    assert scheduled.delivery.payload["message"].startswith("Olá, Lurdes! Como foi")
    no_phone = env.model_copy(update={"data": {**env.data, "phone": None}})
    assert feedback_request(no_phone, config, entity_key="x", now=NOW) is None


def test_feedback_due_in_quiet_hours_waits_for_the_morning(topology: Topology) -> None:
    config = topology.automations.feedback_request  # quiet 21:00-08:00 São Paulo (UTC-3)
    assert config.quiet_hours is not None and config.timezone == "America/Sao_Paulo"

    def due(completed_at: str) -> datetime:
        env = servico(completed_at, servico_id="S1", completed_at=completed_at, phone="+5511977776666")
        scheduled = feedback_request(env, config, entity_key="servico:S1", now=NOW)
        assert scheduled is not None and scheduled.delivery.not_before == scheduled.due_at
        return scheduled.due_at

    assert due("2026-03-01T21:59:00Z") == datetime(2026, 3, 1, 23, 59, tzinfo=UTC)  # 20:59 local: as is
    assert due("2026-03-01T22:00:00Z") == datetime(2026, 3, 2, 11, 0, tzinfo=UTC)  # 21:00 local: 08:00 next day
    assert due("2026-03-02T05:00:00Z") == datetime(2026, 3, 2, 11, 0, tzinfo=UTC)  # 04:00 local: 08:00 same day
    assert due("2026-03-02T09:00:00Z") == datetime(2026, 3, 2, 11, 0, tzinfo=UTC)  # 08:00 local: as is
    daytime = config.model_copy(update={"quiet_hours": QuietHours(start="12:00", end="14:00")})
    assert outside_quiet_hours(datetime(2026, 3, 2, 16, 30, tzinfo=UTC), daytime) == datetime(
        2026, 3, 2, 17, 0, tzinfo=UTC
    )  # 13:30 local in a window that does not wrap
    assert outside_quiet_hours(
        datetime(2026, 3, 2, 16, 30, tzinfo=UTC), config.model_copy(update={"quiet_hours": None})
    ) == datetime(2026, 3, 2, 16, 30, tzinfo=UTC)


def test_a_late_completion_is_not_sent_at_night(topology: Topology) -> None:
    """A completion that arrives after its due time (the daily sync runs at 02:00 local) is due now,
    and the quiet hours apply to now: 02:00 local waits for 08:00, 15:00 local goes at once."""
    config = topology.automations.feedback_request  # quiet 21:00-08:00 São Paulo (UTC-3)
    env = servico("late", servico_id="S9", completed_at="2026-02-28T18:00:00Z", phone="11977776666")
    at_night = datetime(2026, 3, 1, 5, 0, tzinfo=UTC)  # 02:00 local; due was 20:00Z = 17:00 local the day before
    scheduled = feedback_request(env, config, entity_key="servico:S9", now=at_night)
    assert scheduled is not None and scheduled.due_at == datetime(2026, 3, 1, 11, 0, tzinfo=UTC)
    afternoon = datetime(2026, 3, 1, 18, 0, tzinfo=UTC)  # 15:00 local
    scheduled = feedback_request(env, config, entity_key="servico:S9", now=afternoon)
    assert scheduled is not None and scheduled.due_at == afternoon
    # What the scheduler checks when it releases: inside the quiet hours it holds feedback requests.
    assert quiet_until(at_night, config) == datetime(2026, 3, 1, 11, 0, tzinfo=UTC)
    assert quiet_until(afternoon, config) is None


def test_sync_schedule_and_items(topology: Topology) -> None:
    daily = topology.syncs["servico-faturamento"]
    hourly = topology.syncs["agenda-operacao"]
    retry = timedelta(minutes=5)
    assert next_due(hourly, SyncState(sync="a"), retry) is None
    ran = datetime(2026, 3, 1, 2, 0, 30, tzinfo=UTC)
    ok = SyncState(sync="a", last_run_at=ran, last_success_at=ran)
    assert next_due(hourly, ok, retry) == ran + timedelta(hours=1)
    # "at: 02:00" is São Paulo time (topics.yaml defaults.timezone, UTC-3): 02:00:30 UTC is 23:00:30
    # the evening before there, so the next run is 02:00 local = 05:00 UTC the same day.
    assert next_due(daily, SyncState(sync="d", last_run_at=ran, last_success_at=ran), retry) == datetime(
        2026, 3, 1, 5, 0, tzinfo=UTC
    )
    after_run = datetime(2026, 3, 1, 5, 0, 40, tzinfo=UTC)
    assert next_due(daily, SyncState(sync="d", last_run_at=after_run, last_success_at=after_run), retry) == datetime(
        2026, 3, 2, 5, 0, tzinfo=UTC
    )
    in_utc = daily.model_copy(update={"timezone": "UTC"})
    assert next_due(in_utc, SyncState(sync="d", last_run_at=ran, last_success_at=ran), retry) == datetime(
        2026, 3, 2, 2, 0, tzinfo=UTC
    )
    # Across a DST change the wall-clock time is kept (New York: 2026-03-08 springs forward).
    in_ny = daily.model_copy(update={"timezone": "America/New_York"})
    before_dst = datetime(2026, 3, 7, 7, 0, 5, tzinfo=UTC)  # 02:00:05 EST
    assert next_due(in_ny, SyncState(sync="d", last_run_at=before_dst, last_success_at=before_dst), retry) == datetime(
        2026, 3, 8, 7, 0, tzinfo=UTC
    )  # 02:00 does not exist that night: zoneinfo reads it as 03:00 EDT
    dst_run = datetime(2026, 3, 8, 7, 0, 5, tzinfo=UTC)
    assert next_due(in_ny, SyncState(sync="d", last_run_at=dst_run, last_success_at=dst_run), retry) == datetime(
        2026, 3, 9, 6, 0, tzinfo=UTC
    )  # 02:00 EDT: still 02:00 on the wall, one hour earlier in UTC
    failed = SyncState(sync="a", last_run_at=ran, consecutive_failures=2)
    assert next_due(hourly, failed, retry) == ran + retry
    env = item_envelope(
        "agenda-operacao",
        hourly,
        topology,
        {"id": "A1", "updated_at": "2026-03-01T10:00:00Z", "agenda_id": "A1", "cliente_id": "C1", "extra": 1},
    )
    assert env.idempotency_key == "sync:agenda-operacao:A1:2026-03-01T10:00:00Z"
    assert env.data == {"agenda_id": "A1", "cliente_id": "C1"} and env.priority == 3


def test_crc32_partitioner_matches_librdkafka_consistent() -> None:
    # librdkafka consistent_random: crc32(key) % partitions (values checked against a broker run)
    assert crc32_partitioner(b"site:form-1", list(range(6)), list(range(6))) == 2
    assert crc32_partitioner(None, [0, 1], [1]) == 1


def test_priority_lanes_hand_out_the_most_urgent_level_first_in_order() -> None:
    lanes = PriorityLanes(high_water=100)
    for offset in range(5):
        lanes.offer(5, ("events.p5", 0), ("p5", offset))
    assert lanes.take(3) == (5, [("p5", 0), ("p5", 1), ("p5", 2)])
    lanes.offer(1, ("events.p1", 0), ("p1", 0))
    assert lanes.higher_pending(5) and not lanes.higher_pending(1)
    assert lanes.take(10) == (1, [("p1", 0)])  # the p1 record jumps the two p5 records left
    assert lanes.take(10) == (5, [("p5", 3), ("p5", 4)])
    assert lanes.take(10) is None


def test_a_preempted_batch_gives_its_rest_back_in_order_and_keeps_the_turn() -> None:
    lanes = PriorityLanes()
    for offset in range(6):
        lanes.offer(4, "tp", offset)
    lanes.offer(4, "other", 100)
    level, batch = lanes.take(4) or (0, [])
    lanes.give_back(level, batch[2:])  # 0 and 1 routed, then a p1 record arrived
    assert lanes.pending(4) == 5
    assert lanes.take(10) == (4, [2, 3, 4, 5])
    assert lanes.take(10) == (4, [100])


def test_a_partition_with_many_records_waiting_pauses_until_half_taken_and_clear_releases_it() -> None:
    paused: list[object] = []
    resumed: list[object] = []
    lanes = PriorityLanes(high_water=16, on_full=paused.append, on_drop=resumed.append)  # 4 per partition
    for offset in range(5):
        lanes.offer(5, "p5-0", offset)
    lanes.offer(5, "p5-1", 0)
    assert paused == ["p5-0"] and resumed == []  # at its 4th record; once; the other one flows
    assert lanes.take(2) == (5, [0, 1])  # 3 left: above half of 4
    assert resumed == []
    assert lanes.take(1) == (5, [0])  # p5-1's turn
    assert lanes.take(1) == (5, [2])  # 2 left of p5-0: it flows again
    assert resumed == ["p5-0"]
    for offset in range(4):
        lanes.offer(5, "p5-1", offset + 1)
    generation = lanes.generation
    lanes.clear()
    assert paused == ["p5-0", "p5-1"] and resumed == ["p5-0", "p5-1"]
    assert lanes.pending(5) == 0 and lanes.take(10) is None and lanes.generation == generation + 1


def test_a_levels_partitions_take_turns_in_offset_order_each() -> None:
    lanes = PriorityLanes(high_water=1000)
    for offset in range(6):  # the fetcher hands out one partition's buffer before the next one's
        lanes.offer(5, "a", ("a", offset))
    for offset in range(3):
        lanes.offer(5, "b", ("b", offset))
    lanes.offer(5, "c", ("c", 0))
    batches = []
    while (taken := lanes.take(2)) is not None:
        batches.append(taken[1])
    assert batches == [
        [("a", 0), ("a", 1)],
        [("b", 0), ("b", 1)],
        [("c", 0)],
        [("a", 2), ("a", 3)],
        [("b", 2)],
        [("a", 4), ("a", 5)],
    ]


async def test_waiting_for_records_wakes_on_the_next_offer() -> None:
    lanes = PriorityLanes()

    async def later() -> None:
        await asyncio.sleep(0.01)
        lanes.offer(3, "tp", "record")

    task = asyncio.create_task(later())
    await asyncio.wait_for(lanes.wait(), 5)
    await task
    assert lanes.take(1) == (3, ["record"])


def test_the_fetch_buffers_drain_most_urgent_first_and_a_topics_partitions_take_turns() -> None:
    rank = topic_rank({"events.p1": 1, "events.p5": 5})
    buffers = {TopicPartition("events.p5", p): f"p5-{p}" for p in range(3)}
    buffers[TopicPartition("trail", 0)] = "trail"
    buffers[TopicPartition("events.p1", 0)] = "p1"
    heads = []
    for _ in range(4):
        order_for_drain(buffers, rank)
        order = list(buffers.values())
        assert order[:2] == ["p1", "trail"]  # p1, then the other topics (rank 2.5), then p5
        heads.append(order[2])
    assert heads == ["p5-1", "p5-2", "p5-0", "p5-1"]  # each p5 partition leads the p5 drain in turn


def test_a_lead_without_a_name_is_routed_and_greeted_without_one(topology: Topology) -> None:
    """A WhatsApp contact may have no push name: the lead still reaches the CRM and gets its reply."""
    nameless = lead("whatsapp", message="oi")
    nameless = nameless.model_copy(update={"data": {k: v for k, v in nameless.data.items() if k != "name"}})
    out = Router(topology).route(nameless, NOW)
    assert out.destinations == ["crm", "marketing", "whatsapp"]
    crm, _, reply = out.deliveries
    assert crm.payload["telefone"] == "+5511999990000" and crm.payload.get("nome") is None
    assert reply.payload["message"].startswith("Olá! Obrigado por chamar a Carinho no WhatsApp")


def test_routing_leaves_the_envelope_as_it_was(topology: Topology) -> None:
    """The transforms get the envelope's own `data` (EventEnvelope.to_document): no map, hook or
    automation may change it, or a later destination's payload (and the dedupe fingerprint of a
    re-routed record) would differ."""
    import copy

    from bench.processors_routing import mix

    router = Router(topology)
    envelopes = [mix(i, 3) for i in range(5)]
    envelopes.append(
        new_envelope(
            type="cliente.created",
            source="crm",
            priority=2,
            idempotency_key="c-9",
            data={"cliente_id": "C9", "name": "Ana Souza", "cpf": "123.456.789-09", "phone": "11 99999-0000"},
        )
    )
    assert {e.type for e in envelopes} == set(topology.routes)  # every route of topics.yaml
    for envelope in envelopes:
        before = copy.deepcopy(envelope.data)
        first = router.route(envelope, NOW)
        assert envelope.data == before
        again = router.route(EventEnvelope.from_json(envelope.to_json()), NOW)
        assert [d.to_json() for d in first.deliveries] == [d.to_json() for d in again.deliveries]


def test_a_fetchs_records_offered_at_once_queue_in_order_and_pause_their_partition_once() -> None:
    paused: list[object] = []
    lanes = PriorityLanes(high_water=16, on_full=paused.append)  # 4 per partition
    lanes.offer_many(5, "p5-0", [0, 1])
    lanes.offer_many(5, "p5-0", [])  # nothing fetched for it this time: no change, no pause
    assert paused == [] and lanes.pending(5) == 2
    lanes.offer_many(5, "p5-0", [2, 3, 4])  # crosses the partition's high water in one call
    lanes.offer_many(5, "p5-0", [5])
    assert paused == ["p5-0"]  # once, not per record past the mark
    assert lanes.pending(5) == 6
    assert lanes.take(10) == (5, [0, 1, 2, 3, 4, 5])
