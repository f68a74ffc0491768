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
