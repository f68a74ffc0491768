"""`carinho topics apply|check|list`: make the cluster match topics.yaml, or report drift."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from cli.settings import CliSettings
from hub.admin import apply_topics, check_drift
from hub.topology import Topology, TopologyError, load_topology


def load(settings: CliSettings) -> Topology:
    try:
        topology = load_topology(settings.topology_file)
    except TopologyError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(2) from None
    return topology.with_namespace(settings.topic_namespace) if settings.topic_namespace else topology


def register(sub: Any) -> None:
    topics = sub.add_parser("topics", help="create/update topics from topics.yaml, or check drift")
    tsub = topics.add_subparsers(dest="topics_command", metavar="ACTION")
    tsub.required = True
    for name, func, text in (
        ("apply", _apply, "create missing topics, grow partitions, set retention/cleanup (idempotent)"),
        ("check", _check, "compare the cluster with topics.yaml; exit 1 on drift"),
        ("list", _list, "print every topic topics.yaml defines"),
    ):
        parser = tsub.add_parser(name, help=text)
        parser.add_argument("--bootstrap", help="override CARINHO_KAFKA_BOOTSTRAP_SERVERS")
        parser.add_argument("--profile", help="cluster profile from topics.yaml (default CARINHO_CLUSTER_PROFILE)")
        parser.set_defaults(func=func)
    tail = tsub.add_parser("tail", help="print records of a topic as they arrive (personal data masked)")
    tail.add_argument("topic", help="topic name as in topics.yaml (the namespace is added), e.g. events.p2")
    tail.add_argument("--from-beginning", action="store_true", help="start at the oldest record")
    tail.add_argument("--max", type=int, default=0, help="stop after N records (0: until Ctrl-C)")
    tail.add_argument("--timeout", type=float, default=0, help="stop after S seconds without records (0: never)")
    tail.add_argument("--bootstrap", help="override CARINHO_KAFKA_BOOTSTRAP_SERVERS")
    tail.set_defaults(func=_tail)


def _context(args: argparse.Namespace) -> tuple[Topology, str, str]:
    settings = CliSettings()
    topology = load(settings)
    profile = args.profile or settings.cluster_profile
    if profile not in topology.cluster_profiles:
        print(f"unknown profile {profile!r}; topics.yaml defines {sorted(topology.cluster_profiles)}", file=sys.stderr)
        raise SystemExit(2)
    return topology, profile, args.bootstrap or settings.kafka_bootstrap_servers


def _apply(args: argparse.Namespace) -> int:
    topology, profile, bootstrap = _context(args)
    result = apply_topics(topology, profile, bootstrap)
    print(
        f"topics: {len(result.created)} created, {len(result.partitions_increased)} grown, "
        f"{len(result.configs_updated)} reconfigured, {len(result.unchanged)} unchanged"
    )
    for name in result.created:
        print(f"  + {name}")
    for problem in result.problems:
        print(f"  ! {problem}", file=sys.stderr)
    return 1 if result.problems else 0


def _check(args: argparse.Namespace) -> int:
    topology, profile, bootstrap = _context(args)
    drift = check_drift(topology, profile, bootstrap)
    if not drift:
        print(f"no drift: {len(topology.topic_specs(profile))} topics match topics.yaml (profile {profile})")
        return 0
    print(f"drift: {len(drift)} difference(s) between topics.yaml and the cluster", file=sys.stderr)
    for item in drift:
        print(f"  {item}", file=sys.stderr)
    return 1


def _list(args: argparse.Namespace) -> int:
    topology, profile, _ = _context(args)
    for spec in topology.topic_specs(profile):
        print(
            f"{spec.name}\tpartitions={spec.partitions}\trf={spec.replication_factor}\t"
            + " ".join(f"{k}={v}" for k, v in sorted(spec.config.items()))
        )
    return 0


def _tail(args: argparse.Namespace) -> int:
    """A read-only look at a topic: never joins a group, never commits."""
    import time

    import orjson
    from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, TopicPartition

    from hub.kafka_config import consumer_config
    from hub.masking import mask_data, mask_text

    settings = CliSettings()
    topology = load(settings)
    topic = topology.namespace + args.topic
    bootstrap = args.bootstrap or settings.kafka_bootstrap_servers
    consumer = Consumer(consumer_config(bootstrap, group_id="carinho.cli.tail", client_id="carinho-tail"))
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        if topic not in metadata.topics or metadata.topics[topic].error is not None:
            print(f"no topic {topic!r} on {bootstrap}", file=sys.stderr)
            return 2
        start = OFFSET_BEGINNING if args.from_beginning else OFFSET_END
        consumer.assign([TopicPartition(topic, p, start) for p in metadata.topics[topic].partitions])
        seen, last = 0, time.monotonic()
        while not args.max or seen < args.max:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                if args.timeout and time.monotonic() - last > args.timeout:
                    break
                continue
            last = time.monotonic()
            seen += 1
            try:
                value: object = mask_data(orjson.loads(msg.value() or b"null"))
            except orjson.JSONDecodeError:
                value = mask_text((msg.value() or b"").decode(errors="replace"))
            headers = {k: (v or b"").decode(errors="replace") for k, v in (msg.headers() or [])}
            print(
                orjson.dumps(
                    {
                        "partition": msg.partition(),
                        "offset": msg.offset(),
                        "key": mask_text((msg.key() or b"").decode(errors="replace")),
                        "headers": mask_data(headers),
                        "value": value,
                    }
                ).decode(),
                flush=True,
            )
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()
    return 0
