"""`carinho connectors` (the delivery workers, foreground) and `carinho sandbox` (local destinations)."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    run = sub.add_parser("connectors", help="run the delivery workers in the foreground")
    run.add_argument(
        "--destinations",
        default="",
        help="comma-separated destinations (default: all in topics.yaml), e.g. crm,whatsapp",
    )
    run.set_defaults(func=_run_connectors)

    sandbox = sub.add_parser("sandbox", help="run local stand-ins for destinations, Z-API, SMS and sync sources")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8090)
    sandbox.add_argument("--seed", type=int, default=None, help="seed of the fault-injection RNG")
    sandbox.set_defaults(func=_run_sandbox)


def _run_connectors(args: argparse.Namespace) -> int:
    from connectors.service import run_forever
    from connectors.settings import ConnectorSettings
    from hub.logging import configure_logging

    settings = ConnectorSettings()
    configure_logging("connectors", settings.log_level)
    destinations = [d.strip() for d in args.destinations.split(",") if d.strip()] or None
    run_forever(settings, destinations)
    return 0


def _run_sandbox(args: argparse.Namespace) -> int:
    from connectors.sandbox.server import serve
    from connectors.settings import ConnectorSettings
    from hub.logging import configure_logging

    configure_logging("sandbox", ConnectorSettings().log_level)
    serve(args.host, args.port, args.seed)
    return 0
