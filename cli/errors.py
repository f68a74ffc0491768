"""One clear line, not a traceback, when a command cannot use Kafka (cli/main.py catches them all)."""

from __future__ import annotations

import argparse

from confluent_kafka import KafkaError, KafkaException
from pydantic import ValidationError

# librdkafka's "no broker answers" codes: the hint says where the CLI looked and how to move it.
UNREACHABLE = {
    KafkaError._TRANSPORT,
    KafkaError._ALL_BROKERS_DOWN,
    KafkaError._TIMED_OUT,
    KafkaError._MSG_TIMED_OUT,
    KafkaError._RESOLVE,
    KafkaError.BROKER_NOT_AVAILABLE,
}
HINT = (
    "is the hub up (`make up`, which writes its address to .run/hub.env)? "
    "Otherwise set CARINHO_KAFKA_BOOTSTRAP_SERVERS (or pass --bootstrap where the command has it)"
)


def bootstrap_tried(args: argparse.Namespace) -> str:
    """The bootstrap servers the command used: its --bootstrap, else the CLI's settings."""
    if getattr(args, "bootstrap", None):
        return str(args.bootstrap)
    from cli.settings import CliSettings

    try:
        return CliSettings().kafka_bootstrap_servers
    except Exception:  # invalid settings: the command itself would have said so first
        return "?"


def kafka_exception_line(args: argparse.Namespace, exc: KafkaException) -> str:
    error = exc.args[0] if exc.args else None
    if isinstance(error, KafkaError):
        detail, unreachable = error.str(), error.code() in UNREACHABLE
    else:
        detail, unreachable = str(exc), True
    return kafka_line(args, detail, unreachable=unreachable)


def kafka_line(args: argparse.Namespace, detail: str, *, unreachable: bool | None = None) -> str:
    """`unreachable` None: an operators' KafkaUnavailable, whose text says what failed (and, when it is
    not the connection, its own remedy: "run `carinho topics apply`")."""
    where = bootstrap_tried(args)
    if unreachable:
        return f"carinho: cannot reach Kafka at {where} ({detail}); {HINT}"
    if unreachable is None and "run `" not in detail:
        return f"carinho: Kafka at {where}: {detail}; {HINT}"
    return f"carinho: Kafka at {where}: {detail}"


def validation_lines(exc: ValidationError) -> list[str]:
    """A settings model (or any model) refused its input: one line per problem naming the variable
    (`CARINHO_<FIELD>` for a settings model) and the rule, WITHOUT the value. pydantic's own message
    prints each input (`input_value='...'`), which for CARINHO_SIGNING_SECRETS, CARINHO_DESTINATION_TOKENS,
    CARINHO_ZAPI_TOKEN or CARINHO_SOURCE_TOKENS is a secret, on stderr and in the service's log."""
    settings = exc.title.endswith("Settings")
    lines = [f"carinho: invalid {'settings' if settings else 'input'} ({exc.title}):"]
    for error in exc.errors(include_url=False, include_input=False, include_context=False):
        loc = [str(part) for part in error["loc"]]
        name = f"CARINHO_{loc[0].upper()}" if settings and loc else ".".join(loc) or "(value)"
        inner = ".".join(loc[1:]) if settings else ""
        where = f"{name} ({inner})" if inner else name
        lines.append(f"  {where}: {error['msg']} [{error['type']}]")
    return lines
