"""The ingress server with Kafka left out (not a test, not a product mode; for bench.ingress_ab):

    CARINHO_PORT=8181 ... .venv/bin/python -m bench.ingress_no_kafka

The real ingress app (create_app) served by uvicorn exactly as `carinho ingress` serves it, with the
publisher replaced by bench.ingress_cpu's AckAtOnce: every write is "acknowledged" at once and nothing
reaches a broker. Run beside the real ingress and the bare endpoint
(`bench.ingress_ab --variant cur: --variant nokafka:+bench.ingress_no_kafka --variant
bare:+bench.bare_app`), it splits the ingress's cost per request into the acknowledged write and
everything else (HTTP, authentication, validation, the envelope, the audit line, metrics).
"""

from __future__ import annotations

from bench.ingress_cpu import AckAtOnce
from hub.logging import configure_logging
from ingress.app import create_app, serve
from ingress.settings import IngressSettings


def main() -> None:
    settings = IngressSettings()
    configure_logging("ingress", settings.log_level)
    serve(create_app(settings, publisher=AckAtOnce()), settings)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
