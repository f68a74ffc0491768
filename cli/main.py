"""Entry point of the `carinho` command. Each area registers its own subcommands."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaException
from pydantic import ValidationError
from pydantic_settings import SettingsError

from cli.errors import kafka_exception_line, kafka_line, validation_lines
from operators.kafka_io import KafkaUnavailable

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
    # librdkafka's log lines go to the "kafka.client" logger (hub/kafka_config.py). A command that does
    # not configure logging would print each retry raw on stderr (Python's last-resort handler); with
    # this they are dropped there, and a failure is the one line below. Services configure logging:
    # their records still propagate to its handlers.
    kafka_log = logging.getLogger("kafka.client")
    if not any(isinstance(h, logging.NullHandler) for h in kafka_log.handlers):
        kafka_log.addHandler(logging.NullHandler())
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[Any], int | None] = args.func
    try:
        return int(func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except KafkaException as exc:  # any command, any client (admin, consumer, producer): one line, exit 1
        print(kafka_exception_line(args, exc), file=sys.stderr)
        return 1
    except KafkaUnavailable as exc:  # the operator tools' reads and writes (operators/kafka_io.py)
        print(kafka_line(args, str(exc)), file=sys.stderr)
        return 1
    except ValidationError as exc:  # a setting (CARINHO_...) of the wrong shape: which, and why, never its value
        print("\n".join(validation_lines(exc)), file=sys.stderr)
        return 2
    except SettingsError as exc:  # a setting that is not the JSON its type needs (names the field, no value)
        print(f"carinho: invalid settings: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
