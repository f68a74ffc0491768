"""topics.yaml validation: the real file loads; each kind of mistake is refused with its field path."""

from __future__ import annotations

import copy
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from hub.durations import format_duration, parse_duration
from hub.topology import TopologyError, load_topology, parse_topology

ROOT = Path(__file__).resolve().parents[3]
RAW: dict[str, Any] = yaml.safe_load((ROOT / "topics.yaml").read_text())


def refused(mutate: Any) -> list[tuple[str, str]]:
    raw = copy.deepcopy(RAW)
    mutate(raw)
    with pytest.raises(TopologyError) as info:
        parse_topology(raw)
    return info.value.problems


def test_the_project_file_loads_with_the_five_integrations_of_the_analysis() -> None:
    t = load_topology(ROOT / "topics.yaml")
    assert t.event_topics == ["events.p1", "events.p2", "events.p3", "events.p4", "events.p5"]
    assert set(t.integrations) == {
        "lead-crm",
        "cliente-financeiro",
        "servico-faturamento",
        "agenda-operacao",
        "cuidadores-crm",
    }
    lead = t.integrations["lead-crm"]
    assert lead.sources == ["site", "whatsapp"] and lead.destinations == ["crm", "marketing"]
    assert set(t.routes["lead.created"].to) == {"crm", "marketing"}
    assert t.syncs["servico-faturamento"].every == timedelta(days=1)
    assert t.syncs["agenda-operacao"].every == timedelta(hours=1)
    assert t.syncs["cuidadores-crm"].every == timedelta(hours=4)
    assert t.automations.feedback_request.delay == timedelta(hours=2)
    assert set(t.destinations) >= {
        "crm",
        "financeiro",
        "operacao",
        "marketing",
        "cuidadores",
        "atendimento",
        "documentos",
        "whatsapp",
        "sms",
    }
    assert set(t.event_types) >= {
        "lead.created",
        "cliente.created",
        "servico.completed",
        "agenda.updated",
        "cuidador.updated",
    }
    assert set(t.sources) >= {"site", "whatsapp", "crm", "operacao", "cuidadores"}


def test_retention_defaults_and_overrides() -> None:
    t = load_topology(ROOT / "topics.yaml")
    specs = {s.name: s for s in t.topic_specs("local")}
    assert specs["events.p1"].config["retention.ms"] == str(30 * 86400 * 1000)
    assert specs["events.p5"].config["retention.ms"] == str(7 * 86400 * 1000)
    assert specs["audit"].config["retention.ms"] == str(90 * 86400 * 1000)
    assert specs["sync.state"].config["cleanup.policy"] == "compact"
    assert "retention.ms" not in specs["sync.state"].config


def test_derived_topics_come_from_the_file() -> None:
    t = load_topology(ROOT / "topics.yaml")
    assert t.delivery_topic("crm") == "deliver.crm"
    assert t.retry_topics("whatsapp") == [
        "deliver.whatsapp.retry.1",
        "deliver.whatsapp.retry.2",
        "deliver.whatsapp.retry.3",
    ]
    names = [s.name for s in t.topic_specs("local")]
    assert len(names) == len(set(names))
    assert "deadletter" in names and "deliver.sms.retry.3" in names
    with pytest.raises(KeyError):
        t.delivery_topic("nowhere")


def test_namespace_prefixes_every_topic_and_group() -> None:
    t = load_topology(ROOT / "topics.yaml").with_namespace("t42")
    assert all(s.name.startswith("t42.") for s in t.topic_specs("local"))
    assert t.priority_topic(3) == "t42.events.p3"
    assert t.dead_letter_topic == "t42.deadletter"
    assert t.consumer_group("router") == "t42.carinho.router"


def test_cluster_profiles_set_replication() -> None:
    t = load_topology(ROOT / "topics.yaml")
    spec = t.topic_specs("cluster3")[0]
    assert spec.replication_factor == 3 and spec.config["min.insync.replicas"] == "2"
    with pytest.raises(KeyError, match="unknown cluster profile"):
        t.topic_specs("nope")


def test_unknown_destination_in_a_route_names_the_path_and_the_choices() -> None:
    problems = refused(lambda r: r["routes"]["lead.created"]["to"].update({"erp": {"path": "/x", "map": {}}}))
    assert any(
        path == "routes.lead.created.to.erp" and "unknown destination 'erp'" in rule and "crm" in rule
        for path, rule in problems
    ), problems


def test_bad_duration_is_refused_with_the_rule() -> None:
    problems = refused(lambda r: r["defaults"].update({"retention": "30 days"}))
    assert problems[0][0] == "defaults.retention"
    assert "not a duration" in problems[0][1] and "ms, s, m, h, d, w" in problems[0][1]


def test_duplicate_topic_is_refused() -> None:
    problems = refused(lambda r: r["system_topics"]["trail"].update({"topic": "deliveries"}))
    assert any("duplicate topic 'deliveries'" in rule for _, rule in problems), problems


