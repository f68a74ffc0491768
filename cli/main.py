"""Entry point of the `carinho` command. Each area registers its own subcommands."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from typing import Any

# One module per area; each has register(subparsers) and sets `func` on its parsers.
COMMAND_MODULES = (
    "cli.topics",  # topics apply | check | list
    "cli.keys",  # keys create | list | rotate | revoke
    "cli.ingress",  # ingress (run the HTTP ingress in the foreground)
    "cli.connectors",  # connectors | sandbox
    "cli.processors",  # processors | sync run | sync status | trace
    "cli.operators",  # dlq ... | audit | report daily | matrix
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="carinho", description="Carinho Integrações: the event-integration hub")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[Any], int | None] = args.func
    try:
        return int(func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