def test_duplicate_topic_against_a_derived_name_is_refused() -> None:
    problems = refused(lambda r: r["system_topics"]["audit"].update({"topic": "deliver.crm.retry.1"}))
    assert any("duplicate topic 'deliver.crm.retry.1'" in rule for _, rule in problems), problems


def test_priority_outside_1_to_5_is_refused() -> None:
    problems = refused(lambda r: r["event_types"]["lead.created"].update({"priority": 7}))
    assert problems == [("event_types.lead.created.priority", "Input should be less than or equal to 5")]


def test_priority_levels_must_be_one_to_five_once_each() -> None:
    def mutate(r: dict[str, Any]) -> None:
        r["priorities"][4]["level"] = 4

    problems = refused(mutate)
    assert any(path == "priorities" and "levels 1-5" in rule for path, rule in problems), problems


def test_unknown_source_and_event_type_references() -> None:
    def mutate(r: dict[str, Any]) -> None:
        r["event_types"]["lead.created"]["sources"].append("tiktok")
        r["syncs"]["agenda-operacao"]["event_type"] = "agenda.deleted"

    problems = dict(refused(mutate))
    assert "unknown source 'tiktok'" in problems["event_types.lead.created.sources[4]"]
    assert "unknown event type 'agenda.deleted'" in problems["syncs.agenda-operacao.event_type"]


def test_unknown_fields_and_kinds_are_refused() -> None:
    problems = dict(refused(lambda r: r["destinations"]["crm"].update({"timeuot": "2s"})))
    assert "destinations.crm.timeuot" in problems
    problems = dict(refused(lambda r: r["event_types"]["lead.created"]["data"]["fields"].update({"age": "int"})))
    assert "event_types.lead.created.data.fields.age" in problems


def test_route_needs_a_transform_and_only_one() -> None:
    problems = dict(refused(lambda r: r["routes"]["cliente.created"]["to"]["financeiro"].pop("hook")))
    assert problems["routes.cliente.created.to.financeiro"] == "needs a transform: map or hook"
    problems = dict(refused(lambda r: r["routes"]["cliente.created"]["to"]["financeiro"].update({"map": {}})))
    assert "use either map or hook" in problems["routes.cliente.created.to.financeiro"]


def test_retry_override_cannot_exceed_the_destination_tiers() -> None:
    problems = dict(
        refused(lambda r: r["routes"]["lead.created"]["to"]["crm"].update({"retry": {"tiers": ["1s"] * 6}}))
    )
    assert "at most 5 tiers" in problems["routes.lead.created.to.crm.retry.tiers"]


def test_retry_tiers_must_not_shrink_and_timeouts_must_be_ordered() -> None:
    problems = dict(refused(lambda r: r["destinations"]["crm"]["retry"].update({"tiers": ["1m", "10s"]})))
    assert "must not get shorter" in problems["destinations.crm.retry"]
    problems = dict(refused(lambda r: r["destinations"]["crm"]["timeout"].update({"min": "20s"})))
    assert "min <= initial <= max" in problems["destinations.crm.timeout"]


def test_unreadable_and_non_mapping_files() -> None:
    with pytest.raises(TopologyError, match="cannot read"):
        load_topology("/nonexistent/topics.yaml")
    with pytest.raises(TopologyError, match="YAML mapping"):
        parse_topology(["a", "b"])


def test_yaml_syntax_error(tmp_path: Path) -> None:
    bad = tmp_path / "topics.yaml"
    bad.write_text("version: 1\n  priorities: [\n")
    with pytest.raises(TopologyError, match="not valid YAML"):
        load_topology(bad)


@pytest.mark.parametrize(
    ("text", "seconds"), [("500ms", 0.5), ("10s", 10), ("5m", 300), ("2h", 7200), ("30d", 2592000)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds
    assert parse_duration(format_duration(parse_duration(text))) == parse_duration(text)


@pytest.mark.parametrize("bad", ["", "10", "ten s", "-5s", "0s", "5 years", 5, True])
def test_bad_durations(bad: Any) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_sync_times_are_read_in_the_business_time_zone() -> None:
    t = load_topology(ROOT / "topics.yaml")
    assert t.defaults.timezone == "America/Sao_Paulo"
    assert t.syncs["servico-faturamento"].timezone == "America/Sao_Paulo"  # inherited from defaults
    assert str(t.syncs["servico-faturamento"].zone()) == "America/Sao_Paulo"


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (lambda r: r["defaults"].update({"timezone": "Brasil/Sao Paulo"}), "defaults.timezone"),
        (
            lambda r: r["syncs"]["agenda-operacao"].update({"timezone": "Mars/Olympus"}),
            "syncs.agenda-operacao.timezone",
        ),
    ],
)
def test_unknown_time_zone_is_refused_naming_the_field(change: Any, path: str) -> None:
    problems = refused(change)
    assert any(p == path and "not an IANA time zone" in rule for p, rule in problems), problems
